"""The pkg kind with epochs, releases and architectures of one package, on a private host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_pkg import graph, installed, log, run_once, transactions

from support import require_tools

LONG = "mgmt-test-" + "long" * 14
# name -> [(epoch, version, release, architecture)]
BUILDS = {
    "mgmt-test-e": [("1", "1.0", "1", "all"), ("1", "2.0", "1", "all")],
    # A newer release of one version only.
    "mgmt-test-rel": [("0", "1.0", "1", "all"), ("0", "1.0", "2", "all")],
    # A name as long as some Fedora packages' (python3-...-tests): dnf's columns overflow.
    LONG: [("0", "1.0", "1", "all"), ("0", "2.0", "1", "all")],
    # One package for two architectures (multilib: both may be installed).
    "mgmt-test-m32": [("0", "1.0", "1", "x86_64"), ("0", "1.0", "1", "i686")],
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    require_tools("rpmbuild", "createrepo_c")
    path = tmp_path_factory.mktemp("erepo")
    for name, builds in BUILDS.items():
        for epoch, version, release, arch in builds:
            subprocess.run(
                [sys.executable, "-m", "mgmt_pkg", "fake-rpm", "-n", name, "-v", version,
                 "--epoch", epoch, "--iteration", release, "-a", arch, "-o", str(path),
                 "--source-date-epoch", "1700000000"],
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


@pytest.mark.parametrize("name", ["mgmt-test-rel", "mgmt-test-rel.noarch"])
def test_newest_takes_a_newer_release_of_the_same_version(pkg_host, tmp_path, name):
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-rel-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {name: "newest"})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-rel") == "1.0-2"
    path = graph(tmp_path, pkg_host.repo, {name: "1.0-1"})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-rel") == "1.0-1"


def arches(host, name: str) -> list:
    proc = host.run(["rpm", "-q", "--qf", "%{ARCH}\\n", name], check=False)
    return sorted(proc.stdout.split()) if proc.returncode == 0 else []


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="multilib of x86_64 and i686")
def test_two_architectures_of_one_package_are_managed_apart(pkg_host, tmp_path):
    wanted = {"mgmt-test-m32.x86_64": "installed", "mgmt-test-m32.i686": "installed"}
    path = graph(tmp_path, pkg_host.repo, wanted)
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert arches(pkg_host, "mgmt-test-m32") == ["i686", "x86_64"]
    wanted = {"mgmt-test-m32.x86_64": "installed", "mgmt-test-m32.i686": "uninstalled"}
    path = graph(tmp_path, pkg_host.repo, wanted)
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert arches(pkg_host, "mgmt-test-m32") == ["x86_64"]
    done = len(transactions(pkg_host))
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == done, log(tmp_path)
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-m32": "uninstalled"})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert arches(pkg_host, "mgmt-test-m32") == []


def test_newest_upgrades_a_package_with_a_long_name(pkg_host, tmp_path):
    """dnf check-update puts the version of a long NAME.ARCH on a line of its own."""
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / f"{LONG}-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {LONG: "newest"})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert installed(pkg_host, LONG) == "2.0-1", log(tmp_path)
