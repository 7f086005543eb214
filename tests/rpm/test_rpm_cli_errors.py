"""fake-rpm, rpm, inspect and repo on bad input: exit 2, one line naming it, nothing left.

Permission cases run `mgmt-pkg` without CAP_DAC_OVERRIDE (setpriv), since the
tests run as root in CI and root would otherwise write and read anything.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from rpm_helpers import run_cli

from support import require_tools

NO_OVERRIDE = "-dac_override,-dac_read_search"


def unprivileged(*args: str) -> subprocess.CompletedProcess:
    """``mgmt-pkg ARGS`` as a user the mode bits apply to (root without its overrides)."""
    command: List[str] = [sys.executable, "-m", "mgmt_pkg", *args]
    if os.geteuid() == 0:
        require_tools("setpriv")
        command = ["setpriv", "--bounding-set", NO_OVERRIDE, "--inh-caps", NO_OVERRIDE, "--",
                   *command]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def foreign(path: Path, mode: int) -> Path:
    """Give ``path`` to nobody (if we are root) with ``mode``: not ours to read or write."""
    if os.geteuid() == 0:
        os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    path.chmod(mode)
    return path


def one_line(err: str, code: int, got: int, *fragments: str) -> None:
    assert got == code, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("mgmt-pkg: error: "), err
    for fragment in fragments:
        assert fragment in err, err


# --- an output folder this run made goes again when the run fails ---------------------


def test_an_unreadable_file_leaves_no_output_folders(tmp_path: Path):
    require_tools("rpmbuild")
    secret = tmp_path / "secret"
    secret.write_text("s\n")
    foreign(secret, 0o600)
    out = tmp_path / "o" / "new" / "deep"
    done = unprivileged("rpm", "-n", "foo", "-v", "1", f"{secret}=/opt/s", "-o", str(out))
    one_line(done.stderr, 2, done.returncode, f"{secret}: cannot read: Permission denied")
    assert list(tmp_path.iterdir()) == [secret]


def test_an_unreadable_file_in_a_tree_leaves_no_output_folders(tmp_path: Path):
    require_tools("rpmbuild")
    tree = tmp_path / "tree"
    (tree / "t").mkdir(parents=True)
    (tree / "t" / "ok").write_text("ok\n")
    (tree / "t" / "secret").write_text("s\n")
    foreign(tree / "t" / "secret", 0o600)
    out = tmp_path / "o" / "new"
    done = unprivileged("rpm", "-n", "foo", "-v", "1", f"{tree}=/opt/s", "-o", str(out))
    one_line(done.stderr, 2, done.returncode, "secret: cannot read: Permission denied")
    assert not (tmp_path / "o").exists()


def test_a_folder_that_can_be_listed_but_not_entered_is_bad_input(tmp_path: Path):
    """A tree given 'chmod -R 644' has folders one may list but not enter: exit 1
    with 'Permission denied: tree/t/f', the error's own words, not naming why."""
    require_tools("rpmbuild")
    tree = tmp_path / "tree"
    (tree / "t").mkdir(parents=True)
    (tree / "t" / "f").write_text("f\n")
    foreign(tree / "t", 0o644)
    out = tmp_path / "o" / "new"
    done = unprivileged("rpm", "-n", "foo", "-v", "1", f"{tree}/=/opt/s", "-o", str(out))
    one_line(done.stderr, 2, done.returncode, f"{tree}/t/f: cannot read: Permission denied")
    assert not (tmp_path / "o").exists()


def test_a_failed_build_removes_only_the_folders_it_made(tmp_path: Path):
    """rpmbuild refuses a binary in a noarch package: the folders made for the output go,
    the one that was there before stays with what was in it."""
    require_tools("rpmbuild")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep").write_text("")
    binary = Path("/bin/true").resolve()
    out = tmp_path / "mine" / "new" / "deep"
    result = run_cli("rpm", "-n", "foo", "-v", "1", f"{binary}=/usr/bin/tool", "-o", str(out))
    one_line(result.err, 2, result.code, "build with -a native")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["keep"]


# --- an output folder that cannot be written is bad input, whether or not it exists ----


def test_an_unwritable_output_dir_is_exit_2_whether_or_not_it_exists(tmp_path: Path):
    require_tools("rpmbuild")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    foreign(readonly, 0o555)
    existing = unprivileged("fake-rpm", "-n", "foo", "-v", "1", "-o", str(readonly))
    one_line(existing.stderr, 2, existing.returncode,
             f"--output-dir: cannot write into {readonly}: permission denied")  # fmt: skip
    to_make = unprivileged("fake-rpm", "-n", "foo", "-v", "1", "-o", str(readonly / "sub"))
    one_line(to_make.stderr, 2, to_make.returncode,
             f"--output-dir: cannot create {readonly / 'sub'}: Permission denied")  # fmt: skip
    assert list(readonly.iterdir()) == []


def test_an_empty_or_file_output_dir_is_refused_before_building(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" was taken for "."
    empty = run_cli("fake-rpm", "-n", "foo", "-v", "1", "-o", "")
    one_line(empty.err, 2, empty.code, "--output-dir: the path is empty")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    file = run_cli("fake-rpm", "-n", "foo", "-v", "1", "-o", str(tmp_path / "file"))
    one_line(file.err, 2, file.code, f"--output-dir {tmp_path / 'file'}: exists and is not a dir")


@pytest.mark.parametrize(
    ("taken", "extra"),
    [("x.spec", []), ("x-1-1.src.rpm", []), ("x-1-1.noarch.rpm", []), ("x.spec", ["--spec-only"])],
)
def test_a_folder_where_an_output_file_goes_is_refused_and_nothing_is_left(
    tmp_path: Path, taken: str, extra: List[str]
):
    """The rename onto the folder failed after the files before it were placed (exit 1),
    leaving them and a hidden copy (.x-1-1.noarch.rpm.XXXXXXXX) in the output folder."""
    require_tools("rpmbuild")
    out = tmp_path / "out"
    (out / taken).mkdir(parents=True)
    result = run_cli("fake-rpm", "-n", "x", "-v", "1", "-o", str(out), *extra)
    one_line(result.err, 2, result.code, f"{out / taken} is a directory, where {taken} goes")
    assert [p.name for p in out.iterdir()] == [taken]
    assert list((out / taken).iterdir()) == []


# --- --copr: its config is read before anything is built ------------------------------


@pytest.mark.parametrize("command", ["fake-rpm", "rpm"])
def test_a_missing_copr_config_is_refused_before_building(tmp_path: Path, command: str):
    (tmp_path / "data").write_text("x\n")
    out = tmp_path / "out"
    args = [command, "-n", "foo", "-v", "1", "-o", str(out), "--copr", "alice/x",
            "--copr-config", str(tmp_path / "absent.conf")]  # fmt: skip
    if command == "rpm":
        args.append(f"{tmp_path / 'data'}=/opt/data")
    result = run_cli(*args)
    one_line(result.err, 2, result.code, f"copr config {tmp_path / 'absent.conf'}: not found")
    assert not out.exists()


def test_the_default_copr_config_is_checked_too(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "o"
    result = run_cli("fake-rpm", "-n", "foo", "-v", "1", "--copr", "alice/x", "-o", str(out))
    one_line(result.err, 2, result.code, "home/.config/copr: not found")
    assert not out.exists()


def test_a_bad_copr_chroot_is_refused_before_building(tmp_path: Path):
    out = tmp_path / "o"
    result = run_cli("fake-rpm", "-n", "foo", "-v", "1", "--copr", "alice/x",
                     "--copr-chroot", "bogus chroot", "-o", str(out))  # fmt: skip
    one_line(result.err, 2, result.code, "--copr-chroot 'bogus chroot': not a chroot name")
    assert not out.exists()


# --- inspect: say what the file is -----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "not an RPM package"),
        (b"junk\n", "not an RPM package"),
        (b"not an rpm at all\n" * 10, "not an RPM package"),
        (b"\xed\xab\xee\xdb" + b"\x00" * 40, "not an RPM package (its header is cut short"),
    ],
    ids=["empty", "junk", "text", "cut-short"],
)
def test_inspect_of_something_else_than_an_rpm(tmp_path: Path, content: bytes, fragment: str):
    path = tmp_path / "x.rpm"
    path.write_bytes(content)
    result = run_cli("inspect", str(path))
    one_line(result.err, 2, result.code, f"{path}: {fragment}")


@pytest.mark.parametrize(
    ("path", "fragment"),
    [("{tmp}", "is a directory, not a file"), ("/dev/null", "not a regular file")],
    ids=["directory", "device"],
)
def test_inspect_says_what_the_path_is(tmp_path: Path, path: str, fragment: str):
    named = path.format(tmp=tmp_path)
    result = run_cli("inspect", named)
    one_line(result.err, 2, result.code, f"{named}: {fragment}")


# --- repo: what createrepo_c really indexed --------------------------------------------


def _primary_count(folder: Path) -> int:
    repomd = (folder / "repodata" / "repomd.xml").read_text()
    href = re.search(r'<location href="(repodata/[^"]+-primary\.xml\.gz)"', repomd)[1]
    primary = gzip.decompress((folder / href).read_bytes()).decode()
    return int(re.search(r'<metadata [^>]*packages="(\d+)"', primary)[1])


def _damage_main_header(package: Path, target: Path) -> None:
    """A copy of ``package`` whose main header's first entry has a bad type: rpmfile reads
    it, rpm (and so createrepo_c) refuses it. The signature's SHA256 of the header is made
    to match, so that only rpm's reading of the header finds the damage."""
    data = bytearray(package.read_bytes())
    magic = b"\x8e\xad\xe8\x01"  # a header's magic: the signature's, then the main one's
    main = data.index(magic, data.index(magic) + 1)
    entries, size = (
        int.from_bytes(data[main + 8 : main + 12], "big"),
        int.from_bytes(data[main + 12 : main + 16], "big"),
    )
    end = main + 16 + 16 * entries + size
    old = hashlib.sha256(data[main:end]).hexdigest().encode()
    data[main + 16 + 5] ^= 0xFF  # past magic, reserved, counts: entry 0's type
    data[:main] = data[:main].replace(old, hashlib.sha256(data[main:end]).hexdigest().encode())
    target.write_bytes(bytes(data))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A folder with good's RPM and SRPM, made a repository once."""
    require_tools("rpmbuild", "createrepo_c")
    folder = tmp_path / "repo"
    assert run_cli("fake-rpm", "-n", "good", "-v", "1", "-o", str(folder)).code == 0
    assert run_cli("repo", str(folder)).code == 0
    return folder


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_repo_refuses_a_file_that_is_not_an_rpm_and_changes_nothing(repo: Path):
    before = _snapshot(repo)
    (repo / "a.rpm").write_text("junk\n")
    result = run_cli("repo", str(repo))
    one_line(result.err, 2, result.code, f"{repo / 'a.rpm'}: not an RPM package")
    assert _snapshot(repo) == {**before, Path("a.rpm"): b"junk\n"}


def test_repo_refuses_a_package_createrepo_c_skips_and_changes_nothing(repo: Path):
    before = _snapshot(repo)
    damaged = repo / "damaged.rpm"
    _damage_main_header(repo / "good-1-1.noarch.rpm", damaged)
    result = run_cli("repo", str(repo))
    one_line(result.err, 2, result.code, f"{damaged}: createrepo_c could not read it",
             "the repository is unchanged")  # fmt: skip
    assert _snapshot(repo) == {**before, Path("damaged.rpm"): damaged.read_bytes()}
    assert sorted(p.name for p in repo.iterdir()) == [
        "damaged.rpm", "good-1-1.noarch.rpm", "good-1-1.src.rpm", "good.spec", "repodata"
    ]  # fmt: skip


@pytest.mark.parametrize("damage", ["cut short", "payload changed", "header changed"])
def test_repo_refuses_a_damaged_package_and_changes_nothing(repo: Path, damage: str):
    """createrepo_c reads the header only: a package cut short after it, or changed,
    was indexed, and dnf failed on it at install ("does not verify")."""
    before = _snapshot(repo)
    data = bytearray((repo / "good-1-1.noarch.rpm").read_bytes())
    if damage == "cut short":
        data = data[:-16]
    elif damage == "payload changed":
        data[-16] ^= 0xFF
    else:
        at = data.index(b"Phony package that satisfies")
        data[at] = ord("p")
    damaged = repo / "damaged.rpm"
    damaged.write_bytes(bytes(data))
    part = "header" if damage == "header changed" else "payload"
    result = run_cli("repo", str(repo))
    one_line(result.err, 2, result.code, f"{damaged}: damaged: its {part} does not match",
             "the repository is unchanged")  # fmt: skip
    assert _snapshot(repo) == {**before, Path("damaged.rpm"): bytes(data)}


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_repo_refuses_a_repodata_that_is_no_directory(repo: Path, kind: str):
    """The new metadata's rename onto it failed after createrepo_c ran: exit 1, naming
    the hidden stage folder ("Not a directory: DIR/.mgmt-pkg-repo-.../repodata")."""
    shutil.rmtree(repo / "repodata")
    elsewhere = repo.parent / "elsewhere"
    elsewhere.mkdir()
    if kind == "file":
        (repo / "repodata").write_text("mine\n")
    else:
        (repo / "repodata").symlink_to(elsewhere)
    before = _snapshot(repo)
    result = run_cli("repo", str(repo))
    one_line(result.err, 2, result.code, f"{repo / 'repodata'}: is ", "move it away")
    assert _snapshot(repo) == before
    assert not [p for p in repo.iterdir() if p.name.startswith(".")]
    assert list(elsewhere.iterdir()) == []


def test_repo_refuses_a_folder_it_cannot_read(repo: Path):
    """Its packages were left out of the repository without a word (exit 0)."""
    locked = repo / "locked"
    assert run_cli("fake-rpm", "-n", "hidden", "-v", "1", "-o", str(locked)).code == 0
    foreign(locked, 0o700)
    before = _snapshot(repo)
    result = unprivileged("repo", str(repo))
    one_line(result.stderr, 2, result.returncode, f"{locked}: cannot read: Permission denied")
    assert _snapshot(repo) == before


def test_repo_refuses_a_symlink_to_a_folder_above_it(repo: Path):
    """createrepo_c followed it some forty times: each package was indexed as often."""
    (repo / "sub").mkdir()
    (repo / "sub" / "loop").symlink_to("..")
    before = _snapshot(repo)
    result = run_cli("repo", str(repo))
    one_line(result.err, 2, result.code, f"{repo / 'sub' / 'loop'}: a symlink to a folder it is in")
    assert _snapshot(repo) == before
    (repo / "sub" / "loop").unlink()
    (repo / "sub" / "elsewhere").symlink_to(repo.parent)  # above the repository itself
    result = run_cli("repo", str(repo))
    one_line(result.err, 2, result.code, f"{repo / 'sub' / 'elsewhere'}: a symlink to a folder")


def test_repo_refuses_a_repodata_it_may_not_replace(repo: Path):
    """Another user's read-only repodata cannot be moved: that was exit 1, a failed
    operation, where a place we may not write is bad input."""
    foreign(repo / "repodata", 0o555)
    before = _snapshot(repo)
    result = unprivileged("repo", str(repo))
    one_line(result.stderr, 2, result.returncode,
             f"{repo}: cannot write to {repo / 'repodata'}: Permission denied")  # fmt: skip
    assert _snapshot(repo) == before
    assert not [p for p in repo.iterdir() if p.name.startswith(".")]


def test_repo_counts_what_createrepo_c_indexed(repo: Path):
    """A folder named like a package holds packages; it is not one itself."""
    more = repo / "more.rpm"
    assert run_cli("fake-rpm", "-n", "other", "-v", "2", "-o", str(more)).code == 0
    result = run_cli("repo", str(repo))
    assert result.code == 0, result.err
    assert result.out == f"{repo / 'repodata' / 'repomd.xml'} (4 packages)\n"
    assert _primary_count(repo) == 4
    assert not [p for p in repo.iterdir() if p.name.startswith(".")]  # no stage left


def test_a_bad_source_date_epoch_from_the_environment_is_named_so(tmp_path: Path, monkeypatch):
    """It was reported as --source-date-epoch, an option the user never gave."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000.5")
    out = tmp_path / "out"
    result = run_cli("fake-rpm", "-n", "foo", "-v", "1", "-o", str(out))
    one_line(result.err, 2, result.code, "$SOURCE_DATE_EPOCH: '1700000000.5' is not a")
    given = run_cli("fake-rpm", "-n", "foo", "-v", "1", "-o", str(out), "--source-date-epoch", "x")
    one_line(given.err, 2, given.code, "--source-date-epoch: 'x' is not a")
    assert not out.exists()


def test_an_empty_path_is_refused_not_taken_for_the_current_folder(repo: Path, monkeypatch):
    """`mgmt-pkg repo "$REPO"` with $REPO unset made the current folder a repository."""
    monkeypatch.chdir(repo)
    shutil.rmtree(repo / "repodata")
    made = run_cli("repo", "")
    one_line(made.err, 2, made.code, "DIR: the path is empty")
    assert not (repo / "repodata").exists()
    read = run_cli("inspect", "")
    one_line(read.err, 2, read.code, "FILE.rpm: the path is empty")
