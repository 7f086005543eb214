"""The file kind on real files in a temp dir."""

from __future__ import annotations

import os
import re
import stat
import threading

import pytest
from helpers import make_init, read, run_mgmt

from mgmt.errors import MgmtError
from mgmt.resources.base import ResourceError, fill_params
from mgmt.resources.file import BLOCK, FileRes, atomic_write, resolve_path


def file_res(watcher, tmp_path, name="f", event=None, **params):
    res = FileRes(name, fill_params(FileRes, params))
    res.setup(make_init(watcher, tmp_path, event=event))
    return res


def test_creates_with_content_and_mode_then_is_idempotent(watcher, tmp_path):
    path = tmp_path / "sub" / "f"
    res = file_res(watcher, tmp_path, path=str(path), content="hello\n", mode="0640")
    assert res.check_apply(True) is False
    assert path.read_text() == "hello\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    before = path.stat()
    assert res.check_apply(True) is True
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_wrong_content_and_mode_are_fixed(watcher, tmp_path):
    path = tmp_path / "f"
    path.write_text("tampered")
    path.chmod(0o600)
    res = file_res(watcher, tmp_path, path=str(path), content="right\n", mode="0644")
    assert res.check_apply(True) is False
    assert path.read_text() == "right\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert res.check_apply(True) is True


def test_existing_mode_is_kept_when_not_managed(watcher, tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    path.chmod(0o751)
    res = file_res(watcher, tmp_path, path=str(path), content="new")
    res.check_apply(True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o751


def test_noop_reports_and_changes_nothing(watcher, tmp_path):
    present, missing = tmp_path / "present", tmp_path / "missing"
    present.write_text("tampered")
    for path in (present, missing):
        res = file_res(watcher, tmp_path, path=str(path), content="right\n", mode="0600")
        assert res.check_apply(False) is False
    assert present.read_text() == "tampered"
    assert not missing.exists()
    gone = file_res(watcher, tmp_path, path=str(present), state="absent")
    assert gone.check_apply(False) is False
    assert present.exists()


def test_absent_removes_files_and_needs_recurse_for_directories(watcher, tmp_path):
    target = tmp_path / "x"
    target.write_text("bye")
    res = file_res(watcher, tmp_path, path=str(target), state="absent")
    assert res.check_apply(True) is False
    assert not target.exists()
    assert res.check_apply(True) is True
    folder = tmp_path / "d"
    (folder / "inner").mkdir(parents=True)
    with pytest.raises(ResourceError, match="recurse"):
        file_res(watcher, tmp_path, path=str(folder), state="absent").check_apply(True)
    assert folder.exists()
    file_res(watcher, tmp_path, path=str(folder), state="absent", recurse=True).check_apply(True)
    assert not folder.exists()


def test_absent_refuses_the_root_directory(watcher, tmp_path):
    with pytest.raises(ValueError, match="refusing to remove /"):
        file_res(watcher, tmp_path, path="/", state="absent", recurse=True)
    with pytest.raises(ValueError, match="refusing to remove /"):
        file_res(watcher, tmp_path, path="/tmp/..", state="absent", recurse=True)


def test_a_directory_is_not_replaced_by_a_file_without_force(watcher, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    with pytest.raises(MgmtError, match="force"):
        file_res(watcher, tmp_path, path=str(folder), content="x").check_apply(True)
    file_res(watcher, tmp_path, path=str(folder), content="x", force=True).check_apply(True)
    assert folder.read_text() == "x"


def test_source_file_and_tree(watcher, tmp_path):
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "a").write_text("A")
    (src / "deep" / "b").write_text("B")
    copy = file_res(watcher, tmp_path, path=str(tmp_path / "one"), source=str(src / "a"))
    assert copy.check_apply(True) is False
    assert read(tmp_path / "one") == "A"
    dst = tmp_path / "dst"
    (dst).mkdir()
    (dst / "extra").write_text("old")
    tree = file_res(watcher, tmp_path, path=f"{dst}/", source=str(src), recurse=True, force=True)
    assert tree.check_apply(True) is False
    assert read(dst / "a") == "A" and read(dst / "deep" / "b") == "B"
    assert not (dst / "extra").exists()
    assert tree.check_apply(True) is True


def test_links_in_a_source_tree_are_copied_as_links_never_read_through(watcher, tmp_path):
    """A link to a file was copied as the file it leads to (``x -> /etc/shadow``: what
    whoever may write the source wants to read), a link to a folder was left out in
    silence, a dangling one failed the whole tree; and folders lost their modes."""
    src, dst, secret = tmp_path / "src", tmp_path / "dst", tmp_path / "secret"
    (src / "sub").mkdir(parents=True)
    (src / "private").mkdir(mode=0o700)
    (src / "private" / "f").write_text("p")
    (src / "group").mkdir()
    os.chmod(src / "private", 0o500)  # read-only: made so only once filled
    os.chmod(src / "group", 0o2770)
    secret.write_text("not to copy\n")
    (src / "to-file").symlink_to(secret)
    (src / "to-folder").symlink_to(src / "sub")
    (src / "dangling").symlink_to("nowhere")
    (dst / "dangling").parent.mkdir()
    (dst / "to-file").write_text("a file where a link belongs")
    tree = file_res(watcher, tmp_path, path=f"{dst}/", source=str(src), recurse=True)
    assert tree.check_apply(True) is False
    for name, target in (("to-file", secret), ("to-folder", src / "sub"), ("dangling", "nowhere")):
        assert os.readlink(dst / name) == str(target), name
    # Its source's mode, but for the owner's rwx: a login other than root must be able
    # to update it at the next run.
    assert stat.S_IMODE(os.lstat(dst / "private").st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(dst / "group").st_mode) == 0o2770
    assert (dst / "private" / "f").read_text() == "p"
    assert tree.check_apply(True) is True
    (dst / "to-file").unlink()  # re-pointed behind the agent's back: made right again
    (dst / "to-file").symlink_to("elsewhere")
    assert tree.check_apply(True) is False and os.readlink(dst / "to-file") == str(secret)
    os.chmod(src / "private", 0o700)  # let pytest clean up


def test_noop_names_what_a_tree_copy_would_make_inside_folders_not_there_yet(
    watcher, tmp_path, mgmt_log
):
    """Only the top's changes were said: a folder to make and all it would hold were not."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "new" / "deeper").mkdir(parents=True)
    (src / "new" / "n").write_text("n")
    (src / "new" / "l").symlink_to("n")
    (src / "new" / "deeper" / "d").write_text("d")
    dst.mkdir()
    tree = file_res(watcher, tmp_path, path=f"{dst}/", source=str(src), recurse=True)
    assert tree.check_apply(False) is False
    said = mgmt_log.getvalue()
    for line in (f"would make {dst}/new ", f"would copy {dst}/new/n ",
                 f"would link {dst}/new/l to n ", f"would make {dst}/new/deeper ",
                 f"would copy {dst}/new/deeper/d "):  # fmt: skip
        assert line in said, said
    assert os.listdir(dst) == []  # noop: nothing made


@pytest.mark.parametrize("where", ["a link", "a file"])
def test_noop_never_looks_through_what_stands_where_a_folder_is_to_be(
    watcher, tmp_path, mgmt_log, where
):
    """With force, noop looked through a link where a folder goes (at /etc, say) and
    reported on what it found there."""
    src, dst, elsewhere = tmp_path / "src", tmp_path / "dst", tmp_path / "elsewhere"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "sub" / "f").write_text("f")
    (src / "sub" / "deeper" / "g").write_text("g")
    elsewhere.mkdir()
    (elsewhere / "f").write_text("f")  # the same content: looked through, "right"
    dst.mkdir()
    if where == "a link":
        (dst / "sub").symlink_to(elsewhere)
    else:
        (dst / "sub").write_text("in the way")
    tree = file_res(watcher, tmp_path, path=f"{dst}/", source=str(src), recurse=True, force=True)
    assert tree.check_apply(False) is False
    said = mgmt_log.getvalue()
    for line in (f"would replace {dst}/sub ", f"would copy {dst}/sub/f ",
                 f"would make {dst}/sub/deeper ", f"would copy {dst}/sub/deeper/g "):  # fmt: skip
        assert line in said, said


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_force_replaces_a_folder_where_the_source_tree_has_a_file_or_a_link(
    watcher, tmp_path, kind
):
    """Every run failed "is a directory where ... is a file", force or not."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    if kind == "file":
        (src / "x").write_text("x")
    else:
        (src / "x").symlink_to("elsewhere")
    (dst / "x" / "inside").mkdir(parents=True)
    plain = file_res(watcher, tmp_path, path=f"{dst}/", source=str(src), recurse=True)
    with pytest.raises(ResourceError, match=f"{dst}/x is a directory where .* set force"):
        plain.check_apply(True)
    tree = file_res(watcher, tmp_path, path=f"{dst}/", source=str(src), recurse=True, force=True)
    assert tree.check_apply(True) is False
    if kind == "file":
        assert (dst / "x").read_text() == "x"
    else:
        assert os.readlink(dst / "x") == "elsewhere"
    assert tree.check_apply(True) is True


@pytest.mark.parametrize("where", [0, BLOCK - 1, BLOCK, BLOCK + 5, 2 * BLOCK + 1])
def test_a_change_that_keeps_the_size_is_found_in_any_block(watcher, tmp_path, where):
    """Content is compared block by block: one flipped byte anywhere is a difference."""
    wanted = (b"abcdefghij" * (2 * BLOCK // 10 + 1))[: 2 * BLOCK + 2]
    changed = bytearray(wanted)
    changed[where] = ord("#")
    path, src = tmp_path / "f", tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "big").write_bytes(wanted)
    path.write_bytes(changed)
    (tmp_path / "dst" / "sub").mkdir(parents=True)
    (tmp_path / "dst" / "sub" / "big").write_bytes(changed)
    res = file_res(watcher, tmp_path, path=str(path), content=wanted.decode())
    tree = file_res(watcher, tmp_path, path=f"{tmp_path / 'dst'}/", source=str(src), recurse=True)
    for resource, target in ((res, path), (tree, tmp_path / "dst" / "sub" / "big")):
        assert resource.check_apply(True) is False
        assert target.read_bytes() == wanted
        assert resource.check_apply(True) is True


def test_dirname_and_basename_rewrite_the_path():
    assert resolve_path("n", {"path": "/tmp/file2a", "dirname": "/srv/x/"}) == "/srv/x/file2a"
    assert resolve_path("n", {"path": "/tmp/a", "basename": "b"}) == "/tmp/b"
    assert resolve_path("/etc/motd", {}) == "/etc/motd"
    params = FileRes.collected_params("file2a", {"path": "/tmp/file2a"}, "/tmp/mgmt/B")
    assert resolve_path("file2a", params) == "/tmp/mgmt/B/file2a"


def test_atomic_write_leaves_no_temp_file_and_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    atomic_write(str(path), b"new", 0o600)
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["f"]

    with pytest.raises(TypeError):
        atomic_write(str(path), "not bytes", 0o600)  # type: ignore[arg-type]
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["f"]


def test_watch_reports_external_edits_but_not_our_own_writes(watcher, tmp_path):
    path = tmp_path / "w"
    events = threading.Semaphore(0)
    res = file_res(watcher, tmp_path, path=str(path), content="mine\n", event=events.release)
    res.watch()
    res.check_apply(True)
    res.check_apply(True)
    # Drain what our own write may have caused before the signature was known.
    while events.acquire(timeout=0.2):
        pass
    path.write_text("theirs\n")
    assert events.acquire(timeout=5)
    res.check_apply(True)
    assert path.read_text() == "mine\n"
    while events.acquire(timeout=0.2):
        pass
    path.unlink()
    assert events.acquire(timeout=5)
    res.close()


def test_an_outside_chown_is_an_event_and_is_put_back(watcher, tmp_path):
    path = tmp_path / "owned"
    events = threading.Semaphore(0)
    owner = {"owner": 12345, "group": 23456, "mode": "0600"}
    res = file_res(watcher, tmp_path, path=str(path), content="x\n", event=events.release, **owner)
    res.watch()
    res.check_apply(True)
    while events.acquire(timeout=0.2):
        pass
    os.chown(path, 0, 0)  # content, size, mtime and mode unchanged
    assert events.acquire(timeout=5)
    assert res.check_apply(True) is False
    assert (path.stat().st_uid, path.stat().st_gid) == (12345, 23456)
    res.close()


def test_a_parent_replaced_by_a_file_is_an_event_and_the_watch_goes_on(watcher, tmp_path):
    """A path under a file does not exist (ENOTDIR, not ENOENT): the watch callback
    must not fail on it, or the resource would never hear of the obstacle going."""
    import shutil

    parent = tmp_path / "fight"
    path = parent / "x"
    events = threading.Semaphore(0)
    res = file_res(watcher, tmp_path, path=str(path), content="mine\n", event=events.release)
    res.watch()
    res.check_apply(True)
    while events.acquire(timeout=0.2):
        pass
    shutil.rmtree(parent)
    parent.write_text("in the way\n")
    assert events.acquire(timeout=5)
    with pytest.raises(ResourceError, match="Not a directory"):  # while the obstacle is there
        res.check_apply(True)
    while events.acquire(timeout=0.2):
        pass
    parent.unlink()
    assert events.acquire(timeout=5)
    assert res.check_apply(True) is False and path.read_text() == "mine\n"
    res.close()


def _applied_through_a_link(watcher, tmp_path, real: str, link: str):
    """A file resource at LINK/f, LINK -> REAL, watched and applied (its events drained)."""
    (tmp_path / real).mkdir()
    (tmp_path / link).symlink_to(real)
    events = threading.Semaphore(0)
    path = tmp_path / link / "f"
    res = file_res(watcher, tmp_path, path=str(path), content="mine\n", event=events.release)
    res.watch()
    assert res.check_apply(True) is False
    while events.acquire(timeout=0.2):
        pass
    return res, events, path


def test_a_symlinked_folder_removed_above_the_path_is_an_event_and_the_file_made_again(
    watcher, tmp_path
):
    """Nothing in the folder the link led to changes: the link's own name is watched."""
    res, events, path = _applied_through_a_link(watcher, tmp_path, "real", "link")
    link = tmp_path / "link"
    link.unlink()
    assert events.acquire(timeout=5)
    assert res.check_apply(True) is False
    assert not link.is_symlink() and path.read_text() == "mine\n"
    assert (tmp_path / "real" / "f").read_text() == "mine\n"  # left as it was
    res.close()


def test_a_link_loop_made_on_the_way_is_an_event_and_fails_the_check(watcher, tmp_path):
    """The watch's own look at the path raised ELOOP: a traceback in the log, no
    event, and the resource was never checked again (and reported fine)."""
    res, events, _ = _applied_through_a_link(watcher, tmp_path, "A", "L")
    link = tmp_path / "L"
    (tmp_path / "L2").symlink_to("L")
    (tmp_path / "L.new").symlink_to("L2")
    os.replace(tmp_path / "L.new", link)  # L -> L2 -> L, at once
    assert events.acquire(timeout=5)
    with pytest.raises(ResourceError, match="Too many levels of symbolic links"):
        res.check_apply(True)
    res.close()


def test_a_source_that_is_a_symlink_is_watched_where_it_leads(watcher, tmp_path):
    """Only the link's own name was watched: an edit of the file it leads to was
    never copied."""
    (tmp_path / "real").write_text("one\n")
    (tmp_path / "src").symlink_to("real")
    events = threading.Semaphore(0)
    dst = tmp_path / "dst"
    res = file_res(watcher, tmp_path, path=str(dst), source=str(tmp_path / "src"),
                   event=events.release)  # fmt: skip
    res.watch()
    assert res.check_apply(True) is False and dst.read_text() == "one\n"
    while events.acquire(timeout=0.2):
        pass
    (tmp_path / "real").write_text("two\n")
    assert events.acquire(timeout=5)
    assert res.check_apply(True) is False and dst.read_text() == "two\n"
    res.close()


def test_a_file_behind_a_link_to_a_missing_folder_is_made_once_the_folder_is(watcher, tmp_path):
    (tmp_path / "L").symlink_to("E")
    events = threading.Semaphore(0)
    path = tmp_path / "L" / "sub" / "f"
    res = file_res(watcher, tmp_path, path=str(path), content="x\n", event=events.release)
    res.watch()
    with pytest.raises(ResourceError):  # mkdir -p cannot make a folder through the link
        res.check_apply(True)
    (tmp_path / "E").mkdir()
    assert events.acquire(timeout=5)
    assert res.check_apply(True) is False
    assert (tmp_path / "E" / "sub" / "f").read_text() == "x\n"
    res.close()


def test_a_new_directory_is_made_with_its_mode_not_widened_first(watcher, tmp_path):
    """Made 0755 and then chmodded, a 0700 folder was open to all for a moment."""
    old = os.umask(0o022)
    try:
        res = file_res(watcher, tmp_path, path=str(tmp_path / "a" / "private") + "/", mode="0700")
        res.notes = []
        assert res.check_apply(True) is False
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "private").st_mode) == 0o700
    assert [n["field"] for n in res.notes] == ["state"]  # no mode to fix afterwards


def test_a_source_tree_that_vanished_fails_instead_of_being_fine(watcher, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f1").write_text("one")
    tree = file_res(watcher, tmp_path, path=f"{dst}/", source=str(src), recurse=True)
    assert tree.check_apply(True) is False and (dst / "f1").read_text() == "one"
    src.rename(tmp_path / "away")
    (dst / "f1").write_text("bad")
    with pytest.raises(ResourceError, match=f"source {src} is not a directory"):
        tree.check_apply(True)


@pytest.mark.parametrize("kind", ["device", "fifo", "fifo in a tree", "folder", "too big"])
def test_a_source_that_is_no_regular_file_or_too_big_fails_at_once(
    watcher, tmp_path, kind, monkeypatch
):
    """/dev/zero was read until memory ran out and a FIFO until a writer came, both
    past ^C; a big file was held in memory whole."""
    from mgmt.resources import filesafe

    src = tmp_path / "src"  # a tree holding only the FIFO
    src.mkdir()
    fifo = src / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    monkeypatch.setattr(filesafe, "MAX_SOURCE", 100)
    target = tmp_path / "dst"
    params = {
        "device": dict(path=str(target), source="/dev/zero"),
        "fifo": dict(path=str(target), source=str(fifo)),
        "fifo in a tree": dict(path=f"{target}/", source=str(src), recurse=True),
        "folder": dict(path=str(target), source=str(src)),
        "too big": dict(path=str(target), source=str(big)),
    }[kind]
    open_before = len(os.listdir("/proc/self/fd"))
    res = file_res(watcher, tmp_path, **params)
    said = {
        "device": "source /dev/zero is not a regular file (a device, FIFO or socket)",
        "fifo": f"source {fifo} is not a regular file (a device, FIFO or socket)",
        "fifo in a tree": f"source {fifo} is not a regular file",
        "folder": f"source {src} is not a regular file (a directory)",
        "too big": f"source {big} is 101 bytes, over the file kind's limit of 100",
    }[kind]
    for _ in range(3):  # each check: the same error, and no descriptor left open
        with pytest.raises(ResourceError, match=re.escape(said)):
            res.check_apply(True)
    assert len(os.listdir("/proc/self/fd")) == open_before
    assert not target.exists() or kind == "fifo in a tree"


def test_a_device_as_a_source_fails_once_and_the_run_converges(tmp_path):
    """/dev/null (as if for an empty file) changes all the time: each change was one
    more failing check, and --converged-timeout never came."""
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: e, path: {tmp_path}/empty, source: /dev/null}}\n"
    )
    done = run_mgmt(
        ["--file", str(graph), "--tmp-prefix", "--no-server", "--converged-timeout", "1"], 30
    )
    assert done.returncode == 1, done.stderr
    assert "source /dev/null is not a regular file" in done.stderr
    assert "converged with 1 failed resource(s)" in done.stderr


@pytest.mark.parametrize("value", ["\u0663", "\uff11\uff12", "1\u0660"])
def test_an_owner_in_other_digits_than_asciis_is_a_name_not_an_id(value):
    """str.isdigit() took "٣" (Arabic-Indic three) for uid 3 and chowned to it."""
    from mgmt.resources.filesafe import parse_owner

    with pytest.raises(KeyError, match="no user named"):
        parse_owner("owner", value)
    assert parse_owner("owner", "3") == 3


def test_a_symbolic_mode_sets_the_subjects_it_names(watcher, tmp_path):
    """mgmt takes a mode as "octal unix file permissions or symbolic string"
    (u=rw,go=r); it was refused as not octal. The subjects it does not name keep
    what the file has, as in mgmt (a file being made: its default, 0644)."""
    whole = tmp_path / "whole"
    res = file_res(watcher, tmp_path, path=str(whole), content="x", mode="u=rw,go=r")
    assert res.check_apply(True) is False
    assert stat.S_IMODE(whole.stat().st_mode) == 0o644
    assert res.check_apply(True) is True
    whole.chmod(0o1777)  # sticky, and everyone's rwx: all of it is the graph's
    assert res.check_apply(True) is False
    assert stat.S_IMODE(whole.stat().st_mode) == 0o644
    owner_only = tmp_path / "owner-only"
    res = file_res(watcher, tmp_path, path=str(owner_only), content="x", mode="u=rwx")
    res.check_apply(True)
    assert stat.S_IMODE(owner_only.stat().st_mode) == 0o744
    owner_only.chmod(0o4755)  # the group's and others' bits are not its own
    assert res.check_apply(True) is False
    assert stat.S_IMODE(owner_only.stat().st_mode) == 0o755  # u's setuid went with u=
    assert res.check_apply(True) is True
    folder = tmp_path / "d"
    res = file_res(watcher, tmp_path, path=f"{folder}/", mode="ug=rwx,o=t")
    res.check_apply(True)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o1770
    assert res.check_apply(True) is True


def test_fragments_are_joined_in_order_and_watched(watcher, tmp_path):
    """mgmt's ``fragments`` (a file made of others, a folder's files by name) was
    refused as an unknown field."""
    head, parts, out = tmp_path / "head", tmp_path / "parts", tmp_path / "out"
    head.write_text("# head\n")
    (parts / "sub").mkdir(parents=True)
    (parts / "20-b").write_text("b\n")
    (parts / "10-a").write_text("a\n")
    (parts / "sub" / "deeper").write_text("not one\n")  # a folder below is left out
    (parts / "30-link").symlink_to(head)  # and a link, never read through
    events = threading.Semaphore(0)
    fragments = [str(head), f"{parts}/"]
    res = file_res(watcher, tmp_path, path=str(out), fragments=fragments, event=events.release)
    res.watch()
    assert res.check_apply(True) is False
    assert out.read_text() == "# head\na\nb\n"
    assert res.check_apply(True) is True
    while events.acquire(timeout=0.2):  # what our own write caused
        pass
    (parts / "15-new").write_text("new\n")  # a file added to the folder is seen
    assert events.acquire(timeout=5)
    assert res.check_apply(True) is False
    assert out.read_text() == "# head\na\nnew\nb\n"
    while events.acquire(timeout=0.2):
        pass
    head.write_text("# head 2\n")  # and a change of a listed file
    assert events.acquire(timeout=5)
    assert res.check_apply(True) is False
    assert out.read_text() == "# head 2\na\nnew\nb\n"
    res.close()


def test_a_missing_fragment_fails_naming_it_and_writes_nothing(watcher, tmp_path):
    out = tmp_path / "out"
    out.write_text("kept\n")
    (tmp_path / "there").write_text("x")
    fragments = [str(tmp_path / "there"), str(tmp_path / "gone")]
    res = file_res(watcher, tmp_path, path=str(out), fragments=fragments)
    with pytest.raises(ResourceError, match=r"fragment .*/gone: No such file or directory"):
        res.check_apply(True)
    assert out.read_text() == "kept\n"


def test_a_copied_file_takes_its_sources_mode_with_the_content(watcher, tmp_path):
    """As a tree copy's files do, and mgmt's copy did: a copied script stays executable.
    The graph's mode wins; a copy there already keeps its mode, as `cp` does."""
    source, path = tmp_path / "script", tmp_path / "copy"
    source.write_text("#!/bin/sh\n")
    source.chmod(0o750)
    res = file_res(watcher, tmp_path, path=str(path), source=str(source))
    assert res.check_apply(True) is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    source.write_text("#!/bin/sh\necho 2\n")
    source.chmod(0o700)
    path.chmod(0o640)  # the copy's mode changed since, by hand
    assert res.check_apply(True) is False  # a new content: the mode stays as it is
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    source.chmod(0o755)
    assert res.check_apply(True) is True  # the content is right: the mode is not followed
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    moded = tmp_path / "moded"
    file_res(watcher, tmp_path, path=str(moded), source=str(source), mode="0600").check_apply(True)
    assert stat.S_IMODE(moded.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("mode", "file_mode", "dir_mode"),
    [("go=r", 0o644, 0o744), ("o=", 0o640, 0o750), ("u=rwx", 0o744, 0o755), ("0600", 0o600, 0o600)],
)
def test_a_symbolic_mode_keeps_a_new_files_default_bits_for_the_subjects_it_does_not_name(
    watcher, tmp_path, mode, file_mode, dir_mode
):
    """'go=r' on a file being made was applied to no bits at all: 0044, its owner
    locked out (and 'o=' made a folder 0000), where the same graph left an
    existing 0644 file 0644. A new file's bits are its default's (0644; a folder
    0777 less the umask), as they would be once it exists."""
    old = os.umask(0o022)  # the folder's default: 0777 less this
    try:
        path, folder = tmp_path / "f", tmp_path / "d"
        file_res(watcher, tmp_path, path=str(path), content="x", mode=mode).check_apply(True)
        file_res(watcher, tmp_path, "d", path=f"{folder}/", mode=mode).check_apply(True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == file_mode
    assert stat.S_IMODE(folder.stat().st_mode) == dir_mode
    again = file_res(watcher, tmp_path, path=str(path), content="x", mode=mode)
    assert again.check_apply(True) is True  # and the next check agrees
