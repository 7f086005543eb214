"""via: the logins below a secondary: where the initiator's ssh_config says, with its agent.

The hosts' sshd listen on port 2222 only, and the leaf is reachable from its
secondary only.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from remote_helpers import (
    Initiator,
    assert_clean,
    file_graph,
    has_file,
    mgmt_run,
    need_hosts,
    save_graph,
    sessions_frozen,
    summary,
    wait_until,
)

from support.hosts import ssh_hosts
from support.sshagent import ssh_agent

PORT = 2222


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["s1", "l1", "l2"], port=PORT, behind={"l1": "s1", "l2": "s1"}) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def agent_env(pool):
    with ssh_agent(pool.identity) as sock:
        yield {"SSH_AUTH_SOCK": sock}


def test_a_leafs_port_from_ssh_config_without_hostname_reaches_the_secondary(
    pool, agent_env, bundle, tmp_path
):
    """A leaf named by its address, whose port comes from a ``Host ADDRESS`` block
    (no HostName: the name is the address already), is logged in to on that port
    by its secondary too, as ``ssh ADDRESS`` from the initiator would."""
    leaf = pool["l1"]
    config = pool.ssh_config.read_text()
    pool.ssh_config.write_text(config + f"\nHost {leaf.address}\n    Port {PORT}\n")
    try:
        graph = file_graph("l1", f"ssh://root@{leaf.address}", tmp_path)
        graph.write_text(graph.read_text() + "via: s1\n")
        done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1", env=agent_env)
    finally:
        pool.ssh_config.write_text(config)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert summary(done.stdout)[f"s1/{leaf.address}"][0] == "converged", out
    assert has_file(leaf, "i am l1")


def leaf_graph(tmp_path, content: str, name: str = "l1", busy: str = "") -> Path:
    graph = file_graph(name, name, tmp_path, content)  # by ssh_config alias
    text = graph.read_text().replace("remote: ", busy + "remote: ")  # busy: more resources
    graph.write_text(text + "via: s1\n")
    return graph


@pytest.mark.parametrize("agent", ["empty", "gone", "silent"])
def test_an_agent_with_no_key_or_none_answering_is_said_up_front(pool, bundle, tmp_path, agent):
    """Started but never given a key (no ssh-add), its socket left behind, or
    hung (it takes connections, never answers): the leaves can only fail, and the
    run says why instead of a bare Permission denied, or hanging for ever."""
    if agent == "silent":
        sock = str(Path(tempfile.mkdtemp(dir=tmp_path)) / "silent.sock")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(sock)
            listener.listen(16)  # connections wait in its backlog, never answered
            done = mgmt_run(
                pool, bundle, [leaf_graph(tmp_path, agent)], "--converged-timeout=1",
                env={"SSH_AUTH_SOCK": sock},
            )  # fmt: skip
        said = f"s1: no ssh-agent answers at SSH_AUTH_SOCK ({sock}) to forward: timed out"
    elif agent == "empty":
        with ssh_agent(None) as sock:
            done = mgmt_run(
                pool, bundle, [leaf_graph(tmp_path, agent)], "--converged-timeout=1",
                env={"SSH_AUTH_SOCK": sock},
            )  # fmt: skip
        said = f"s1: the ssh-agent to forward ({sock}) holds no key: add one with ssh-add"
    else:
        sock = str(Path(tempfile.mkdtemp(dir=tmp_path)) / "gone.sock")
        done = mgmt_run(
            pool, bundle, [leaf_graph(tmp_path, agent)], "--converged-timeout=1",
            env={"SSH_AUTH_SOCK": sock},
        )  # fmt: skip
        said = f"s1: no ssh-agent answers at SSH_AUTH_SOCK ({sock}) to forward: "
        said += "No such file or directory"
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert said + "; the hosts below it cannot be logged in to" in out
    row = summary(done.stdout)["s1/l1"]
    assert row[0] == "failed" and "Permission denied" in row[2], out
    assert not has_file(pool["l1"], agent)


def test_an_agent_that_dies_during_the_run_fails_the_later_logins_and_the_run_ends(
    pool, bundle, tmp_path
):
    """l2 waits for l1's slot (--cconns=1); the agent dies while l1 runs. l2's login
    gets no agent (its secondary's ssh waited for ever on the forwarded one, and so
    did the run), fails, and the run ends, having said why."""
    busy = "  exec:\n  - {name: busy, cmd: 'sleep 3', shell: /bin/sh}\n"
    graphs = [leaf_graph(tmp_path, "died 1", "l1", busy), leaf_graph(tmp_path, "died 2", "l2")]
    with ssh_agent(pool.identity) as sock:
        run = Initiator(
            pool, bundle, graphs, "--cconns=1", "--converged-timeout=1",
            env={"SSH_AUTH_SOCK": sock},
        )  # fmt: skip
        try:
            run.wait_for_line(r"^s1/l1 \| ")  # l1 logged in: its agent runs
        except BaseException:
            run.kill()
            raise
    with run:  # the agent is gone now
        assert run.wait(60) == 1, run.output
    out = run.output
    assert f"s1: the ssh-agent to forward ({sock}) no longer answers" in out
    rows = summary(out)
    assert rows["s1/l1"][0] == "converged", out
    assert rows["s1/l2"][0] == "failed" and "Permission denied" in rows["s1/l2"][2], out
    assert has_file(pool["l1"], "died 1") and not has_file(pool["l2"], "died 2")


def test_edits_saved_while_the_secondary_is_frozen_end_with_the_last(pool, bundle, tmp_path):
    """Two saves of a leaf's graph while every process of its secondary is stopped
    (a slow bastion): once it goes on, the leaf applies the last one."""
    l1 = pool["l1"]
    graph = leaf_graph(tmp_path, "first")
    agent = ssh_agent(pool.identity)
    with agent as sock, Initiator(pool, bundle, [graph], env={"SSH_AUTH_SOCK": sock}) as run:
        wait_until(lambda: has_file(l1, "first"), 60, "the first graph applied")
        with sessions_frozen(pool["s1"]):
            save_graph(graph, graph.read_text().replace("first", "second"))
            run.wait_for_line(r"remote: s1: Copied over new graph definition", timeout=10)
            save_graph(graph, graph.read_text().replace("second", "third"))
            # Both were taken by the initiator (the plan sent twice) before s1 went on.
            wait_until(
                lambda: run.output.count("s1: Copied over new graph definition") >= 2,
                10,
                "the second edit sent",
            )
            assert has_file(l1, "first")
        wait_until(lambda: has_file(l1, "third"), 30, "the last edit applied on the leaf")
        run.interrupt()
        code = run.wait(30)
    assert code == 0, run.output
    for host in pool:
        assert_clean(host)


def test_an_unknown_leaf_on_another_port_is_accepted_and_remembered(pool, bundle, tmp_path):
    """--ssh-accept-new for a leaf on port 2222, named by its alias: the key its
    secondary accepted ([address]:2222) lands in the initiator's known_hosts, and
    the next run, without the flag, checks it."""
    l2 = pool["l2"]
    pool.forget(l2)
    try:
        graphs = [leaf_graph(tmp_path, "accepted", "l2")]
        with ssh_agent(pool.identity) as sock:
            env = {"SSH_AUTH_SOCK": sock}
            done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=env)
            assert done.returncode == 1, done.stdout + done.stderr
            flags = ("--converged-timeout=1", "--ssh-accept-new")
            done = mgmt_run(pool, bundle, graphs, *flags, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"[{l2.address}]:{PORT} " in pool.known_hosts.read_text()
            assert pool.known_hosts_line(l2) in pool.known_hosts.read_text()
            done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=env)
            assert done.returncode == 0, done.stdout + done.stderr
    finally:
        pool.remember_all()
    assert has_file(l2, "accepted")


def test_a_changed_or_unknown_leaf_key_is_one_line_naming_the_fix(pool, bundle, tmp_path):
    """ssh's 15-line banner (whose advice names the secondary's private copy of
    known_hosts, gone after the run) is one line in the leaf's row, as for a
    direct host: the key shown, and the command for the initiator's known_hosts."""
    l2 = pool["l2"]
    entry = f"[{l2.address}]:{PORT}"
    impostor = " ".join(pool.known_hosts_line(pool["s1"]).split()[1:])  # s1's key for l2
    shown = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(l2.state_dir / "known_hosts")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    graphs = [leaf_graph(tmp_path, "key", "l2")]
    others = "".join(pool.known_hosts_line(h) for h in pool if h is not l2)
    try:
        with ssh_agent(pool.identity) as sock:
            pool.known_hosts.write_text(others + f"{entry} {impostor}\n")
            changed = mgmt_run(
                pool, bundle, graphs, "--converged-timeout=1", env={"SSH_AUTH_SOCK": sock}
            )
            pool.known_hosts.write_text(others)
            unknown = mgmt_run(
                pool, bundle, graphs, "--converged-timeout=1", env={"SSH_AUTH_SOCK": sock}
            )
    finally:
        pool.remember_all()
    rows = {}
    for name, done in (("changed", changed), ("unknown", unknown)):
        assert done.returncode == 1, done.stdout + done.stderr
        assert "@@@" not in done.stdout + done.stderr
        row = [line for line in done.stdout.splitlines() if line.startswith("s1/l2 ")]
        assert len(row) == 1 and "failed" in row[0], done.stdout
        rows[name] = row[0].split("  -  ", 1)[1].split("s  ", 1)[1]
    assert rows["changed"] == (
        f"ssh failed: HOST KEY CHANGED: {entry} showed ED25519 {shown}, not the key your "
        "known_hosts has. Someone may be intercepting the connection. Refused; if the host "
        f"was really reinstalled, remove the old key with: ssh-keygen -R '{entry}'"
    )
    assert rows["unknown"] == (
        f"ssh failed: unknown host key: your known_hosts has no ED25519 key for {entry}. "
        "Accept the host's key with --ssh-accept-new, or add it to your known_hosts"
    )
    assert not has_file(l2, "key")
