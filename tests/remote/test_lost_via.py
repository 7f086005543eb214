"""A leaf that stops answering behind its secondary (via:): once the run stops,
the secondary gives it the few seconds a direct host gets, reports it lost and
ends in time (it waited the whole --lost-timeout, and the initiator killed it)."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from remote_helpers import (
    Initiator,
    assert_clean,
    file_graph,
    mgmt_run,
    need_hosts,
    summary,
    wait_until,
)

from support.hosts import ssh_hosts
from support.sshagent import ssh_agent


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["s1", "l1"], behind={"l1": "s1"}) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def agent_env(pool):
    with ssh_agent(pool.identity) as sock:
        yield {"SSH_AUTH_SOCK": sock}


def _signal_all(host, sig: int) -> None:
    """Every process of the host, its sshd first: SIGSTOP makes it a host that
    takes packets (the kernel acknowledges them) but never answers."""
    for pid in [host.pid, *host.processes()]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def test_interrupt_with_a_dead_leaf_reports_it_lost_and_the_secondary_ends_in_time(
    pool, agent_env, bundle, tmp_path
):
    leaf = pool["l1"]
    graph = file_graph("l1", f"ssh://root@{leaf.address}", tmp_path, "before the freeze")
    graph.write_text(graph.read_text() + "via: s1\n")
    run = Initiator(pool, bundle, [graph], env=agent_env)  # default --lost-timeout (30 s)
    try:
        wait_until(lambda: leaf.exists("/tmp/only-l1"), 60, "the leaf to apply its graph")
        _signal_all(leaf, signal.SIGSTOP)
        run.interrupt()
        # The leaf gets 3 s, the secondary ends; the initiator would SIGKILL s1 at 10 s.
        code = run.wait(9)
    finally:
        _signal_all(leaf, signal.SIGCONT)
        run.kill()
    assert code == 1, run.output
    rows = summary(run.output)
    result, _, message = rows[f"s1/{leaf.address}"]
    assert result == "failed" and "lost: no answer over SSH for 3 s" in message, run.output
    assert "killed" not in rows["s1"][2] and "SIGKILL" not in run.output, run.output
    for host in pool:
        assert_clean(host, timeout=30)  # the leaf's START guard, once it runs again


def test_a_leaf_that_never_greets_is_reported_in_plain_words_within_the_lost_timeout(
    pool, agent_env, bundle, tmp_path
):
    leaf = pool["l1"]
    graph = file_graph("l1", f"ssh://root@{leaf.address}", tmp_path)
    graph.write_text(graph.read_text() + "via: s1\n")
    os.kill(leaf.pid, signal.SIGSTOP)  # the kernel takes the connection, sshd says nothing
    try:
        done = mgmt_run(pool, bundle, [graph], "--lost-timeout=3", env=agent_env, timeout=60)
    finally:
        os.kill(leaf.pid, signal.SIGCONT)
    out = done.stdout + done.stderr
    result, _, message = summary(done.stdout)[f"s1/{leaf.address}"]
    silent = f"{leaf.address}:22 accepted the connection but sent no SSH greeting within 3 s"
    assert result == "failed" and silent in message, out
