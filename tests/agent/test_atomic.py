"""mgmt.resources.atomic on real files: what a directory holds during and after a write.

``before_rename`` runs at the last moment before the new content takes the
target's name, so what the directory holds then is what a crash at that moment
would leave behind.
"""

from __future__ import annotations

import errno
import os
import re
import stat

import pytest

from mgmt.resources import atomic
from mgmt.resources.atomic import atomic_write

TARGET = "target"
TEMP_NAME = re.compile(r"^\.target\.[0-9a-f]{12}\.mgmt-tmp$")


class Interrupted(Exception):
    """Stands for anything that stops a write half-way (a full disk, a signal)."""


@pytest.fixture(autouse=True)
def umask_022():
    # Fixed, so that mode 0o666 always needs the chmod that the umask would undo.
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def unnamed(tmp_path):
    """O_TMPFILE, as the agent uses it wherever the system allows."""
    assert atomic._UNNAMED_OK, "this Linux has O_TMPFILE and /proc/self/fd"
    try:
        os.close(os.open(tmp_path, os.O_TMPFILE | os.O_RDWR, 0o600))
    except OSError as err:
        if err.errno != errno.EOPNOTSUPP:
            raise
        pytest.skip(f"the file system under {tmp_path} has no O_TMPFILE")


@pytest.fixture
def named(monkeypatch):
    """The fallback for file systems without O_TMPFILE."""
    monkeypatch.setattr(atomic, "_UNNAMED_OK", False)


@pytest.fixture(params=["unnamed", "named"])
def either(request):
    request.getfixturevalue(request.param)
    return request.param


def old_file(tmp_path) -> os.stat_result:
    path = tmp_path / TARGET
    path.write_bytes(b"old content\n")
    path.chmod(0o600)
    return path.stat()


def assert_only_target(tmp_path, data: bytes, mode: int) -> os.stat_result:
    assert os.listdir(tmp_path) == [TARGET]
    path = tmp_path / TARGET
    assert path.read_bytes() == data
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == mode
    return st


@pytest.mark.parametrize("mode", [0o640, 0o666])
def test_unnamed_new_content_has_no_name_until_complete(unnamed, tmp_path, mode):
    data = b"new content\n" * 1000
    seen = {}

    def before_rename(written: os.stat_result) -> None:
        seen["entries"] = os.listdir(tmp_path)
        seen["written"] = written

    returned = atomic_write(str(tmp_path / TARGET), data, mode, before_rename)

    assert seen["entries"] == []  # not even a temp name for the new content
    written = seen["written"]
    assert written.st_nlink == 0  # unnamed, yet complete and with its final mode
    assert (written.st_size, stat.S_IMODE(written.st_mode)) == (len(data), mode)
    st = assert_only_target(tmp_path, data, mode)
    assert st.st_ino == written.st_ino == returned.st_ino  # the very file that was written


@pytest.mark.parametrize("mode", [0o640, 0o666])
def test_unnamed_replacement_leaves_the_old_file_in_view_until_the_rename(unnamed, tmp_path, mode):
    old = old_file(tmp_path)
    data = b"new content\n"
    seen = {}

    def before_rename(written: os.stat_result) -> None:
        seen["entries"] = os.listdir(tmp_path)
        seen["content"] = (tmp_path / TARGET).read_bytes()
        seen["written"] = written

    atomic_write(str(tmp_path / TARGET), data, mode, before_rename)

    assert seen["entries"] == [TARGET]
    assert seen["content"] == b"old content\n"
    assert seen["written"].st_nlink == 0
    st = assert_only_target(tmp_path, data, mode)
    assert st.st_ino == seen["written"].st_ino != old.st_ino  # replaced, not rewritten


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replace"])
def test_named_fallback_holds_one_temp_file_beside_the_target_then_none(named, tmp_path, existing):
    if existing:
        old_file(tmp_path)
    data, mode = b"new content\n", 0o666
    seen = {}

    def before_rename(written: os.stat_result) -> None:
        entries = os.listdir(tmp_path)
        temps = [name for name in entries if TEMP_NAME.match(name)]
        seen["others"] = sorted(set(entries) - set(temps))
        seen["temps"] = temps
        if len(temps) == 1:
            temp = tmp_path / temps[0]
            seen["temp"] = (temp.read_bytes(), temp.stat(), written)
        seen["content"] = (tmp_path / TARGET).read_bytes() if existing else None

    atomic_write(str(tmp_path / TARGET), data, mode, before_rename)

    assert seen["others"] == ([TARGET] if existing else [])
    assert len(seen["temps"]) == 1
    content, temp_st, written = seen["temp"]
    assert content == data and temp_st.st_ino == written.st_ino
    assert stat.S_IMODE(temp_st.st_mode) == mode
    assert seen["content"] == (b"old content\n" if existing else None)
    st = assert_only_target(tmp_path, data, mode)
    assert st.st_ino == written.st_ino


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replace"])
def test_a_write_stopped_before_the_rename_leaves_the_old_state_and_no_temp_file(
    either, tmp_path, existing
):
    old = old_file(tmp_path) if existing else None
    calls = []

    def before_rename(written: os.stat_result) -> None:
        calls.append(written)
        raise Interrupted

    with pytest.raises(Interrupted):
        atomic_write(str(tmp_path / TARGET), b"new content\n", 0o644, before_rename)

    assert len(calls) == 1  # the write got as far as the rename
    if old is None:
        assert os.listdir(tmp_path) == []
    else:
        st = assert_only_target(tmp_path, b"old content\n", 0o600)
        assert (st.st_ino, st.st_mtime_ns) == (old.st_ino, old.st_mtime_ns)


def test_a_failing_rename_leaves_the_target_alone_and_no_temp_file(either, tmp_path):
    # A non-empty directory cannot be replaced by a file: the rename itself
    # fails, after the new content has taken (in both modes) a temp name.
    target = tmp_path / TARGET
    target.mkdir()
    (target / "inside").write_bytes(b"kept\n")

    with pytest.raises(IsADirectoryError):
        atomic_write(str(target), b"new content\n", 0o644)

    assert os.listdir(tmp_path) == [TARGET]
    assert os.listdir(target) == ["inside"]
    assert (target / "inside").read_bytes() == b"kept\n"


def test_a_name_that_cannot_be_replaced_is_named_not_the_temp_file(tmp_path, either):
    """A file the rename cannot replace (an immutable one: EPERM; here a folder) was
    reported as ".target.RANDOM.mgmt-tmp", a name nobody knows, and nothing is left."""
    target = tmp_path / TARGET
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError) as raised:
        atomic_write(str(target), b"new", 0o644)
    assert raised.value.filename == str(target)
    assert sorted(os.listdir(tmp_path)) == [TARGET]
