"""via: and the initiator's ~/.ssh/config: what it says of a leaf holds on the secondary.

The hosts' sshd listen on port 2222 only. A leaf named by its address, whose
port comes from a ``Host ADDRESS`` block of the initiator's ssh_config (no
HostName: the name is already the address), must be logged in to on that port
by its secondary too, as ``ssh ADDRESS`` from the initiator would.
"""

from __future__ import annotations

import pytest
from remote_helpers import file_graph, has_file, mgmt_run, need_hosts, summary

from support.hosts import ssh_hosts
from support.sshagent import ssh_agent

PORT = 2222


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["s1", "l1"], port=PORT, behind={"l1": "s1"}) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def agent_env(pool):
    with ssh_agent(pool.identity) as sock:
        yield {"SSH_AUTH_SOCK": sock}


def test_a_leafs_port_from_ssh_config_without_hostname_reaches_the_secondary(
    pool, agent_env, bundle, tmp_path
):
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
