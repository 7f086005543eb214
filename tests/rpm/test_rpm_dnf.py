"""A real consumer: dnf resolves and installs the phony packages from our repo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rpm_helpers import EXAMPLE, dnf, run_cli, serve

from support import require_tools


def dnf_install(repo_url: str, root: Path, *packages: str) -> subprocess.CompletedProcess:
    return dnf(repo_url, root, "install", *packages)


def installed(root: Path) -> set:
    done = subprocess.run(
        ["rpm", "--root", str(root), "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\\n"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(done.stdout.split())


def test_dnf_installs_vagrant_libvirt_with_its_dependency(tmp_path: Path):
    require_tools("rpmbuild", "createrepo_c", "dnf")
    repo = tmp_path / "repo"
    assert run_cli("fake-rpm", *EXAMPLE, "-o", str(repo)).code == 0
    assert run_cli("fake-rpm", "-n", "vagrant", "-v", "2.0", "-o", str(repo)).code == 0
    made = run_cli("repo", str(repo))
    assert made.code == 0, made.err
    assert made.out.strip() == f"{repo / 'repodata' / 'repomd.xml'} (4 packages)"
    root = tmp_path / "root"
    with serve(repo) as url:
        done = dnf_install(url, root, "vagrant-libvirt")
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(root) == {"vagrant-libvirt-0.0.24-noop", "vagrant-2.0-1"}


def test_dnf_refuses_when_the_dependency_is_too_old(tmp_path: Path):
    """The version in `-d 'vagrant >= 1.6.5'` is really enforced by the consumer."""
    require_tools("rpmbuild", "createrepo_c", "dnf")
    repo = tmp_path / "repo"
    assert run_cli("fake-rpm", *EXAMPLE, "-o", str(repo)).code == 0
    assert run_cli("fake-rpm", "-n", "vagrant", "-v", "1.6.4", "-o", str(repo)).code == 0
    assert run_cli("repo", str(repo)).code == 0
    root = tmp_path / "root"
    with serve(repo) as url:
        done = dnf_install(url, root, "vagrant-libvirt")
    assert done.returncode != 0
    assert "vagrant >= 1.6.5" in done.stdout + done.stderr
    assert not installed(root)


def test_repo_refuses_a_folder_without_rpms(tmp_path: Path):
    result = run_cli("repo", str(tmp_path))
    assert result.code == 2 and "contains no .rpm files" in result.err


# Opens repomd.xml as fast as it can until told to stop; counts the times it was missing.
_READER = """
import os, sys
path, stop = sys.argv[1], sys.argv[2]
found = missing = 0
while not os.path.exists(stop):
    try:
        with open(path, "rb") as stream:
            stream.read()
        found += 1
        if found == 1:
            print("reading", flush=True)
    except FileNotFoundError:
        missing += 1
print(found, missing, flush=True)
"""


def test_a_new_repodata_replaces_the_old_without_a_gap(tmp_path: Path):
    """The old repodata was renamed away before the new one took its place: in between,
    a reader (dnf through mgmt-pkg serve) found no repomd.xml and failed."""
    require_tools("rpmbuild", "createrepo_c")
    repo = tmp_path / "repo"
    assert run_cli("fake-rpm", "-n", "first", "-v", "1", "-o", str(repo)).code == 0
    assert run_cli("repo", str(repo)).code == 0
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(repo / "repodata" / "repomd.xml"), str(stop)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert reader.stdout.readline() == "reading\n"
        for _ in range(10):
            made = run_cli("repo", str(repo))
            assert made.code == 0, made.err
    finally:
        stop.touch()
        found, missing = map(int, reader.communicate(timeout=60)[0].split())
    assert found > 0 and missing == 0, f"repomd.xml was missing {missing} times"
    assert not [p for p in repo.iterdir() if p.name.startswith(".")]  # no stage left
