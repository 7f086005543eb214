"""A real consumer: dnf resolves and installs the phony packages from our repo."""

from __future__ import annotations

import subprocess
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
