"""A ``--detach`` hand-over that does not complete: ended by SIGTERM or SIGHUP as by
a ^C, a host lost half-way, a ^C during a slow bundle copy. Whatever ends it, what
was started is stopped on every host still reachable, and the run ends promptly.
And ``mgmt stop`` with a host lost while it stops.
"""

import os
import signal
import subprocess
import time

import pytest
from remote_helpers import (
    MGMT,
    Initiator,
    assert_clean,
    big_bundle,
    graph_for,
    need_hosts,
    slow_etcd,
    slow_python,
    wait_until,
)

from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "b"], bridge=True) as hosts:
        yield hosts


def _graphs(tmp_path):
    return [
        graph_for("remote2a.yaml", "a", tmp_path),
        graph_for("remote2b.yaml", "b", tmp_path),
    ]


def _running(host, command: str) -> bool:
    """Whether the hosts' program (detached.py) runs ``command`` on ``host`` now."""
    return any(cmd.endswith(" " + command) for cmd in host.processes().values())


def _nothing_left(*hosts) -> None:
    for host in hosts:
        assert_clean(host)
        assert not host.exists("/root/.local/state/mgmt"), host.name


def test_sigterm_while_auth_runs_stops_what_was_started_as_a_ctrl_c_does(pool, bundle, tmp_path):
    """SIGTERM killed the initiator (exit -15, no word) and left the member (etcd on
    2379/2380, its supervisor) and the cluster's directory on a."""
    a = pool["a"]
    with slow_etcd(a), Initiator(pool, bundle, _graphs(tmp_path), "--detach") as run:
        wait_until(lambda: _running(a, "auth"), 30, "auth under way on a")
        run.interrupt(signal.SIGTERM)
        code = run.wait(60)
    assert code == 128 + signal.SIGTERM, run.output
    assert "interrupted by SIGTERM before the hand-over; stopping what was started" in run.output
    assert "Traceback" not in run.output, run.output
    _nothing_left(a, pool["b"])


def test_sighup_while_agents_start_stops_the_whole_cluster(pool, bundle, tmp_path):
    """SIGHUP (the initiator's terminal gone) while the agents start left the whole
    cluster running. b's Python is made slow to start ``agent``."""
    a, b = pool["a"], pool["b"]
    graphs = _graphs(tmp_path)
    slow_python(b, graphs[1], "agent) sleep 2")
    with Initiator(pool, bundle, graphs, "--detach") as run:
        wait_until(lambda: _running(b, "agent"), 60, "the agent starting on b")
        run.interrupt(signal.SIGHUP)
        code = run.wait(60)
    assert code == 128 + signal.SIGHUP, run.output
    assert "interrupted by SIGHUP before the hand-over; stopping what was started" in run.output
    _nothing_left(a, b)


def test_a_host_lost_while_agents_start_does_not_keep_the_others_from_being_stopped(
    pool, bundle, tmp_path
):
    """b lost while its agent starts: the stop raised on b's error, so the member and
    the cluster's directory stayed on a, which was reachable all along; and b's loss
    was told as "agent: status -1"."""
    a, b = pool["a"], pool["b"]
    graphs = _graphs(tmp_path)
    slow_python(b, graphs[1], "agent) sleep 30")
    try:
        with Initiator(pool, bundle, graphs, "--detach", "--lost-timeout=2") as run:
            wait_until(lambda: _running(b, "agent"), 60, "the agent starting on b")
            b.link_down()
            code = run.wait(30)
        assert code == 1, run.output
        assert "status -1" not in run.output, run.output
        assert "b: agent: lost: no answer to SSH keepalives" in run.output
        lines = [x for x in run.output.splitlines() if "could not stop" in x]
        assert len(lines) == 1 and "on b: lost: no answer" in lines[0], run.output
        _nothing_left(a)
    finally:
        b.kill_sessions()  # the slow agent command, cut off from the initiator
        b.link_up()
        b.run("rm -rf /root/.local/state/mgmt")


def test_ctrl_c_during_a_slow_bundle_copy_ends_at_once_and_leaves_no_partial_copy(pool, tmp_path):
    """The copy was waited for as a command under way (66 s on a slow link), and a
    second ^C did not help: the stop queued behind it. A copy starts nothing on the
    host: it is abandoned, and the host removes what it got. a's link is slowed to
    5 MB/s, the bundle is 100 MB (of zeros: a copy never finishes in this test)."""
    a = pool["a"]
    big = big_bundle(tmp_path / "big.pyz", 100 * 1024 * 1024)
    shape = ["tc", "qdisc", "add", "dev", a.veth, "root", "tbf"]
    subprocess.run([*shape, "rate", "40mbit", "burst", "32kbit", "latency", "400ms"], check=True)
    try:
        with Initiator(pool, big, _graphs(tmp_path)[:1], "--detach") as run:
            run.wait_for_line(r"a: copying the bundle", 60)
            temp = "/root/.cache/mgmt/bundles"
            wait_until(
                lambda: any(f.startswith(".") for f in a.listdir(temp)), 30, "the copy begun"
            )
            run.interrupt()
            started = time.monotonic()
            code = run.wait(30)
            took = time.monotonic() - started
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", a.veth, "root"], check=False)
    assert code == 130, run.output
    assert took < 5, (took, run.output)
    _nothing_left(a)


def test_a_second_ctrl_c_stops_at_once_what_was_started_while_a_command_still_runs(
    pool, bundle, tmp_path
):
    """After a second ^C ("not waiting") the stop still queued behind the command
    under way (the phase's threads were all busy): the run ended only when that did.
    a's Python is made slow to start ``auth``; the member it started is stopped."""
    a = pool["a"]
    graph = _graphs(tmp_path)[0]
    slow_python(a, graph, "auth) sleep 30")
    try:
        with Initiator(pool, bundle, [graph], "--detach") as run:
            wait_until(lambda: _running(a, "auth"), 60, "auth under way on a")
            run.interrupt()
            run.wait_for_line(r"letting 1 host command\(s\) under way end first", 10)
            run.interrupt()
            started = time.monotonic()
            code = run.wait(40)
            took = time.monotonic() - started
        assert code == 130, run.output
        assert "interrupted again: not waiting" in run.output, run.output
        assert took < 5, (took, run.output)
        assert a.listeners() == [f"{a.address}:{a.port}"]  # the member was stopped
    finally:
        a.kill_sessions()  # the slow auth, which nothing waits for any more
        a.run("rm -rf /root/.local/state/mgmt")
    assert_clean(a)


def test_mgmt_stop_names_a_host_lost_while_it_stops_and_stops_the_others(pool, bundle, tmp_path):
    """b's link goes down while its stop runs (b's Python made slow to start
    ``stop``): b is NOT STOPPED, lost, exit 1; a is stopped all the same. Once b
    is back, a second stop ends its cluster."""
    a, b = pool["a"], pool["b"]
    graphs = _graphs(tmp_path)
    env = pool.env(MGMT_BUNDLE=str(bundle))

    def argv(command: str, *more) -> list:
        return [*MGMT, command, *more, *(f"--remote={graph}" for graph in graphs)]

    started = subprocess.run(argv("run", "--detach"), env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stdout + started.stderr
    plain = graphs[1].read_text()
    slow_python(b, graphs[1], "stop) sleep 30")
    try:
        stop = subprocess.Popen(
            argv("stop", "--lost-timeout=2"), env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_until(lambda: _running(b, "stop"), 60, "the stop under way on b")
            b.link_down()
            out, _ = stop.communicate(timeout=60)
        finally:
            stop.kill()
            stop.wait()
        assert stop.returncode == 1, out
        assert "Traceback" not in out, out
        lines = dict(line.split(": ", 1) for line in out.splitlines() if line[:2] in ("a:", "b:"))
        assert lines["b"].startswith("NOT STOPPED: stop: lost: no answer to SSH keepalives"), out
        assert lines["a"] == "stopped agent, etcd", out
        _nothing_left(a)
    finally:
        for pid, command in b.processes().items():  # the slow stop (not b's cluster)
            if "slow-python3" in command or command == "sleep 30":
                os.kill(pid, signal.SIGKILL)
        b.link_up()
    graphs[1].write_text(plain)
    again = subprocess.run(argv("stop"), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "b: stopped agent" in again.stdout.splitlines(), again.stdout  # a is the member
    _nothing_left(b)
