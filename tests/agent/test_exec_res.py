"""The exec kind with real commands."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from helpers import make_init, wait_for

from mgmt.resources.base import FieldError, ResourceError, fill_params
from mgmt.resources.exec import OUTPUT_KEPT, STOP_GRACE, ExecRes


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
    with pytest.raises(ResourceError, match=r"'false' exited 1 \(nothing on stderr\)$"):
        exec_res(watcher, tmp_path, cmd="false").check_apply(True)
    with pytest.raises(ResourceError, match="timed out after 1 s"):
        exec_res(watcher, tmp_path, cmd="sleep 30", timeout=1).check_apply(True)
    with pytest.raises(ResourceError, match="cannot run '/nonexistent/tool': No such file"):
        exec_res(watcher, tmp_path, cmd="/nonexistent/tool").check_apply(True)
    with pytest.raises(ResourceError, match="cannot run 'true': its shell /no/sh: No such file"):
        exec_res(watcher, tmp_path, cmd="true", shell="/no/sh").check_apply(True)


def live_members(group: int) -> list:
    """Pids of the processes (zombies aside) in process group ``group``, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it ended while we looked
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ')'.
        state, _ppid, pgrp = stat_line.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == group and state != "Z":
            members.append(int(entry))
    return members


def test_watchcmd_lines_and_pollint_trigger_events(watcher, tmp_path):
    pidfile = tmp_path / "watchcmd.pid"
    events = threading.Semaphore(0)
    res = exec_res(
        watcher,
        tmp_path,
        event=events.release,
        cmd="true",
        watchcmd=f"echo $$ > {pidfile}; echo one; echo two; sleep 30",
        watchshell="/bin/sh",
    )
    res.watch()
    assert events.acquire(timeout=5) and events.acquire(timeout=5)
    group = int(pidfile.read_text())  # the shell leads its own process group
    assert wait_for(lambda: len(live_members(group)) >= 2)  # the shell and its sleep
    res.close()  # kills the sleeping watchcmd's whole process group
    assert wait_for(lambda: not live_members(group)), live_members(group)
    polled = threading.Semaphore(0)
    poller = exec_res(watcher, tmp_path, event=polled.release, cmd="true", pollint=1)
    poller.watch()
    assert polled.acquire(timeout=5)
    poller.close()


def test_watchcmd_output_without_newlines_triggers_a_chunk_at_a_time(watcher, tmp_path):
    """A line was read whole: output that never ends a line grew the agent's memory
    without bound, and triggered nothing."""
    events = threading.Semaphore(0)
    size = 4 * OUTPUT_KEPT + 1000  # no newline in it, and the pipe stays open after
    res = exec_res(
        watcher,
        tmp_path,
        event=events.release,
        cmd="true",
        watchcmd=f"head -c {size} /dev/zero; exec sleep 60",
        watchshell="/bin/sh",
    )
    res.watch()
    try:
        assert all(events.acquire(timeout=5) for _ in range(4))  # one per OUTPUT_KEPT bytes
    finally:
        res.close()


def test_unsplittable_commands_are_rejected_at_validation():
    with pytest.raises(FieldError, match="cannot split"):
        fill_params(ExecRes, {"cmd": "echo 'unterminated"})


def _group_gone(pgid: int) -> bool:
    """No process of the group is left, zombies aside (init reaps those in its own time)."""

    def alive_members() -> list:
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(stat.parent.name)
        return members

    return wait_for(lambda: not alive_members(), timeout=5)


def _check_apply_in_thread(res):
    errors: list = []

    def run():
        try:
            res.check_apply(True)
        except ResourceError as err:
            errors.append(err)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, errors


def test_timeout_kills_a_command_that_ignores_sigterm(watcher, tmp_path):
    pidfile = tmp_path / "pid"
    cmd = f"trap '' TERM; echo $$ > {pidfile}; sleep 30"
    res = exec_res(watcher, tmp_path, cmd=cmd, shell="/bin/sh", timeout=1)
    worker, errors = _check_apply_in_thread(res)
    worker.join(timeout=1 + STOP_GRACE + 5)
    assert not worker.is_alive(), "the worker still waits for a command that ignores SIGTERM"
    assert len(errors) == 1 and "timed out after 1 s" in str(errors[0])
    assert _group_gone(int(pidfile.read_text()))  # the shell and its sleep, both


def test_close_kills_a_command_that_ignores_sigterm(watcher, tmp_path):
    pidfile = tmp_path / "pid"
    cmd = f"trap '' TERM; echo $$ > {pidfile}; sleep 30"
    res = exec_res(watcher, tmp_path, cmd=cmd, shell="/bin/sh")
    worker, errors = _check_apply_in_thread(res)
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    res.close()
    assert _group_gone(int(pidfile.read_text()))
    worker.join(timeout=5)
    assert not worker.is_alive() and len(errors) == 1


def test_a_watchcmd_closed_before_it_starts_ends_quietly(watcher, tmp_path, monkeypatch):
    """An edit that removes the resource as it starts watching: close() came first."""
    crashed = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    res = exec_res(watcher, tmp_path, cmd="true", watchcmd="echo never", watchshell="/bin/sh")
    res.stop.set()  # what close() does first
    res.watch()
    for thread in res.threads:
        thread.join(5)
    assert crashed == [] and res.children == []


def test_a_command_that_prints_without_end_does_not_fill_the_agents_memory(watcher, tmp_path):
    """Its output was kept whole (5.8 GB in 6 s for `head -c 3000000000 /dev/zero`)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    cmd = "head -c 300000000 /dev/zero; head -c 300000000 /dev/zero >&2; echo END >&2; exit 3"
    res = exec_res(watcher, tmp_path, cmd=cmd, shell="/bin/sh")
    with pytest.raises(ResourceError, match=r"exited 3: .*END$"):  # the tail is kept
        res.check_apply(True)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 50 * 1024, f"{grown} KiB more at the peak"
