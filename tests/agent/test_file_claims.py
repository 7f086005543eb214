"""File resources that a symlink changed while the agent runs leads to one place
fail instead of fighting (mgmt.resources.fileclaims)."""

from __future__ import annotations

import shutil
import threading

import pytest
from test_watcher import drain

from mgmt.log import get_logger
from mgmt.resources.base import Init, ResourceError, Services, fill_params
from mgmt.resources.file import FileRes


def _file(watcher, tmp_path, services, name, **params):
    """A file resource set up as the agent's are: one Services for all."""
    events = threading.Semaphore(0)
    res = FileRes(name, fill_params(FileRes, params))
    res.setup(Init("test", get_logger("test"), tmp_path / "state", watcher, events.release,
                   services=services))  # fmt: skip
    res.watch()
    return res, events


def test_two_files_a_new_link_leads_to_one_place_do_not_fight(watcher, tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "L").mkdir()
    services = Services()
    one, _ = _file(watcher, tmp_path, services, "one", path=str(tmp_path / "A/f"), content="1")
    two, two_events = _file(watcher, tmp_path, services, "two", path=str(tmp_path / "L/f"),
                            content="2")  # fmt: skip
    assert one.check_apply(True) is False and two.check_apply(True) is False
    drain(two_events)
    shutil.rmtree(tmp_path / "L")
    (tmp_path / "L").symlink_to("A")  # both name A/f now
    assert two_events.acquire(timeout=5)
    with pytest.raises(ResourceError, match=r"file\[one\] manages .*/A/f too"):
        two.check_apply(True)
    assert one.check_apply(True) is True  # it holds the file: nothing undid its write
    assert (tmp_path / "A/f").read_text() == "1"
    # The link goes: two leads elsewhere again, is told, and applies.
    drain(two_events)
    (tmp_path / "L").unlink()
    assert two_events.acquire(timeout=5)
    assert two.check_apply(True) is False and (tmp_path / "L/f").read_text() == "2"
    for res in (one, two):
        res.close()


def test_one_held_off_is_told_when_the_holder_goes(watcher, tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "L").symlink_to("A")
    services = Services()
    one, _ = _file(watcher, tmp_path, services, "one", path=str(tmp_path / "A/f"), content="1")
    two, two_events = _file(watcher, tmp_path, services, "two", path=str(tmp_path / "L/f"),
                            content="2")  # fmt: skip
    assert one.check_apply(True) is False
    with pytest.raises(ResourceError):
        two.check_apply(True)
    drain(two_events)
    one.close()  # removed from the graph, say
    assert two_events.acquire(timeout=5)
    assert two.check_apply(True) is False and (tmp_path / "A/f").read_text() == "2"
    two.close()


@pytest.mark.parametrize("recurse", [True, False])  # a path ending in / is a tree too
def test_a_file_a_new_link_puts_inside_a_forced_copy_is_held_off(watcher, tmp_path, recurse):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a")
    (tmp_path / "D").mkdir()
    (tmp_path / "E").mkdir()
    services = Services()
    tree, _ = _file(watcher, tmp_path, services, "tree", path=str(tmp_path / "D") + "/",
                    source=str(tmp_path / "src") + "/", recurse=recurse, force=True)  # fmt: skip
    extra, events = _file(watcher, tmp_path, services, "x", path=str(tmp_path / "E/x"),
                          content="x")  # fmt: skip
    assert tree.check_apply(True) is False and extra.check_apply(True) is False
    drain(events)
    shutil.rmtree(tmp_path / "E")
    (tmp_path / "E").symlink_to("D")  # x is inside the copy, which removes what src lacks
    assert events.acquire(timeout=5)
    with pytest.raises(ResourceError, match=r"file\[tree\] manages .*/D/x too, or a tree"):
        extra.check_apply(True)
    for res in (tree, extra):
        res.close()
