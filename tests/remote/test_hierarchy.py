"""Hierarchical remote execution (via:): leaves reachable only from their secondary.

The pool: a direct host, two secondaries and two leaves behind each. A leaf's
only link goes into its secondary's namespace; on this machine its address
has an unreachable route, so the initiator cannot reach it even by mistake.
The initiator's key is in a throw-away ssh-agent, forwarded to the secondaries
(no key is copied to them).
"""

from __future__ import annotations

import base64
import json
import re

import pytest
from remote_helpers import (
    EXAMPLES,
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

LEAVES = {"l1": "s1", "l2": "s1", "l3": "s2", "l4": "s2"}


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["d", "s1", "s2", *LEAVES], behind=LEAVES) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def agent_env(pool):
    with ssh_agent(pool.identity) as sock:
        yield {"SSH_AUTH_SOCK": sock}


def leaf_graph(pool, name: str, directory, content: str = "") -> object:
    """A one-file graph for a leaf, reached through its secondary (by ssh_config alias)."""
    leaf = pool[name]
    path = file_graph(name, f"ssh://root@{leaf.address}", directory, content)
    path.write_text(path.read_text() + f"via: {LEAVES[name]}\n")
    return path


def path_of(pool, name: str) -> str:
    """A leaf's name in the summary and in output prefixes: secondary/address."""
    return f"{LEAVES[name]}/{pool[name].address}"


def test_the_initiator_cannot_reach_a_leaf(pool):
    done = pool["d"].run(["true"])  # the direct host is up ...
    assert done.returncode == 0
    import socket

    with pytest.raises(OSError):  # ... and a leaf is not, from here
        socket.create_connection((pool["l1"].address, 22), timeout=2)


def test_depth_two_two_secondaries_two_leaves_each(pool, agent_env, bundle, tmp_path):
    graphs = [file_graph("d", "d", tmp_path)] + [leaf_graph(pool, n, tmp_path) for n in LEAVES]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=agent_env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    rows = summary(done.stdout)
    assert rows["d"][:2] == ("converged", "copied"), out
    for secondary in ("s1", "s2"):
        assert rows[secondary][0] == "converged", out
    for name in LEAVES:
        assert rows[path_of(pool, name)][:2] == ("converged", "copied"), out
        assert pool[name].read_file(f"/tmp/only-{name}") == f"i am {name}"
        # Live output came up with the full path in front.
        assert f"{path_of(pool, name)} | " in out
    for host in pool:
        assert_clean(host)
    # No key was ever written to a secondary.
    for secondary in ("s1", "s2"):
        assert pool[secondary].listdir("/root/.ssh") == []


def test_ctrl_c_stops_every_level_and_leaves_nothing(pool, agent_env, bundle, tmp_path):
    graphs = [leaf_graph(pool, n, tmp_path, "before ^C") for n in ("l1", "l3")]
    run = Initiator(pool, bundle, graphs, env=agent_env)
    try:
        for name in ("l1", "l3"):
            wait_until(
                lambda n=name: pool[n].read_file(f"/tmp/only-{n}") == "before ^C",
                60,
                f"{name} applied",
            )
        run.interrupt()
        assert run.wait(30) == 0, run.output
    finally:
        run.kill()
    rows = summary(run.output)
    for name in ("l1", "l3"):
        assert rows[path_of(pool, name)][0] == "stopped", run.output
    for host in pool:
        assert_clean(host)


def exchange_graph(example: str, letter: str, remote: str, directory, via: str = "") -> object:
    """The write-up's graph for host ``letter`` (a, b, c...): file1<x> here, file2<x>
    exported, every /tmp/ file collected."""
    text = (EXAMPLES / example).read_text().replace("b\n", f"{letter}\n")
    text = text.replace("2b", f"2{letter}").replace("1b", f"1{letter}")
    text = re.sub(r"(?m)^remote:.*$", f"remote: {remote}", text)
    if via:
        text += f"via: {via}\n"
    path = directory / f"remote2{letter}.yaml"
    path.write_text(text)
    return path


def _tmp_files(host) -> dict:
    return {n: host.read_file(f"/tmp/{n}") for n in host.listdir("/tmp") if n.startswith("file")}


def _anonymous_range(host, port: int) -> str:
    body = {"key": base64.b64encode(b"/_mgmt/").decode()}
    body["range_end"] = base64.b64encode(b"/_mgmt0").decode()
    url = f"http://127.0.0.1:{port}/v3/kv/range"
    return host.run(["curl", "-s", "-m", "5", "-X", "POST", url, "-d", json.dumps(body)]).stdout


def test_writeup_exchange_between_a_direct_host_and_leaves_behind_two_secondaries(
    pool, agent_env, bundle, tmp_path
):
    d, l1, l3 = pool["d"], pool["l1"], pool["l3"]
    graphs = [
        exchange_graph("remote2a.yaml", "a", "d", tmp_path),
        exchange_graph("remote2b.yaml", "b", f"ssh://root@{l1.address}", tmp_path, "s1"),
        exchange_graph("remote2b.yaml", "c", f"ssh://root@{l3.address}", tmp_path, "s2"),
    ]
    run = Initiator(pool, bundle, graphs, env=agent_env)
    try:
        want = {f"file2{x}" for x in "abc"}
        for host in (d, l1, l3):
            wait_until(lambda h=host: want <= set(_tmp_files(h)), 60, f"{host.name} collected")
        # The etcd tunnels on a secondary and on a leaf lead to the run's etcd, which
        # refuses a local user without the run's credentials.
        for host in (pool["s1"], l1):
            ports = [x for x in host.listeners() if x.startswith("127.0.0.1:")]
            assert ports, host.listeners()
            for port in ports:
                answer = _anonymous_range(host, int(port.rsplit(":", 1)[1]))
                assert "kvs" not in answer and "user name is empty" in answer, answer
        run.interrupt()
        assert run.wait(30) == 0, run.output
    finally:
        run.kill()
    for host, mine in ((d, "a"), (l1, "b"), (l3, "c")):
        files = _tmp_files(host)
        assert files[f"file1{mine}"] == f"i am file1{mine}\n"
        for x in "abc":
            assert files[f"file2{x}"].startswith(f"i am file2{x}, exported from host {x}")
    for host in pool:
        assert_clean(host)
        host.run("rm -f /tmp/file*")
