"""Fixtures for resource kinds that change the system: private hosts with real tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pkg_repo import REPO_PORT, build_repo
from private_host import PrivateHost

from support import require_tools


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    require_tools("rpmbuild", "createrepo_c")
    path = tmp_path_factory.mktemp("repo")
    build_repo(path)
    return path


@pytest.fixture
def pkg_host(tmp_path, repo):
    """A private host whose rpm database, dnf state, /usr/share/doc and /var/tmp start empty."""
    require_tools("dnf", "rpm")
    dbpath = subprocess.run(
        ["rpm", "--eval", "%{_dbpath}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (tmp_path / "repos.d").mkdir()
    (tmp_path / "repos.d" / "test.repo").write_text(
        f"[mgmt-test]\nname=mgmt test\nbaseurl=http://127.0.0.1:{REPO_PORT}/\n"
        "gpgcheck=0\nmetadata_expire=0\n"
    )
    conf = tmp_path / "dnf.conf"
    conf.write_text(
        "[main]\n"
        f"reposdir={tmp_path}/repos.d\ncachedir={tmp_path}/dnf-cache\n"
        f"logdir={tmp_path}/dnf-log\npersistdir={tmp_path}/dnf-persist\n"
        # dnf's own default (a distribution's dnf.conf may say True, as RHEL 8's does): an
        # older version when the newest cannot be installed.
        "install_weak_deps=False\nbest=False\n"
    )
    host = PrivateHost(
        tmp_path,
        private=[dbpath, "/usr/share/doc", "/var/tmp"],  # rpm writes scriptlets to /var/tmp
        overlays={"/etc/dnf/dnf.conf": conf},
    )
    # The host sees only its own temp dir under /tmp: the repo is copied in.
    host.repo = Path(shutil.copytree(repo, tmp_path / "repo"))
    yield host
    host.close()


WEB_UNIT = """\
[Unit]
Description=mgmt test service
DefaultDependencies=no

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=mgmt-test.target
"""


@pytest.fixture
def systemd_host(tmp_path):
    """systemd as PID 1 in its own namespaces, with one test unit and journald."""
    from systemd_host import SystemdHost

    host = SystemdHost(
        tmp_path,
        {"mgmt-web.service": WEB_UNIT},
        wants=["systemd-journald.socket", "systemd-journald.service"],
    )
    yield host
    host.close()
