"""Same inputs, two directories, two moments: byte-identical SRPM and RPM."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rpm_helpers import EXAMPLE, run_cli

from support import require_tools


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_twice(tmp_path: Path, *extra: str):
    digests = []
    for folder in ("first", "second-in-a-longer-directory-name"):
        out = tmp_path / folder / "out"
        result = run_cli("fake-rpm", *EXAMPLE, *extra, "-o", str(out))
        assert result.code == 0, result.err
        digests.append([sha256(p) for p in result.paths])
        next_second()
    return digests


def next_second() -> None:
    """Let the clock move on, so that the second build happens at another time:
    rpm stamps build time and file mtimes in whole seconds unless told not to."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.01)


@pytest.mark.parametrize("epoch", [["--source-date-epoch", "1439251200"], []])
def test_two_builds_are_byte_identical(tmp_path: Path, epoch):
    require_tools("rpmbuild")
    first, second = build_twice(tmp_path, *epoch)
    assert first == second
    assert len(first) == 3


def test_a_different_source_date_epoch_changes_the_packages(tmp_path: Path):
    """The check above could pass if nothing varied; this shows the input matters."""
    require_tools("rpmbuild")
    one = run_cli(
        "fake-rpm", *EXAMPLE, "--source-date-epoch", "1439251200", "-o", str(tmp_path / "a")
    )
    two = run_cli(
        "fake-rpm", *EXAMPLE, "--source-date-epoch", "1439337600", "-o", str(tmp_path / "b")
    )
    assert sha256(one.paths[2]) != sha256(two.paths[2])


@pytest.mark.parametrize("command", ["fake-rpm", "rpm"])
def test_the_umask_does_not_change_the_packages(tmp_path: Path, command):
    """The SRPM kept the spec's and the tarball's modes as the umask made them."""
    require_tools("rpmbuild")
    payload = tmp_path / "payload"
    payload.write_text("data\n")
    payload.chmod(0o644)
    extra = [f"{payload}=/usr/share/um/payload"] if command == "rpm" else []
    digests = []
    for umask in (0o022, 0o077):
        previous = os.umask(umask)
        try:
            out = tmp_path / f"out-{umask:o}"
            result = run_cli(
                command, *EXAMPLE, "--source-date-epoch", "1439251200", *extra, "-o", str(out)
            )
        finally:
            os.umask(previous)
        assert result.code == 0, result.err
        digests.append([sha256(p) for p in result.paths if p.suffix == ".rpm"])
    assert digests[0] == digests[1] and len(digests[0]) == 2


@pytest.mark.parametrize("command", ["fake-rpm", "rpm"])
def test_the_user_who_builds_does_not_change_the_packages(tmp_path: Path, command):
    """The SRPM's spec and tarball were owned by the user who built (rpm takes
    the owner from the disk): another user's build differed, and named them."""
    require_tools("rpmbuild", "unshare", "rpm")
    payload = tmp_path / "payload"
    payload.write_text("data\n")
    payload.chmod(0o644)
    extra = [f"{payload}=/usr/share/um/payload"] if command == "rpm" else []
    args = [command, *EXAMPLE, "--source-date-epoch", "1439251200", *extra]
    mine = run_cli(*args, "-o", str(tmp_path / "mine"))
    assert mine.code == 0, mine.err
    # nobody, in a user namespace of its own: rpmbuild sees files owned by uid 65534
    theirs = subprocess.run(
        ["unshare", "--user", "--map-user=65534", "--map-group=65534",
         sys.executable, "-m", "mgmt_pkg", *args, "-o", str(tmp_path / "theirs")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    owners = subprocess.run(
        ["rpm", "-qp", "--qf", "[%{FILEUSERNAME}:%{FILEGROUPNAME}\n]", str(mine.paths[-2])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert owners and set(owners) == {"root:root"}, owners
    for path in mine.paths:
        if path.suffix == ".rpm":
            assert sha256(path) == sha256(tmp_path / "theirs" / path.name), path.name


@pytest.mark.parametrize("command", ["fake-rpm", "rpm"])
def test_the_users_rpm_macros_do_not_change_the_packages(tmp_path: Path, monkeypatch, command):
    """rpmbuild read ~/.rpmmacros: its %packager won over -m, and its %vendor,
    %distribution and payload compression went into the packages."""
    require_tools("rpmbuild", "rpm")
    payload = tmp_path / "payload"
    payload.write_text("data\n")
    extra = [f"{payload}=/usr/share/um/payload"] if command == "rpm" else []
    args = [command, *EXAMPLE, "-m", "Bob <bob@example.com>", "--source-date-epoch",
            "1439251200", *extra]  # fmt: skip
    digests = []
    for home, macros in (("plain", ""), ("personal", PERSONAL_MACROS)):
        (tmp_path / home).mkdir()
        (tmp_path / home / ".rpmmacros").write_text(macros)
        monkeypatch.setenv("HOME", str(tmp_path / home))
        result = run_cli(*args, "-o", str(tmp_path / home / "out"))
        assert result.code == 0, result.err
        digests.append([sha256(p) for p in result.paths if p.suffix == ".rpm"])
    query = "%{PACKAGER}|%{VENDOR}|%{DISTRIBUTION}|%{PAYLOADCOMPRESSOR}"
    tags = subprocess.run(
        ["rpm", "-qp", "--qf", query, str(result.paths[-1])],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert tags.split("|")[:3] == ["Bob <bob@example.com>", "(none)", "(none)"], tags
    assert digests[0] == digests[1] and len(digests[0]) == 2


PERSONAL_MACROS = """\
%packager Alice <alice@example.com>
%vendor AliceCorp
%distribution Alice Linux
%_binary_payload w9.xzdio
%_source_payload w9.xzdio
"""
