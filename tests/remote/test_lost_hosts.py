"""A host that goes silent (its link down) or a session cut mid-copy: the run
reports it and ends, and the hosts keep nothing of it (issue 17, items 3 and 4)."""

import os
import signal
import time

import pytest
from remote_helpers import (
    Initiator,
    assert_clean,
    big_bundle,
    file_graph,
    leftovers,
    mgmt_run,
    need_hosts,
    summary,
    thin_link,
    wait_until,
)

from support import require_tools
from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "b"]) as hosts:
        yield hosts


def _graphs(pool, tmp_path):
    return [file_graph(h.name, h.name, tmp_path) for h in pool]


def _clear(*hosts):
    for host in hosts:
        host.run("rm -f /tmp/only-*")


def test_a_host_whose_link_goes_down_is_lost_and_the_run_ends_by_itself(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    # Converged after 10 s: b, silent from the start of that, is lost after 4.
    flags = ("--converged-timeout=10", "--lost-timeout=4")
    run = Initiator(pool, bundle, _graphs(pool, tmp_path), *flags)
    try:
        wait_until(lambda: a.exists("/tmp/only-a") and b.exists("/tmp/only-b"), 30, "both")
        b.link_down()
        code = run.wait(60)  # no ^C: a converges, b is lost, the run ends
    finally:
        run.kill()
        b.link_up()
    assert code == 1, run.output
    rows = summary(run.output)
    assert rows["a"][0] == "converged", run.output
    assert rows["b"][0] == "failed", run.output
    assert "lost: no answer to SSH keepalives for 4 s" in rows["b"][2]
    assert_clean(a)
    # Back on the link, b's sshd hears the initiator's close: START's guard stops
    # the agent and removes the run dir.
    wait_until(lambda: leftovers(b) == leftovers(a), 90, "b to clean up once reachable")
    _clear(a, b)


def test_interrupt_with_a_dead_host_is_prompt(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    run = Initiator(pool, bundle, _graphs(pool, tmp_path))  # default --lost-timeout (30 s)
    try:
        wait_until(lambda: a.exists("/tmp/only-a") and b.exists("/tmp/only-b"), 30, "both")
        run.wait_for_line(r"^b \| .*only-b")
        b.link_down()
        run.interrupt()
        code = run.wait(12)  # the dead host is given a few seconds, not 30 nor 15
    finally:
        run.kill()
        b.link_up()
    assert code == 1, run.output
    rows = summary(run.output)
    assert rows["a"][0] == "stopped" and rows["b"][0] == "failed", run.output
    assert "lost: no answer to SSH keepalives" in rows["b"][2]
    assert_clean(a)
    wait_until(lambda: leftovers(b) == leftovers(a), 90, "b to clean up once reachable")
    _clear(a, b)


def test_an_initiator_killed_mid_copy_leaves_no_partial_bundle_or_run_dir(pool, tmp_path):
    big = big_bundle(tmp_path / "big.pyz", 200 * 1024 * 1024)
    with Initiator(pool, big, _graphs(pool, tmp_path)) as run:
        for host in pool:
            run.wait_for_line(rf"{host.name}: Copying bundle", timeout=30)
        wait_until(lambda: all(leftovers(h)["temp bundles"] for h in pool), 30, "copies begun")
        run.interrupt(signal.SIGKILL)  # no clean-up from the initiator at all
        run.wait(10)
    for host in pool:
        assert_clean(host, timeout=20)  # the host-side guard did it


def _big_bundle(tmp_path, size):
    """A bundle of ``size`` bytes never cached on a host (its first bytes are new)."""
    return big_bundle(tmp_path / "big.pyz", size, os.urandom(16))


def test_a_host_silent_during_the_copy_then_interrupted_is_lost_not_stopped(pool, tmp_path):
    # It was reported "stopped" (exit 0) once dropped after the stop's grace.
    a, b = pool["a"], pool["b"]
    big = _big_bundle(tmp_path, 1024 * 1024 * 1024)  # longer to copy than the test takes
    with Initiator(pool, big, _graphs(pool, tmp_path)) as run:
        run.wait_for_line(r"remote: b: Copying bundle", timeout=30)
        wait_until(lambda: leftovers(b)["temp bundles"], 30, "b's copy begun")
        b.link_down()
        try:
            run.interrupt()
            code = run.wait(15)  # the silent host is given 3 s
        finally:
            b.link_up()
    assert code == 1, run.output
    rows = summary(run.output)
    assert rows["a"][0] == "stopped", run.output
    assert rows["b"][0] == "failed", run.output
    assert rows["b"][2].startswith("lost: "), run.output  # keepalives may say it first
    assert_clean(a, timeout=20)
    wait_until(lambda: leftovers(b) == leftovers(a), 90, "b to clean up once reachable")


def test_a_stop_during_a_copy_over_a_thin_link_is_a_stop(pool, tmp_path):
    # What the copy had sent was still on its way (seconds of it at 300 kbit/s),
    # and the keepalive asked at the stop waited behind it: "lost", exit 1.
    require_tools("tc")
    a = pool["a"]
    one_chunk = _big_bundle(tmp_path, 256 * 1024)
    with thin_link(a), Initiator(pool, one_chunk, [file_graph("a", "a", tmp_path)]) as run:
        run.wait_for_line(r"remote: a: Copying bundle", timeout=30)
        wait_until(lambda: leftovers(a)["temp bundles"], 30, "a's copy begun")
        run.interrupt()
        code = run.wait(40)
    assert code == 0, run.output
    assert summary(run.output)["a"][0] == "stopped", run.output
    assert_clean(a, timeout=30)


def test_a_hangup_stops_the_run_as_sigterm_does(pool, bundle, tmp_path):
    # A closed terminal's SIGHUP killed the initiator: no summary, its etcd dir left.
    a, b = pool["a"], pool["b"]
    run = Initiator(pool, bundle, _graphs(pool, tmp_path))
    try:
        wait_until(lambda: a.exists("/tmp/only-a") and b.exists("/tmp/only-b"), 30, "both")
        run.interrupt(signal.SIGHUP)
        code = run.proc.wait(20)
        left = os.listdir(run._tmp)  # its --tmp-prefix dir went in there
    finally:
        run.kill()
    assert code == 0, run.output
    rows = summary(run.output)
    assert rows["a"][0] == rows["b"][0] == "stopped", run.output
    assert left == [], left
    for host in pool:
        assert_clean(host, timeout=20)
    _clear(a, b)


def test_a_partial_bundle_and_run_dir_whose_start_was_killed_go_at_the_next_run(
    pool, bundle, tmp_path
):
    # A copy killed on the host (SIGKILL: START's trap cannot run) left its
    # .SHA.pyz.PID and its run dir for good: nothing ever removed them.
    b = pool["b"]
    cache = "/root/.cache/mgmt/bundles"
    graphs = [file_graph("b", "b", tmp_path)]
    with Initiator(pool, _big_bundle(tmp_path, 1024 * 1024 * 1024), graphs) as run:
        run.wait_for_line(r"remote: b: Copying bundle", timeout=30)
        wait_until(lambda: leftovers(b)["temp bundles"], 30, "b's copy begun")
        b.kill_sessions()
        assert run.wait(30) == 1, run.output
    [killed] = leftovers(b)["temp bundles"]
    assert len(leftovers(b)["run dirs"]) == 1
    # One whose writer is alive (b's sshd) and one still growing stay.
    alive = f".{'0' * 64}.pyz.{b.pid}"
    growing = f".{'1' * 64}.pyz.{killed.rsplit('.', 1)[1]}"
    b.run(f"cd {cache} && : > {alive} && : > {growing}")
    b.run(f"cd {cache} && touch -d '2 minutes ago' {killed} {alive} && rm -f *.pyz")
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "b: Copying bundle" in done.stdout + done.stderr  # a copy: the sweep ran
    assert sorted(leftovers(b)["temp bundles"]) == sorted([alive, growing])
    assert leftovers(b)["run dirs"] == []
    b.run(f"cd {cache} && rm -f -- {alive} {growing}")
    _clear(b)


def test_a_host_silent_while_connecting_then_interrupted_is_lost_not_stopped(
    pool, bundle, tmp_path
):
    # Its sshd stopped (SIGSTOP): the connection hangs; after ^C it was "stopped", exit 0.
    # And the run then waited for b's connect to time out (10 s), not the stop's 4 s.
    a, b = pool["a"], pool["b"]
    os.kill(b.pid, signal.SIGSTOP)
    try:
        with Initiator(pool, bundle, _graphs(pool, tmp_path)) as run:
            wait_until(lambda: a.exists("/tmp/only-a"), 30, "a")
            run.interrupt()
            stopped = time.monotonic()
            code = run.wait(15)
            took = time.monotonic() - stopped
    finally:
        os.kill(b.pid, signal.SIGCONT)
    assert code == 1, run.output
    assert took < 8, (took, run.output)
    rows = summary(run.output)
    assert rows["a"][0] == "stopped", run.output
    assert rows["b"][0] == "failed" and rows["b"][2].startswith("lost: "), run.output
    assert_clean(a, timeout=20)
    wait_until(lambda: leftovers(b) == leftovers(a), 60, "b to clean up")
    _clear(a, b)
