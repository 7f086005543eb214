"""The shared inotify watcher: paths in missing directories, deletes, renames."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time

from mgmt.engine.inotify import Event
from mgmt.engine.inotify import flags as F
from mgmt.engine.watcher import FileWatcher
from support.polling import wait_for


def counter():
    sem = threading.Semaphore(0)
    return sem, sem.release


def drain(sem):
    while sem.acquire(timeout=0.1):
        pass


def fired(sem) -> bool:
    """A callback came within 5 s; the rest of its burst (one change, several
    events) is drained so the next check starts clean."""
    if not sem.acquire(timeout=5):
        return False
    drain(sem)
    return True


def test_create_modify_rename_delete(watcher: FileWatcher, tmp_path):
    sem, callback = counter()
    target = tmp_path / "f"
    watcher.watch_path(str(target), callback)
    target.write_text("a")
    assert fired(sem)
    (tmp_path / "other").write_text("ignored")
    assert not sem.acquire(timeout=0.2)
    (tmp_path / "tmp").write_text("b")
    os.replace(tmp_path / "tmp", target)
    assert fired(sem)
    os.chmod(target, 0o600)
    assert fired(sem)
    target.unlink()
    assert sem.acquire(timeout=5)


def test_a_path_under_missing_directories_is_seen_once_they_appear(watcher, tmp_path):
    sem, callback = counter()
    target = tmp_path / "a" / "b" / "f"
    watcher.watch_path(str(target), callback)
    (tmp_path / "a" / "b").mkdir(parents=True)
    drain(sem)
    target.write_text("x")
    assert sem.acquire(timeout=5)


def test_a_directory_made_while_its_parent_is_being_watched_is_not_missed(
    watcher, monkeypatch, tmp_path
):
    # The race: a/b is found missing, then made before the watch on a begins, so
    # no event for it ever comes. Made deterministic by making it right then.
    target = tmp_path / "a" / "b" / "f"
    (tmp_path / "a").mkdir()
    real = watcher._watch_dir

    def watch_dir(folder, full=True):
        entry = real(folder, full)
        if entry is None and folder == str(tmp_path / "a" / "b"):
            os.mkdir(folder)
        return entry

    monkeypatch.setattr(watcher, "_watch_dir", watch_dir)
    sem, callback = counter()
    watcher.watch_path(str(target), callback)
    target.write_text("x")
    assert fired(sem)


def test_removing_the_directory_moves_the_watch_up_and_back(watcher, tmp_path):
    sem, callback = counter()
    folder = tmp_path / "d"
    folder.mkdir()
    target = folder / "f"
    watcher.watch_path(str(target), callback)
    target.write_text("x")
    assert sem.acquire(timeout=5)
    shutil.rmtree(folder)
    assert fired(sem)
    folder.mkdir()
    drain(sem)
    target.write_text("again")
    assert sem.acquire(timeout=5)


def test_cancel_stops_callbacks(watcher, tmp_path):
    sem, callback = counter()
    target = tmp_path / "f"
    cancel = watcher.watch_path(str(target), callback)
    cancel()
    target.write_text("x")
    assert not sem.acquire(timeout=0.3)


def test_a_tree_is_watched_at_every_depth_also_in_new_directories(watcher, tmp_path):
    sem, callback = counter()
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (tmp_path / "beside").mkdir()
    cancel = watcher.watch_tree(str(top), callback)
    (top / "a" / "b" / "deep").write_text("x")
    assert fired(sem)
    (tmp_path / "beside" / "f").write_text("not in the tree")
    assert not sem.acquire(timeout=0.3)
    (top / "a" / "new").mkdir()  # created after the watch began
    drain(sem)
    (top / "a" / "new" / "f").write_text("y")
    assert fired(sem)
    moved = tmp_path / "beside" / "moved"
    (moved / "inner").mkdir(parents=True)
    os.rename(moved, top / "moved")  # a whole tree moved in
    drain(sem)
    (top / "moved" / "inner" / "f").write_text("z")
    assert fired(sem)
    shutil.rmtree(top / "a")
    assert fired(sem)
    cancel()
    (top / "moved" / "inner" / "g").write_text("after cancel")
    assert not sem.acquire(timeout=0.3)


def test_a_tree_whose_top_appears_later_is_watched_inside_too(watcher, tmp_path):
    sem, callback = counter()
    top = tmp_path / "later"
    watcher.watch_tree(str(top), callback)
    (top / "sub").mkdir(parents=True)
    assert fired(sem)
    (top / "sub" / "f").write_text("x")
    assert sem.acquire(timeout=5)


def test_a_directory_renamed_inside_a_tree_stays_watched_and_its_old_name_too(watcher, tmp_path):
    # inotify keeps a renamed directory's watch (same wd) and reports MOVE_SELF
    # for it; that must not drop the new name, nor leave the old one stale.
    sem, callback = counter()
    top = tmp_path / "tree"
    (top / "a" / "deep").mkdir(parents=True)
    watcher.watch_tree(str(top), callback)
    os.rename(top / "a", top / "b")
    assert fired(sem)
    (top / "b" / "x").write_text("1")
    assert fired(sem)
    (top / "b" / "deep" / "x").write_text("2")
    assert fired(sem)
    (top / "a").mkdir()  # the old name again, a new directory
    drain(sem)
    (top / "a" / "y").write_text("3")
    assert sem.acquire(timeout=5)


def test_a_path_below_a_directory_renamed_inside_a_tree_follows_its_name(watcher, tmp_path):
    sem, callback = counter()
    top = tmp_path / "tree"
    (top / "a" / "deep").mkdir(parents=True)
    watcher.watch_tree(str(top), lambda: None)
    watcher.watch_path(str(top / "a" / "deep" / "f"), callback)
    os.rename(top / "a", top / "b")
    drain(sem)
    (top / "b" / "deep" / "f").write_text("not the watched path any more")
    assert not sem.acquire(timeout=0.3)
    (top / "a" / "deep").mkdir(parents=True)
    drain(sem)
    (top / "a" / "deep" / "f").write_text("the watched path")
    assert sem.acquire(timeout=5)


def _enospc_for(watcher, monkeypatch, folder):
    """Make add_watch fail as it does at fs.inotify.max_user_watches, for one directory."""
    real = watcher._inotify.add_watch

    def add_watch(path, mask):
        if os.fsdecode(path) == str(folder):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, mask)

    monkeypatch.setattr(watcher._inotify, "add_watch", add_watch)


def test_a_full_watch_table_warns_and_every_other_watch_keeps_working(
    watcher, tmp_path, monkeypatch, mgmt_log
):
    sem, callback = counter()
    top = tmp_path / "tree"
    top.mkdir()
    watcher.watch_tree(str(top), lambda: None)
    watcher.watch_path(str(tmp_path / "later" / "f"), lambda: None)
    watcher.watch_path(str(tmp_path / "other"), callback)
    _enospc_for(watcher, monkeypatch, top / "new")
    _enospc_for(watcher, monkeypatch, tmp_path / "later")
    (top / "new").mkdir()  # the tree's add_watch fails
    (tmp_path / "later").mkdir()  # and a waiting path's
    (tmp_path / "other").write_text("x")
    assert sem.acquire(timeout=5)
    assert "watcher: cannot watch" in mgmt_log.getvalue()
    assert "fs.inotify.max_user_watches" in mgmt_log.getvalue()
    drain(sem)
    (tmp_path / "other").write_text("still watched")
    assert sem.acquire(timeout=5)


def test_the_thread_survives_a_failing_dispatch(watcher, tmp_path, monkeypatch):
    sem, callback = counter()
    watcher.watch_path(str(tmp_path / "f"), callback)
    real, calls = watcher._dispatch, []

    def dispatch_failing_once(events):
        calls.append(events)
        if len(calls) == 1:
            raise RuntimeError("a bug in dispatch")
        return real(events)

    monkeypatch.setattr(watcher, "_dispatch", dispatch_failing_once)
    (tmp_path / "f").write_text("lost with the failing batch")
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls
    (tmp_path / "f").write_text("seen")
    assert sem.acquire(timeout=5)


def test_a_queue_overflow_tells_every_tree_and_watches_new_directories(watcher, tmp_path):
    sem, callback = counter()
    top = tmp_path / "tree"
    top.mkdir()
    watcher.watch_tree(str(top), callback)
    # Hold the lock so the thread cannot see the mkdir: as if the event was lost.
    with watcher._lock:
        (top / "new").mkdir()
        told = watcher._dispatch([Event(wd=-1, mask=F.Q_OVERFLOW, cookie=0, name="")])
        assert str(top / "new") in watcher._dirs
        # What it tells reaches the tree's callback (the thread's events cannot yet).
        for _, call in told:
            call()
        assert sem.acquire(timeout=0)
    drain(sem)
    (top / "new" / "f").write_text("x")
    assert sem.acquire(timeout=5)


def test_a_finished_write_calls_saved_and_any_other_change_the_callback(watcher, tmp_path):
    changed, on_change = counter()
    saved, on_saved = counter()
    target = tmp_path / "graph.yaml"
    target.write_text("a")
    watcher.watch_path(str(target), on_change, saved=on_saved)
    with open(target, "w") as f:  # truncated and written, still open: not whole yet
        f.write("b")
        f.flush()
        assert fired(changed)
        assert not saved.acquire(timeout=0.2)
    assert fired(saved)  # closed: whole
    (tmp_path / "new").write_text("c")
    os.replace(tmp_path / "new", target)  # renamed over it: whole
    assert fired(saved)
    os.chmod(target, 0o600)
    assert fired(changed)
    assert not saved.acquire(timeout=0.2)


def test_a_folder_moved_further_up_is_seen_and_the_path_followed_back(watcher, tmp_path):
    """inotify tells a moved folder only itself: the folders above a watched one
    are watched for their own move, so the path below them climbs and is told."""
    for moved in ("a/b", "a"):  # the parent's parent, then one above that
        case = tmp_path / moved.replace("/", "-")  # a folder of its own for each case
        target = case / "a" / "b" / "c" / "f"
        target.parent.mkdir(parents=True)
        target.write_text("x")
        sem, callback = counter()
        cancel = watcher.watch_path(str(target), callback)
        (case / moved).rename(case / "elsewhere")
        assert fired(sem), moved
        # Made again where it was (as the file resource does), it is watched again.
        target.parent.mkdir(parents=True)
        drain(sem)
        target.write_text("again")
        assert sem.acquire(timeout=5), moved
        cancel()


def test_the_folders_above_are_watched_only_while_a_path_below_is(watcher, tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    cancels = [watcher.watch_path(str(deep / name), lambda: None) for name in ("f", "g")]
    watched = set(watcher._dirs)
    assert {str(deep), str(deep.parent), str(tmp_path / "a")} <= watched
    assert not watcher._dirs[str(tmp_path / "a")].full  # only its own move is asked for
    for cancel in cancels:
        cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}  # nothing left, up to /


def test_a_folder_above_swapped_for_a_copy_keeps_its_guards(watcher, tmp_path):
    """The tree replaced in one quick step (a copy renamed over it): the new folders
    are guarded, not the ones of the tree that left, and a later move is seen."""
    target = tmp_path / "data" / "tree" / "g" / "h" / "i" / "f3"
    target.parent.mkdir(parents=True)
    target.write_text("three")
    sem, callback = counter()
    watcher.watch_path(str(target), callback)
    shutil.copytree(tmp_path / "data" / "tree", tmp_path / "data" / "new")
    os.rename(tmp_path / "data" / "tree", tmp_path / "data" / "tree.old")
    os.rename(tmp_path / "data" / "new", tmp_path / "data" / "tree")
    assert fired(sem)
    drain(sem)
    (tmp_path / "data" / "tree" / "g").rename(tmp_path / "g-moved")
    assert fired(sem)  # the guard on the new tree/g told it


def test_two_sibling_folders_swapped_under_a_guard_are_both_followed(watcher, tmp_path):
    top = tmp_path / "top"
    f1, f2 = top / "p" / "m" / "x" / "f1", top / "q" / "n" / "y" / "f2"
    sems = []
    for path in (f1, f2):
        path.parent.mkdir(parents=True)
        path.write_text(path.name)
        sem, callback = counter()
        watcher.watch_path(str(path), callback)
        sems.append(sem)
    os.rename(top / "p", top / "tmp")
    os.rename(top / "q", top / "p")
    os.rename(top / "tmp", top / "q")
    for sem in sems:
        assert fired(sem)
        drain(sem)
    for path, sem in zip((f1, f2), sems):  # made again where they were: seen there
        path.parent.mkdir(parents=True)
        path.write_text("again")
        assert sem.acquire(timeout=5), path


def test_a_folder_above_renamed_and_made_anew_leaves_no_watch_behind(watcher, tmp_path):
    target = tmp_path / "a" / "b" / "c" / "f"
    target.parent.mkdir(parents=True)
    sem, callback = counter()
    cancel = watcher.watch_path(str(target), callback)
    for n in range(5):
        os.rename(tmp_path / "a", tmp_path / f"old{n}")
        os.mkdir(tmp_path / "a")
        assert fired(sem)
        drain(sem)
    with watcher._lock:
        watched = set(watcher._dirs)
    assert not [folder for folder in watched if f"{tmp_path}/old" in folder], watched
    assert f"{tmp_path}/a" in watched  # the new a, guarding the path below it
    cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}


def test_one_folder_by_two_names_is_watched_under_one(watcher, tmp_path):
    """/lib and /usr/lib: inotify watches inodes, so the names would share watches."""
    (tmp_path / "usr" / "lib" / "b").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "a").mkdir()
    (tmp_path / "lib").symlink_to(tmp_path / "usr" / "lib")
    sems, cancels = [], []
    for path in (tmp_path / "lib" / "a" / "x", tmp_path / "usr" / "lib" / "b" / "y"):
        sem, callback = counter()
        cancels.append(watcher.watch_path(str(path), callback))
        sems.append((path, sem))
    for path, sem in sems:
        path.write_text("x")
        assert sem.acquire(timeout=5), path
    for cancel in cancels:
        cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}


def test_a_folder_above_that_moves_between_two_watches_is_not_missed(watcher, tmp_path):
    """c/a moves away right after c/a/b's watch is added, before c/a's guard is: the
    path must not stay on the moved folder, and is told once made again."""
    target = tmp_path / "c" / "a" / "b" / "i"
    (tmp_path / "c").mkdir()
    (tmp_path / "elsewhere").mkdir()
    sem, callback = counter()
    watcher.watch_path(str(target), callback)  # waits on c for "a"
    real = watcher._inotify.add_watch

    def add_watch(path, mask):
        wd = real(path, mask)
        if path == str(target.parent) and (tmp_path / "c" / "a").is_dir():
            os.rename(tmp_path / "c" / "a", tmp_path / "elsewhere" / "a")
        return wd

    watcher._inotify.add_watch = add_watch
    try:
        target.parent.mkdir(parents=True)  # c/a appears: the path moves down, and races
        assert wait_for(lambda: not (tmp_path / "c" / "a").exists(), 5)
    finally:
        watcher._inotify.add_watch = real
    drain(sem)
    target.parent.mkdir(parents=True)
    target.write_text("x")
    assert sem.acquire(timeout=5)


def test_a_failed_read_of_inotify_events_is_said(watcher: FileWatcher, tmp_path, capsys):
    """The one thread that serves every watch must not end without a word."""

    def broken_read(timeout=None):
        raise OSError(errno.EIO, "Input/output error")

    watcher.watch_path(str(tmp_path / "f"), lambda: None)
    watcher._inotify.read = broken_read
    (tmp_path / "f").write_text("a")  # an event: the thread reads, and fails
    watcher._thread.join(5)
    assert not watcher._thread.is_alive()
    err = capsys.readouterr().err
    assert "reading inotify events failed, no more changes are seen: " in err
    assert "Input/output error" in err
