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


_CHILD_IGNORES_TERM = "sh -c \"trap '' TERM; sleep 30\" & echo $$ > {pidfile}; wait"


@pytest.mark.parametrize(
    "cmd",
    [
        "trap '' TERM; echo $$ > {pidfile}; sleep 30",
        pytest.param(_CHILD_IGNORES_TERM, id="a-child-after-its-shell-ended"),
    ],
)
def test_close_kills_a_command_that_ignores_sigterm(watcher, tmp_path, cmd):
    pidfile = tmp_path / "pid"
    res = exec_res(watcher, tmp_path, cmd=cmd.format(pidfile=pidfile), shell="/bin/sh")
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


def _identity_of(path) -> tuple:
    uid, gid, groups = path.read_text().split("\n")[:3]
    return int(uid), int(gid), sorted(int(g) for g in groups.split())


@pytest.fixture
def shared():
    """A folder any user may write in (where a command run as nobody reports); not
    below pytest's, which only root may enter."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("running a command as another user needs root")
    folder = Path(tempfile.mkdtemp(prefix="mgmt-exec-user-"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder)


REPORT = "id -u > {0}; id -g >> {0}; id -G >> {0}"


def test_user_and_group_run_the_commands_as_them(watcher, tmp_path, shared):
    """mgmt's exec takes user and group; they were refused as unknown fields. The
    group defaults to the user's own (mgmt kept the agent's: root's group)."""
    import grp
    import pwd

    nobody = pwd.getpwnam("nobody")
    out = shared / "as-nobody"
    res = exec_res(
        watcher, tmp_path, cmd=REPORT.format(out), shell="/bin/sh", user="nobody",
        ifcmd=f"test ! -e {out}", ifshell="/bin/sh",
    )  # fmt: skip
    assert res.check_apply(True) is False
    assert out.stat().st_uid == nobody.pw_uid
    groups = sorted(os.getgrouplist("nobody", nobody.pw_gid))
    assert _identity_of(out) == (nobody.pw_uid, nobody.pw_gid, groups)
    assert res.check_apply(True) is True  # ifcmd ran as nobody too, and found the file
    root_group = grp.getgrgid(0).gr_name
    out = shared / "with-group"
    res = exec_res(
        watcher, tmp_path, cmd=REPORT.format(out), shell="/bin/sh", user=nobody.pw_uid,
        group=root_group,
    )  # fmt: skip
    res.check_apply(True)
    uid, gid, _ = _identity_of(out)
    assert (uid, gid) == (nobody.pw_uid, 0)


def test_a_user_this_host_lacks_fails_naming_it(watcher, tmp_path, shared):
    out = shared / "never"
    res = exec_res(watcher, tmp_path, cmd=f"touch {out}", user="no-such-user-here")
    with pytest.raises(ResourceError, match="user: no user named 'no-such-user-here'"):
        res.check_apply(True)
    # A uid without an entry has no group of its own: never root's by default.
    res = exec_res(watcher, tmp_path, cmd=f"touch {out}", user="4000000")
    with pytest.raises(ResourceError, match="uid 4000000 has no entry on this host"):
        res.check_apply(True)
    assert not out.exists()
    res = exec_res(watcher, tmp_path, cmd=f"touch {out}", user="4000000", group="4000001")
    res.check_apply(True)
    assert (out.stat().st_uid, out.stat().st_gid) == (4000000, 4000001)


def test_a_watchcmd_runs_as_the_user_too(watcher, tmp_path, shared):
    out = shared / "watched"
    events = threading.Semaphore(0)
    res = exec_res(
        watcher, tmp_path, event=events.release, cmd="true", user="nobody",
        watchcmd=f"touch {out}; echo changed", watchshell="/bin/sh",
    )  # fmt: skip
    res.watch()
    assert events.acquire(timeout=5)
    res.close()
    assert out.stat().st_uid == __import__("pwd").getpwnam("nobody").pw_uid


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"user": "a:b"}, "user: 'a:b' is not a valid user name"),
        ({"group": " wheel"}, "group: ' wheel' is not a valid group name"),
        ({"user": 2**32}, f"user: {2**32} is not a valid id"),
    ],
)
def test_user_and_group_values_that_can_never_be_are_refused(params, message):
    with pytest.raises(FieldError, match=message):
        ExecRes.validate(fill_params(ExecRes, {"cmd": "true", **params}))


def test_close_stops_what_a_watchcmd_left_running_after_its_shell_ended(watcher, tmp_path):
    """`watchcmd: sh -c 'watcher &'`: the shell ends at once, what it started prints
    the lines; it is the agent's watch, and ends with the resource."""
    pidfile = tmp_path / "pid"
    watchcmd = f"sh -c 'echo t; exec sleep 60' & echo $! > {pidfile}"
    events = []
    res = exec_res(
        watcher, tmp_path, event=lambda: events.append(1), cmd="true",
        watchcmd=watchcmd, watchshell="/bin/sh",
    )  # fmt: skip
    res.watch()
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() and events)
    pid = int(pidfile.read_text())
    res.close()
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 5)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# The shell ends at SIGTERM; what it started ignores it and would outlive the agent.
def test_timeout_kills_a_child_that_ignores_sigterm_after_its_shell_ended(watcher, tmp_path):
    pidfile = tmp_path / "pid"
    cmd = _CHILD_IGNORES_TERM.format(pidfile=pidfile)
    res = exec_res(watcher, tmp_path, cmd=cmd, shell="/bin/sh", timeout=1)
    worker, errors = _check_apply_in_thread(res)
    worker.join(timeout=1 + STOP_GRACE + 5)
    assert not worker.is_alive() and len(errors) == 1 and "timed out" in str(errors[0])
    assert _group_gone(int(pidfile.read_text()))


def test_a_command_killed_by_a_signal_is_said_so(watcher, tmp_path):
    res = exec_res(watcher, tmp_path, cmd="sh -c 'kill -KILL $$'")
    with pytest.raises(ResourceError) as error:
        res.check_apply(True)
    assert "was killed by signal 9 (SIGKILL)" in str(error.value)
    assert "exited -9" not in str(error.value)


def test_a_command_that_ends_in_time_leaving_a_daemon_is_not_timed_out(watcher, tmp_path):
    """It ended before its timeout; what it left holds its output a while longer
    (the agent reads it DRAIN seconds more): no timeout of the command's."""
    pidfile = tmp_path / "pid"
    cmd = f"sleep 0.8; sleep 30 & echo $! > {pidfile}"
    res = exec_res(watcher, tmp_path, cmd=cmd, shell="/bin/sh", timeout=1)
    try:
        assert res.check_apply(True) is False  # ran, no error
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), 9)


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ({"user": "no-such-user-here"}, "user: no user named 'no-such-user-here'"),
        ({"group": "no-such-group-here"}, "group: no group named 'no-such-group-here'"),
    ],
)
def test_noop_fails_a_user_or_group_this_host_lacks_as_the_run_would(
    watcher, tmp_path, who, message
):
    """As the file kind's owner: --noop says what the real run would fail, not 'would run'."""
    res = exec_res(watcher, tmp_path, cmd="true", **who)
    with pytest.raises(ResourceError, match=message):
        res.check_apply(False)
