"""The exec kind with real commands."""

from __future__ import annotations

import threading

import pytest

from conftest import make_init
from mgmt.resources.base import FieldError, ResourceError, fill_params
from mgmt.resources.exec import ExecRes


def exec_res(watcher, tmp_path, event=None, **params):
    res = ExecRes("e", fill_params(ExecRes, params))
    res.setup(make_init(watcher, tmp_path, event=event))
    return res


def test_cmd_runs_and_reports_a_change(watcher, tmp_path):
    out = tmp_path / "out"
    res = exec_res(watcher, tmp_path, cmd=f"touch {out}")
    assert res.check_apply(True) is False
    assert out.exists()


def test_ifcmd_guards_cmd(watcher, tmp_path):
    out = tmp_path / "out"
    guarded = exec_res(
        watcher, tmp_path, cmd=f"touch {out}", ifcmd=f"test ! -e {out}", ifshell="/bin/sh"
    )
    assert guarded.check_apply(True) is False
    assert out.exists()
    out.write_text("keep")
    assert guarded.check_apply(True) is True
    assert out.read_text() == "keep"


def test_noop_runs_nothing(watcher, tmp_path):
    out = tmp_path / "out"
    res = exec_res(watcher, tmp_path, cmd=f"touch {out}")
    assert res.check_apply(False) is False
    assert not out.exists()


def test_failure_and_timeout_raise_resource_errors(watcher, tmp_path):
    with pytest.raises(ResourceError, match="exited 3: oops"):
        exec_res(watcher, tmp_path, cmd="echo oops >&2; exit 3", shell="/bin/sh").check_apply(True)
    with pytest.raises(ResourceError, match="timed out after 1 s"):
        exec_res(watcher, tmp_path, cmd="sleep 30", timeout=1).check_apply(True)
    with pytest.raises(ResourceError, match="cannot run"):
        exec_res(watcher, tmp_path, cmd="/nonexistent/tool").check_apply(True)


def test_watchcmd_lines_and_pollint_trigger_events(watcher, tmp_path):
    events = threading.Semaphore(0)
    res = exec_res(
        watcher,
        tmp_path,
        event=events.release,
        cmd="true",
        watchcmd="echo one; echo two; sleep 30",
        watchshell="/bin/sh",
    )
    res.watch()
    assert events.acquire(timeout=5) and events.acquire(timeout=5)
    res.close()  # kills the sleeping watchcmd's whole process group
    assert all(p.poll() is not None for p in res.children) or not res.children
    polled = threading.Semaphore(0)
    poller = exec_res(watcher, tmp_path, event=polled.release, cmd="true", pollint=1)
    poller.watch()
    assert polled.acquire(timeout=5)
    poller.close()


def test_unsplittable_commands_are_rejected_at_validation():
    with pytest.raises(FieldError, match="cannot split"):
        fill_params(ExecRes, {"cmd": "echo 'unterminated"})
