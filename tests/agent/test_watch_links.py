"""A watched path whose way passes symlinks follows them (mgmt.engine.linkwatch)."""

from __future__ import annotations

import os
import shutil

from test_watcher import counter, drain, fired

from mgmt.engine.linkwatch import resolve


def test_a_symlinked_folder_removed_or_pointed_elsewhere_is_seen(watcher, tmp_path):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "f").write_text(folder)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "one")
    sem, callback = counter()
    cancel = watcher.watch_path(str(link / "f"), callback)
    link.unlink()  # nothing in "one" changed, but link/f is gone
    assert fired(sem)
    link.symlink_to(tmp_path / "two")
    assert fired(sem)
    # Watched where the link leads now, and no longer where it led.
    (tmp_path / "two" / "f").write_text("changed")
    assert fired(sem)
    (tmp_path / "one" / "f").write_text("changed")
    assert not sem.acquire(timeout=0.3)
    cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}


def test_a_link_made_later_on_the_way_is_followed_and_its_removal_seen(watcher, tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "x" / "link"
    sem, callback = counter()
    cancel = watcher.watch_path(str(link / "f"), callback)
    (tmp_path / "x").mkdir()
    link.symlink_to(tmp_path / "real")
    assert fired(sem)  # the way to the path changed
    (tmp_path / "real" / "f").write_text("x")
    assert fired(sem)
    link.unlink()
    assert fired(sem)
    cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}


def test_a_folder_replaced_by_a_link_is_followed(watcher, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (tmp_path / "real").mkdir()
    sem, callback = counter()
    cancel = watcher.watch_path(str(folder / "f"), callback)
    shutil.rmtree(folder)
    folder.symlink_to(tmp_path / "real")
    assert fired(sem)
    (tmp_path / "real" / "f").write_text("x")
    assert fired(sem)
    folder.unlink()
    assert fired(sem)
    cancel()


def test_every_link_of_a_chain_is_watched(watcher, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "hop").mkdir()
    (tmp_path / "hop" / "second").symlink_to("../real")
    (tmp_path / "first").symlink_to(tmp_path / "hop" / "second")
    sem, callback = counter()
    cancel = watcher.watch_path(str(tmp_path / "first" / "f"), callback)
    (tmp_path / "real" / "f").write_text("x")
    assert fired(sem)
    (tmp_path / "hop" / "second").unlink()  # the link in the middle
    assert fired(sem)
    cancel()


def test_a_tree_below_a_symlinked_folder_moves_with_the_link(watcher, tmp_path):
    for folder in ("one", "two"):
        (tmp_path / folder / "tree" / "deep").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "one")
    sem, callback = counter()
    cancel = watcher.watch_tree(str(link / "tree"), callback)
    (tmp_path / "one" / "tree" / "deep" / "g").write_text("x")
    assert fired(sem)
    link.unlink()
    assert fired(sem)
    link.symlink_to(tmp_path / "two")
    assert fired(sem)
    (tmp_path / "two" / "tree" / "deep" / "g").write_text("x")
    assert fired(sem)
    drain(sem)
    (tmp_path / "one" / "tree" / "deep" / "g").write_text("old")
    assert not sem.acquire(timeout=0.3)
    cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}


def test_resolve_names_each_link_passed_and_ends_loops(tmp_path):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "hop").mkdir()
    (tmp_path / "hop" / "up").symlink_to(tmp_path / "real" / "sub")
    (tmp_path / "hop" / "back").symlink_to("up/../sub")
    # A ".." in a link's target goes up from where the link before it led, as the
    # kernel does (to real/, not to hop/).
    hop = tmp_path / "hop"
    assert resolve(str(hop / "back" / "f")) == (
        str(tmp_path / "real" / "sub" / "f"),
        (str(hop / "back"), str(hop / "up")),
    )
    assert resolve(str(tmp_path / "real" / "f")) == (str(tmp_path / "real" / "f"), ())
    assert resolve(str(tmp_path / "missing" / "a" / "f")) == (
        str(tmp_path / "missing" / "a" / "f"),
        (),
    )
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    real, links = resolve(str(tmp_path / "a" / "f"))  # a loop ends, as realpath's does
    assert real.endswith("/f") and 0 < len(links) <= 40


def _subs(watcher) -> int:
    return sum(len(subs) for entry in watcher._dirs.values() for subs in entry.subs.values())


def test_a_folder_reached_later_through_a_link_is_watched_under_its_real_name_only(
    watcher, tmp_path
):
    """Attached through the new link, real/x was watched under two names: one wd for
    two entries, and watches were left behind after both paths were cancelled."""
    (tmp_path / "real" / "x").mkdir(parents=True)
    other, on_other = counter()
    cancel_other = watcher.watch_path(str(tmp_path / "real" / "x" / "f2"), on_other)
    sem, callback = counter()
    cancel = watcher.watch_path(str(tmp_path / "t" / "link" / "x" / "f1"), callback)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "link").symlink_to(tmp_path / "real")
    assert fired(sem)
    (tmp_path / "real" / "x" / "f1").write_text("a")
    assert fired(sem)
    (tmp_path / "real" / "x" / "f2").write_text("b")
    assert fired(other)
    assert not [folder for folder in watcher._dirs if "/t/link" in folder]
    cancel()
    cancel_other()
    assert watcher._dirs == {} and watcher._by_wd == {}


def test_a_folder_moved_and_replaced_by_a_link_to_it_is_followed(watcher, tmp_path):
    """add_watch followed the new link to the moved folder's own watch: taken as
    still named, nothing was told, and the link was never watched."""
    (tmp_path / "real" / "d").mkdir(parents=True)
    (tmp_path / "other" / "d").mkdir(parents=True)
    sem, callback = counter()
    cancel = watcher.watch_path(str(tmp_path / "real" / "d" / "f"), callback)
    os.rename(tmp_path / "real", tmp_path / "real2")
    os.symlink("real2", tmp_path / "real")
    assert fired(sem)
    os.symlink("other", tmp_path / "next")
    os.rename(tmp_path / "next", tmp_path / "real")  # pointed elsewhere, at once
    assert fired(sem)
    (tmp_path / "other" / "d" / "f").write_text("x")
    assert fired(sem)
    cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}


def test_a_link_changed_while_its_watch_begins_is_followed(watcher, tmp_path, monkeypatch):
    """The link's own watch did not exist yet when it changed: no event, ever."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "one")
    watch_resolved = watcher._watch_resolved
    flipped = []

    def flip_after_the_first_watch(path, callback, saved, eager=False):
        cancel = watch_resolved(path, callback, saved, eager)
        if not flipped:  # the path's own watch is in place, the link's is not yet
            flipped.append(path)
            link.unlink()
            link.symlink_to(tmp_path / "two")
        return cancel

    monkeypatch.setattr(watcher, "_watch_resolved", flip_after_the_first_watch)
    sem, callback = counter()
    cancel = watcher.watch_path(str(link / "f"), callback)
    assert flipped
    drain(sem)
    (tmp_path / "two" / "f").write_text("x")
    assert fired(sem)
    cancel()


def test_a_link_loop_costs_a_watch_per_link_and_a_tree_top_that_is_a_link_is_followed(
    watcher, tmp_path
):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    cancel = watcher.watch_path(str(tmp_path / "a" / "f"), lambda: None)
    assert _subs(watcher) <= 3  # the path, and each link of the loop once
    cancel()
    (tmp_path / "one" / "deep").mkdir(parents=True)
    (tmp_path / "top").symlink_to("one")
    sem, callback = counter()
    cancel = watcher.watch_tree(str(tmp_path / "top"), callback)
    (tmp_path / "one" / "deep" / "g").write_text("x")
    assert fired(sem)
    (tmp_path / "top").unlink()
    assert fired(sem)
    cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}


def test_a_missing_link_target_made_later_is_told(watcher, tmp_path):
    """L -> E with E missing: a file resource failed to make L/sub/f, and making E
    later told it nothing, so it stayed failed for good."""
    (tmp_path / "L").symlink_to("E")
    sem, callback = counter()
    cancel = watcher.watch_path(str(tmp_path / "L" / "sub" / "f"), callback)
    (tmp_path / "E").mkdir()
    assert fired(sem)
    (tmp_path / "E" / "sub").mkdir()
    assert fired(sem)
    cancel()
    assert watcher._dirs == {} and watcher._by_wd == {}
