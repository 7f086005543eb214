"""The pkg kind as a Fedora/RHEL administrator uses it, with the shared test repository."""

from __future__ import annotations

import pytest
from test_pkg import graph, installed, log, run_once, transactions


@pytest.mark.parametrize("state", ["newest", "installed"])
def test_an_installed_package_another_obsoletes_converges(pkg_host, tmp_path, state):
    repo = pkg_host.repo
    pkg_host.run(["rpm", "-i", str(repo / "mgmt-test-o-1.0-1.noarch.rpm")])
    path = graph(tmp_path, repo, {"mgmt-test-o": state})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    # newest: dnf replaces it by the package obsoleting it; installed: it stays.
    now = ("", "1.0-1") if state == "newest" else ("1.0-1", "")
    assert (installed(pkg_host, "mgmt-test-o"), installed(pkg_host, "mgmt-test-n")) == now
    done = len(transactions(pkg_host))
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == done, log(tmp_path)
