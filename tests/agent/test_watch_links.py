"""A watched path whose way passes symlinks follows them (mgmt.engine.linkwatch)."""

from __future__ import annotations

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
