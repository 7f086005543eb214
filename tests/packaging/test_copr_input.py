"""`mgmt-pkg copr` arguments checked before anything is sent: chroots and SRPM paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.pkgcli import run_cli

CONFIG = "[copr-cli]\nlogin = alice\nusername = alice\ntoken = t\ncopr_url = https://c.example\n"


def run(*args: str):
    """``mgmt-pkg ARGS``: its exit code and stderr."""
    result = run_cli(*args)
    return result.code, result.err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "copr.conf"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def srpm(tmp_path: Path) -> Path:
    """A file named like an SRPM: a chroot is refused before it is read."""
    path = tmp_path / "x-1-1.src.rpm"
    path.write_bytes(b"")
    return path


BAD_CHROOTS = ["", "bogus chroot", "fedora-39", "fedora-rawhide-x86_64 ", "-39-x86_64"]


@pytest.mark.parametrize("chroot", BAD_CHROOTS)
def test_project_refuses_a_chroot_of_the_wrong_shape(config: Path, chroot: str):
    code, err = run("copr", "project", "alice/x", "--chroot", chroot, "--dry-run",
                    "--config", str(config))  # fmt: skip
    assert code == 2, err
    assert err == (
        f"mgmt-pkg: error: --chroot {chroot!r}: not a chroot name (NAME-VERSION-ARCH, "
        "e.g. fedora-rawhide-x86_64 or epel-9-x86_64)\n"
    )


@pytest.mark.parametrize("chroot", BAD_CHROOTS)
def test_build_refuses_a_chroot_of_the_wrong_shape(config: Path, srpm: Path, chroot: str):
    code, err = run("copr", "build", "alice/x", str(srpm), "--chroot", chroot, "--dry-run",
                    "--config", str(config))  # fmt: skip
    assert code == 2, err
    assert err.startswith(f"mgmt-pkg: error: --chroot {chroot!r}: not a chroot name")


REAL_CHROOTS = [
    "fedora-rawhide-x86_64",
    "epel-9-aarch64",
    "centos-stream-9-x86_64",
    "opensuse-leap-15.5-x86_64",
    "fedora-39-ppc64le",
    "mageia-cauldron-i586",
]


def test_the_shape_check_passes_real_chroot_names(config: Path):
    """Not too strict: COPR's own names pass, in one request, beside a refused one."""
    code, err = run("copr", "project", "alice/x", *(f"--chroot={c}" for c in REAL_CHROOTS),
                    "--dry-run", "--config", str(config))  # fmt: skip
    assert code == 0, err
    code, err = run("copr", "project", "alice/x", *(f"--chroot={c}" for c in REAL_CHROOTS),
                    "--chroot=fedora rawhide", "--dry-run", "--config", str(config))  # fmt: skip
    assert code == 2 and "--chroot 'fedora rawhide'" in err, err


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("folder.src.rpm", "is a directory, not a file"), ("/dev/null", "not a regular file")],
    ids=["directory", "device"],
)
def test_build_says_what_the_srpm_path_is(tmp_path: Path, config: Path, name: str, fragment):
    path = Path(name) if name.startswith("/") else tmp_path / name
    if not name.startswith("/"):
        path.mkdir()
    code, err = run("copr", "build", "alice/x", str(path), "--dry-run", "--config", str(config))
    assert code == 2, err
    assert err == f"mgmt-pkg: error: {path}: {fragment}" + (
        " (a device, FIFO or socket)\n" if "regular" in fragment else "\n"
    )


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--chroot", "fedora-rawhide-x86_64", "--chroot", "fedora-rawhide-x86_64"],
         "--chroot 'fedora-rawhide-x86_64': given more than once"),
        (["--timeout", "0"], "--timeout: must be more than 0 seconds"),
        (["--poll-interval", "-1"], "--poll-interval: '-1' is negative"),
    ],
)  # fmt: skip
def test_build_refuses_what_it_could_only_get_wrong(config: Path, srpm: Path, flags, said):
    code, err = run("copr", "build", "alice/x", str(srpm), *flags, "--config", str(config))
    assert code == 2, err
    assert err == f"mgmt-pkg: error: {said}\n"
