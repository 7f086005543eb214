"""The shared inotify watcher: paths in missing directories, deletes, renames."""

from __future__ import annotations

import os
import shutil
import threading

from mgmt.engine.watcher import FileWatcher


def counter():
    sem = threading.Semaphore(0)
    return sem, sem.release


def drain(sem):
    while sem.acquire(timeout=0.1):
        pass


def test_create_modify_rename_delete(watcher: FileWatcher, tmp_path):
    sem, callback = counter()
    target = tmp_path / "f"
    watcher.watch_path(str(target), callback)
    target.write_text("a")
    assert sem.acquire(timeout=5)
    drain(sem)
    (tmp_path / "other").write_text("ignored")
    assert not sem.acquire(timeout=0.2)
    (tmp_path / "tmp").write_text("b")
    os.replace(tmp_path / "tmp", target)
    assert sem.acquire(timeout=5)
    drain(sem)
    os.chmod(target, 0o600)
    assert sem.acquire(timeout=5)
    drain(sem)
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


def test_removing_the_directory_moves_the_watch_up_and_back(watcher, tmp_path):
    sem, callback = counter()
    folder = tmp_path / "d"
    folder.mkdir()
    target = folder / "f"
    watcher.watch_path(str(target), callback)
    target.write_text("x")
    assert sem.acquire(timeout=5)
    shutil.rmtree(folder)
    assert sem.acquire(timeout=5)
    drain(sem)
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
    assert sem.acquire(timeout=5)
    drain(sem)
    (tmp_path / "beside" / "f").write_text("not in the tree")
    assert not sem.acquire(timeout=0.3)
    (top / "a" / "new").mkdir()  # created after the watch began
    drain(sem)
    (top / "a" / "new" / "f").write_text("y")
    assert sem.acquire(timeout=5)
    drain(sem)
    moved = tmp_path / "beside" / "moved"
    (moved / "inner").mkdir(parents=True)
    os.rename(moved, top / "moved")  # a whole tree moved in
    drain(sem)
    (top / "moved" / "inner" / "f").write_text("z")
    assert sem.acquire(timeout=5)
    drain(sem)
    shutil.rmtree(top / "a")
    assert sem.acquire(timeout=5)
    drain(sem)
    cancel()
    (top / "moved" / "inner" / "g").write_text("after cancel")
    assert not sem.acquire(timeout=0.3)


def test_a_tree_whose_top_appears_later_is_watched_inside_too(watcher, tmp_path):
    sem, callback = counter()
    top = tmp_path / "later"
    watcher.watch_tree(str(top), callback)
    (top / "sub").mkdir(parents=True)
    assert sem.acquire(timeout=5)
    drain(sem)
    (top / "sub" / "f").write_text("x")
    assert sem.acquire(timeout=5)
