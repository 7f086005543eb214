"""The pkg kind with packages that carry an epoch, on a private host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_pkg import graph, installed, log, run_once, transactions

from support import require_tools

# name -> [(epoch, version)]
EPOCHED = {"mgmt-test-e": [("1", "1.0"), ("1", "2.0")]}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    require_tools("rpmbuild", "createrepo_c")
    path = tmp_path_factory.mktemp("erepo")
    for name, builds in EPOCHED.items():
        for epoch, version in builds:
            subprocess.run(
                [sys.executable, "-m", "mgmt_pkg", "fake-rpm", "-n", name, "-v", version,
                 "--epoch", epoch, "-o", str(path), "--source-date-epoch", "1700000000"],
                check=True, capture_output=True,
            )  # fmt: skip
    for srpm in path.glob("*.src.rpm"):
        srpm.unlink()
    subprocess.run(["createrepo_c", "-q", str(path)], check=True)
    return path


@pytest.mark.parametrize("state", ["1:1.0-1", "1.0-1", "1:1.0", "1.0"])
def test_a_pinned_version_of_a_package_with_an_epoch_converges(pkg_host, tmp_path, state):
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-e": state})
    result = run_once(pkg_host, tmp_path, path, "-v")
    assert result.returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-e") == "1.0-1"
    done = len(transactions(pkg_host))
    result = run_once(pkg_host, tmp_path, path, "-v")
    assert result.returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == done, log(tmp_path)


def test_newest_and_name_arch_with_an_epoch(pkg_host, tmp_path):
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-e-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-e.noarch": "newest"})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-e") == "2.0-1"
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-e.noarch": "1:1.0-1"})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-e") == "1.0-1"
    done = len(transactions(pkg_host))
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == done, log(tmp_path)


def test_a_wrong_epoch_fails(pkg_host, tmp_path):
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-e": "0:1.0-1"})
    result = run_once(pkg_host, tmp_path, path, "-v")
    assert result.returncode != 0, log(tmp_path)
    print(result.stdout[-2000:])
    assert installed(pkg_host, "mgmt-test-e") == ""
