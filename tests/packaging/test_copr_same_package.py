"""`copr build` of two SRPMs of one name-version-release.

Two copies of one package (a build kept in two folders, or one rebuilt without a
new release) went up as two builds: the same package twice at COPR, and when
their contents differ, the repository kept whichever build ended last. They are
refused before anything is sent (exit 2), naming both files and the package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from copr_server import CoprServer

from support import require_tools

USER, TOKEN, CHROOT = "alice", "secret-token", "fedora-rawhide-x86_64"


@pytest.fixture
def copr(tmp_path):
    with CoprServer() as server:
        server.state.users[USER] = (USER, TOKEN)
        server.state.projects[(USER, "demo")] = [CHROOT]
        server.config = tmp_path / "copr.conf"
        server.write_config(server.config, USER, TOKEN)
        yield server


def _mgmt_pkg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _srpm(folder: Path, name: str, summary: str = "One package") -> Path:
    require_tools("rpmbuild")
    done = _mgmt_pkg("fake-rpm", "-n", name, "-v", "1.0", "--summary", summary, "--srpm-only",
                     "-o", str(folder))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder / f"{name}-1.0-1.src.rpm"


def _refused(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["upload", "dry-run"])
def test_two_srpms_of_one_package_are_refused_before_anything_is_sent(copr, tmp_path, dry_run):
    first = _srpm(tmp_path / "a", "hello")
    second = _srpm(tmp_path / "b", "hello", summary="Rebuilt, release not raised")
    done = _mgmt_pkg("copr", "build", f"{USER}/demo", str(first), str(second), *dry_run,
                     "--config", str(copr.config))  # fmt: skip
    _refused(done, f"{second}: hello-1.0-1, as {first} is", "would be built twice")
    assert copr.state.requests == [] and copr.state.builds == {}


def test_a_copy_of_an_srpm_is_refused_too(copr, tmp_path):
    first = _srpm(tmp_path / "a", "hello")
    (tmp_path / "b").mkdir()
    copy = Path(shutil.copy(first, tmp_path / "b"))
    done = _mgmt_pkg("copr", "build", f"{USER}/demo", str(first), str(copy),
                     "--config", str(copr.config))  # fmt: skip
    _refused(done, f"{copy}: hello-1.0-1, as {first} is")
    assert copr.state.builds == {}


def test_two_packages_go_up_as_two_builds(copr, tmp_path):
    srpms = [_srpm(tmp_path / "a", "hello"), _srpm(tmp_path / "b", "world")]
    done = _mgmt_pkg("copr", "build", f"{USER}/demo", *map(str, srpms), "--nowait",
                     "--config", str(copr.config))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(b.package[0] for b in copr.state.builds.values()) == ["hello", "world"]
