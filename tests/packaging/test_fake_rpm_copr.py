"""`mgmt-pkg fake-rpm --copr`: the phony SRPM goes to COPR (a local api_3 server)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from copr_server import CoprServer

from support import require_tools

LOGIN, TOKEN, USER = "bob-login", "bob-token", "bob"


def fake_rpm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "fake-rpm", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copr(tmp_path):
    with CoprServer() as server:
        server.state.users[LOGIN] = (USER, TOKEN)
        server.state.projects[(USER, "phony")] = ["fedora-rawhide-x86_64"]
        config = tmp_path / "copr.conf"
        server.write_config(config, LOGIN, TOKEN, USER)
        server.config = config
        yield server


def test_fake_rpm_submits_its_srpm(copr, tmp_path):
    require_tools("rpmbuild")
    out = tmp_path / "out"
    done = fake_rpm(
        "-n", "vagrant-libvirt", "-v", "0.0.24", "--iteration", "noop",
        "-d", "vagrant >= 1.6.5", "-o", str(out),
        "--copr", "bob/phony", "--copr-config", str(copr.config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    srpm = out / "vagrant-libvirt-0.0.24-noop.src.rpm"
    assert str(srpm) in done.stdout
    [build] = copr.state.builds.values()
    assert build.state == "succeeded"
    assert build.package[0] == "vagrant-libvirt"


def test_bad_copr_target_is_refused_before_building(tmp_path):
    out = tmp_path / "out"
    done = fake_rpm("-n", "x", "-v", "1", "-o", str(out), "--copr", "no-slash")
    assert done.returncode == 2
    assert done.stderr.startswith("mgmt-pkg: error: --copr: ")
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_a_project_copr_does_not_have_stops_the_run_before_building(copr, tmp_path):
    out = tmp_path / "out"
    done = fake_rpm("-n", "x", "-v", "1", "-o", str(out), "--copr", "bob/nope",
                    "--copr-config", str(copr.config))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("mgmt-pkg: error: checking bob/nope before the upload: ")
    assert not out.exists()  # nothing was built
    assert not copr.state.builds


def test_copr_options_need_copr(tmp_path):
    done = fake_rpm("-n", "x", "-v", "1", "-o", str(tmp_path), "--copr-nowait")
    assert done.returncode == 2
    assert "--copr-nowait needs --copr" in done.stderr


def test_rpm_of_real_files_submits_its_srpm_with_the_tarball(copr, tmp_path):
    require_tools("rpmbuild")
    (tmp_path / "data.txt").write_text("real\n")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "rpm", "-n", "real", "-v", "1", "-o", str(out),
         f"{tmp_path / 'data.txt'}=/usr/share/real/data.txt",
         "--copr", "bob/phony", "--copr-config", str(copr.config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [build] = copr.state.builds.values()
    assert build.state == "succeeded"
    assert build.package[0] == "real"
