"""One agent per host and login target: a second run's agent is refused while one runs.

Two initiators (or two terminals of one) running graphs for the same host
started two agents there, which fought over its resources. The agent holds a
kernel lock (flock) for its life, so its end, however it comes (SIGKILL of the
agent, a dropped connection), frees the host for the next run at once.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from remote_helpers import (
    Initiator,
    assert_clean,
    file_graph,
    has_file,
    mgmt_run,
    need_hosts,
    summary,
    wait_until,
)

from support import require_tools
from support.hosts import ssh_hosts
from support.sshagent import ssh_agent
from support.users import sudo_users

LEAVES = {"l1": "s", "l2": "s"}
REFUSED = re.compile(
    r"^an attached run's agent runs on this host as root \(pid (\d+), since "
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)"
)


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "s", *LEAVES], behind=LEAVES) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def agent_env(pool):
    with ssh_agent(pool.identity) as sock:
        yield {"SSH_AUTH_SOCK": sock}


@pytest.fixture(autouse=True)
def _clean_tmp(pool):
    yield
    for host in pool:
        host.run("rm -rf /tmp/only-*", check=False)


def agents(host, graph: str):
    """Pids of the agents (launchers) on ``host`` that run ``graph``."""
    return [
        pid
        for pid, cmd in host.processes().items()
        if " -S -c " in cmd and graph in cmd and not cmd.startswith("/bin/sh")
    ]


def leaf_graph(pool, name: str, directory, content: str):
    path = file_graph(name, f"ssh://root@{pool[name].address}", directory, content)
    path.write_text(path.read_text() + f"via: {LEAVES[name]}\n")
    return path


def test_a_second_run_for_a_host_is_refused_while_the_first_runs(pool, bundle, tmp_path):
    a = pool["a"]
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    with Initiator(pool, bundle, [file_graph("a", "a", tmp_path / "1", "first")]) as first:
        wait_until(lambda: has_file(a, "first"), 60, "the first run's file")
        [agent] = agents(a, "only-a.yaml")
        # The same file, another content: two agents would rewrite it in turn for ever.
        second = mgmt_run(
            pool, bundle, [file_graph("a", "a", tmp_path / "2", "second")], "--converged-timeout=1"
        )
        assert second.returncode == 1, second.stdout + second.stderr
        row = summary(second.stdout)["a"]
        assert row[0] == "failed", second.stdout
        found = REFUSED.match(row[2])
        assert found and int(found.group(1)) == agent, second.stdout
        assert "Traceback" not in second.stdout + second.stderr
        # The first run goes on, alone, unaffected.
        assert agents(a, "only-a.yaml") == [agent]
        assert has_file(a, "first") and first.proc.poll() is None
        first.interrupt()
        assert first.wait(30) == 0, first.output
    assert summary(first.output)["a"][0] == "stopped", first.output
    assert_clean(a)
    third = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path / "2", "third")],
                     "--converged-timeout=1")  # fmt: skip
    assert third.returncode == 0, third.stdout + third.stderr
    assert has_file(a, "third")


@pytest.mark.parametrize("how", ["agent killed", "initiator killed"])
def test_a_run_killed_outright_leaves_no_lock_behind(pool, bundle, tmp_path, how):
    a = pool["a"]
    with Initiator(pool, bundle, [file_graph("a", "a", tmp_path, "killed")]) as first:
        wait_until(lambda: has_file(a, "killed"), 60, "the first run's file")
        if how == "agent killed":
            [agent] = agents(a, "only-a.yaml")
            a.run(["kill", "-KILL", str(agent)])
            assert first.wait(30) == 1, first.output
        else:  # the connection drops; START's guard stops the agent
            first.proc.send_signal(signal.SIGKILL)
            first.wait(30)
            assert_clean(a, timeout=20)
    again = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path, "again")],
                     "--converged-timeout=1")  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert has_file(a, "again")
    assert_clean(a)


def test_behind_a_secondary_a_leaf_takes_one_run_and_the_secondary_serves_both(
    pool, agent_env, bundle, tmp_path
):
    """A secondary runs no agent of its own: two runs through it are fine; two
    agents on one leaf are not."""
    l1, l2 = pool["l1"], pool["l2"]
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    with Initiator(
        pool, bundle, [leaf_graph(pool, "l1", tmp_path / "1", "first")], env=agent_env
    ) as first:
        wait_until(lambda: has_file(l1, "first"), 60, "l1's file")
        [agent] = agents(l1, "only-l1.yaml")
        graphs = [leaf_graph(pool, n, tmp_path / "2", "second") for n in ("l1", "l2")]
        second = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=agent_env)
        assert second.returncode == 1, second.stdout + second.stderr
        rows = summary(second.stdout)
        found = REFUSED.match(rows[f"s/{l1.address}"][2])
        assert found and int(found.group(1)) == agent, second.stdout
        assert rows[f"s/{l1.address}"][0] == "failed", second.stdout
        assert rows[f"s/{l2.address}"][0] == "converged", second.stdout
        assert has_file(l2, "second") and has_file(l1, "first")
        assert agents(l1, "only-l1.yaml") == [agent]
        first.interrupt()
        assert first.wait(30) == 0, first.output
    for host in pool:
        assert_clean(host, timeout=15)


def test_the_lock_is_the_target_users_whoever_logs_in(pool, bundle, tmp_path):
    """Root logged in, and root through another login's sudo: one agent. Another
    sudo target is another user's agent, and runs."""
    require_tools("sudo", "useradd", "visudo")
    a = pool["a"]
    for name in ("1", "2", "3"):
        (tmp_path / name).mkdir()
    with sudo_users({"login": "nopasswd", "target": "none"},
                    Path(str(pool.identity) + ".pub")) as users:  # fmt: skip
        remote = f"{users['login'].name}@{a.address}"
        with Initiator(pool, bundle, [file_graph("a", "a", tmp_path / "1", "root")]) as first:
            wait_until(lambda: has_file(a, "root"), 60, "the root run's file")
            [agent] = agents(a, "only-a.yaml")
            graph = file_graph("a", remote, tmp_path / "2", "sudo")
            second = mgmt_run(pool, bundle, [graph], "--sudo", "--converged-timeout=1")
            assert second.returncode == 1, second.stdout + second.stderr
            [row] = summary(second.stdout).values()
            found = REFUSED.match(row[2])
            assert row[0] == "failed" and found and int(found.group(1)) == agent, second.stdout
            graph = file_graph("other", remote, tmp_path / "3", "target")
            flags = ("--sudo-user", users["target"].name, "--converged-timeout=1")
            third = mgmt_run(pool, bundle, [graph], *flags)
            assert third.returncode == 0, third.stdout + third.stderr
            assert a.read_file("/tmp/only-other") == "target"
            first.interrupt()
            assert first.wait(30) == 0, first.output
    assert_clean(a)
