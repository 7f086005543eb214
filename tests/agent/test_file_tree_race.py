"""A tree copy never writes or chmods through a folder swapped for a link while it runs.

The race is hit at a precise point by a hook: once the copy has made dst/sub
(or while it fills it), dst/sub is moved aside and a link to "elsewhere" put in
its place, as a racer would. Everything lives in the test's temp dir.
"""

from __future__ import annotations

import os
import stat

import pytest
from helpers import make_init

from mgmt.resources import filetree
from mgmt.resources.base import ResourceError, fill_params
from mgmt.resources.file import FileRes


def swap(folder) -> None:
    os.rename(folder, str(folder) + ".old")
    os.symlink(folder.parent.parent / "elsewhere", folder)


@pytest.mark.parametrize("hook", ["_make_folder", "_copy_entry"])
def test_a_folder_swapped_for_a_link_is_never_written_through(watcher, tmp_path, monkeypatch, hook):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "a").write_text("a")
    (source / "sub" / "b").write_text("b")
    (source / "sub").chmod(0o777)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    elsewhere.chmod(0o700)
    dst = tmp_path / "dst"
    sub = dst / "sub"
    real = getattr(filetree, hook)
    swapped = []

    def racing(*args, **kwargs):
        if hook == "_copy_entry" and not swapped and sub.is_dir():
            swapped.append(True)  # between two files of the folder
            swap(sub)
        result = real(*args, **kwargs)
        if hook == "_make_folder" and not swapped and sub.is_dir():
            swapped.append(True)  # made, not filled yet
            swap(sub)
        return result

    monkeypatch.setattr(filetree, hook, racing)
    params = {"path": f"{dst}/", "source": str(source), "recurse": True}
    res = FileRes("f", fill_params(FileRes, params))
    res.setup(make_init(watcher, tmp_path))
    try:
        res.check_apply(True)
    except ResourceError as err:  # seen and refused: fine, as long as nothing went through
        assert "changed to a link" in str(err)
    assert swapped
    assert os.listdir(elsewhere) == []
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o700
    if hook == "_copy_entry":  # opened before the swap: filled where it was opened
        assert sorted(os.listdir(f"{sub}.old")) == ["a", "b"]
