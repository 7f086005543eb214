"""The file kind never acts through a symlink, keeps owners and xattrs, and refuses system trees.

Everything happens inside the test's temp dir; the link targets the tests
plant are files of that dir too, so a failure shows as a changed "victim",
never as damage to the machine. Protected-path refusals are checked where
they are raised (graph validation and noop checks): nothing is removed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import struct
import threading

import pytest
from helpers import make_init

from mgmt.resources.base import FieldError, ResourceError, fill_params
from mgmt.resources.file import FileRes


def file_res(watcher, tmp_path, **params):
    res = FileRes("f", fill_params(FileRes, params))
    res.setup(make_init(watcher, tmp_path))
    return res


@pytest.fixture
def victim(tmp_path):
    """A file the agent must never touch, and a link to it at the managed path."""
    target = tmp_path / "victim"
    target.write_text("precious")
    target.chmod(0o600)
    link = tmp_path / "d" / "f"
    link.parent.mkdir()
    link.symlink_to(target)
    return target, link


def untouched(target) -> bool:
    st = target.stat()
    return target.read_text() == "precious" and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0


def test_mode_only_on_a_link_is_refused_and_the_target_untouched(watcher, tmp_path, victim):
    target, link = victim
    res = file_res(watcher, tmp_path, path=str(link), mode="0666", owner=65534)
    with pytest.raises(ResourceError, match="is a symbolic link"):
        res.check_apply(True)
    assert untouched(target) and link.is_symlink()


def test_content_replaces_the_link_even_when_the_lengths_match(watcher, tmp_path, victim):
    target, link = victim
    # The link's own text is exactly as long as the content: an lstat size check passes.
    content = "x" * len(os.readlink(link))
    res = file_res(watcher, tmp_path, path=str(link), content=content, mode="0640")
    assert res.check_apply(False) is False  # noop: wrong, and nothing changed
    assert link.is_symlink() and untouched(target)
    assert res.check_apply(True) is False
    assert not link.is_symlink() and link.read_text() == content
    assert stat.S_IMODE(link.lstat().st_mode) == 0o640
    assert untouched(target)
    assert res.check_apply(True) is True


def test_directory_mode_never_follows_a_link(watcher, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    link = tmp_path / "dirlink"
    link.symlink_to(elsewhere)
    res = file_res(watcher, tmp_path, path=str(link) + "/", mode="0777")
    with pytest.raises(ResourceError, match="not a directory"):
        res.check_apply(True)
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o700


def test_a_tree_copy_never_writes_through_a_link_in_the_target(watcher, tmp_path):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "f").write_text("new")
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    res = file_res(watcher, tmp_path, path=str(dest) + "/", source=str(source), recurse=True)
    with pytest.raises(ResourceError, match="not a directory"):
        res.check_apply(True)
    assert list(outside.iterdir()) == []


def test_the_swap_race_never_reaches_the_target(watcher, tmp_path, victim):
    """Someone swaps the managed file and a link to the victim in a loop while the agent applies."""
    target, link = victim
    link.unlink()
    stop = threading.Event()
    swaps = 0

    def swapper():
        nonlocal swaps
        plain, evil = tmp_path / "d" / ".plain", tmp_path / "d" / ".evil"
        while not stop.is_set():
            plain.write_text("wrong")
            plain.chmod(0o644)
            os.replace(plain, link)
            if os.path.lexists(evil):
                os.unlink(evil)
            os.symlink(target, evil)
            os.replace(evil, link)
            swaps += 1

    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        rounds = 0
        # Until the swapper has really raced (a busy machine may starve its thread).
        while (rounds < 300 or swaps < 50) and thread.is_alive():
            rounds += 1
            params = {"path": str(link), "mode": "0666", "owner": 65534, "group": 65534}
            if rounds % 2:
                params["content"] = "x" * len(str(target))
            # A link seen where a mode-only file was wanted is refused, as it must be.
            with contextlib.suppress(ResourceError):
                file_res(watcher, tmp_path, **params).check_apply(True)
            assert untouched(target), f"round {rounds}: the victim changed"
    finally:
        stop.set()
        thread.join()
    assert swaps >= 50  # the swapper raced to the end


def acl(user_id: int) -> bytes:
    """A POSIX ACL in its xattr encoding: u::rw-, user:<id>:r--, g::r--, m::r--, o::r--."""
    entries = [(0x01, 6, 0xFFFFFFFF), (0x02, 4, user_id), (0x04, 4, 0xFFFFFFFF)]
    entries += [(0x10, 4, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


def test_owner_group_and_xattrs_survive_a_content_change(watcher, tmp_path):
    nobody = pwd.getpwnam("nobody")
    path = tmp_path / "f"
    path.write_text("old")
    os.setxattr(path, "system.posix_acl_access", acl(1234))
    os.setxattr(path, "user.origin", b"kept")
    res = file_res(
        watcher, tmp_path, path=str(path), content="new\n", owner="nobody", group=nobody.pw_gid
    )
    assert res.check_apply(True) is False
    st = path.lstat()
    assert path.read_text() == "new\n"
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert os.getxattr(path, "system.posix_acl_access") == acl(1234)
    assert os.getxattr(path, "user.origin") == b"kept"
    assert res.check_apply(True) is True


def test_owner_is_kept_when_not_managed_and_fixed_by_fchown_when_it_is(watcher, tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    os.chown(path, 65534, 65534)
    file_res(watcher, tmp_path, path=str(path), content="new").check_apply(True)
    assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)
    res = file_res(watcher, tmp_path, path=str(path), owner=0, group="0", mode="4755")
    assert res.check_apply(False) is False and path.stat().st_uid == 65534
    assert res.check_apply(True) is False
    st = path.stat()
    # chown clears the set-uid bit, so the mode comes after it.
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o4755)
    assert res.check_apply(True) is True


@pytest.mark.parametrize(
    "owner, message",
    [("no-such-user-mgmt", "no user named"), (":", "not a valid user name"), ("", "not a valid")],
)
def test_bad_owners_name_the_field(watcher, tmp_path, owner, message):
    path = tmp_path / "f"
    path.write_text("x")
    try:
        res = file_res(watcher, tmp_path, path=str(path), owner=owner)
    except FieldError as err:
        assert err.field == "owner" and message in str(err)
        return
    with pytest.raises(ResourceError, match=f"owner: {message}"):
        res.check_apply(True)


PROTECTED = ["/", "/etc", "/etc/", "/usr", "/var", "/home", "/root", "/tmp", "/lib", "/lib64",
             "/bin", "/boot", "/dev", "/opt", "/proc", "/run", "/sbin", "/srv", "/sys",
             "/etc/../usr", "/usr/lib/.."]  # fmt: skip


@pytest.mark.parametrize("path", PROTECTED)
def test_recursive_removal_of_a_system_directory_is_refused_without_force(path):
    params = fill_params(FileRes, {"path": path, "state": "absent", "recurse": True})
    with pytest.raises(FieldError) as caught:
        FileRes("f", params)
    message = str(caught.value)
    assert "refusing to remove" in message
    assert path == "/" or ("force: true" in message and os.path.normpath(path) in message)


def test_the_home_directory_is_refused_and_force_allows_a_system_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    params = fill_params(
        FileRes, {"path": str(tmp_path / "home"), "state": "absent", "recurse": True}
    )
    with pytest.raises(FieldError, match="force: true"):
        FileRes("f", params)
    forced = fill_params(
        FileRes, {"path": "/srv", "state": "absent", "recurse": True, "force": True}
    )
    FileRes("f", forced)  # accepted at validation (never applied here)
    root = fill_params(FileRes, {"path": "/", "state": "absent", "recurse": True, "force": True})
    with pytest.raises(FieldError, match="never allowed"):
        FileRes("f", root)


def test_ordinary_paths_and_non_recursive_removal_are_allowed(tmp_path):
    FileRes("f", fill_params(FileRes, {"path": "/etc/motd", "state": "absent"}))
    FileRes("f", fill_params(FileRes, {"path": "/srv/www", "state": "absent", "recurse": True}))
