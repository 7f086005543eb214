"""A detached cluster's set of hosts seen from a run that names only some of them:
``--detach`` to another set (a host removed) and ``mgmt stop`` of one host.

The refusal said ``mgmt stop`` with the new run's graphs first: done so, the
cluster's host those graphs leave out ran on for ever, its agent cut off from
members that were gone, and nothing said so.
"""

import pytest
from remote_helpers import assert_clean, cluster_command, file_graph, mgmt_run, need_hosts

from support.hosts import ssh_hosts

STATE = "/root/.local/state/mgmt/detached"


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "b"], bridge=True) as hosts:
        yield hosts


def _agent_runs(host) -> bool:
    return any(cmd.endswith(" agent") for cmd in host.processes().values())


def test_a_run_or_stop_that_leaves_out_a_host_of_the_cluster_names_it(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graph_a, graph_b = file_graph("a", "a", tmp_path), file_graph("b", "b", tmp_path)
    try:
        done = mgmt_run(pool, bundle, [graph_a, graph_b], "--detach")
        assert done.returncode == 0, done.stdout + done.stderr

        # Detached again to a alone: refused, naming b, which a stop with a's graph
        # alone would leave running.
        again = mgmt_run(pool, bundle, [graph_a], "--detach")
        assert again.returncode == 1, again.stdout + again.stderr
        said = "a detached cluster already runs on a, whose hosts are also b, which these graphs"
        assert said in again.stderr, again.stderr
        assert "graph of b (these alone would leave b running" in again.stderr
        assert _agent_runs(a) and _agent_runs(b)  # the refusal touched nothing

        # One host stopped: done, and the host left running is said.
        stop = cluster_command(pool, bundle, "stop", [graph_a])
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "a: stopped agent, etcd" in stop.stdout
        assert "the cluster's other host(s), not named here, left as they are: b" in stop.stdout
        assert not _agent_runs(a) and _agent_runs(b)
    finally:
        stop = cluster_command(pool, bundle, "stop", [graph_a, graph_b])
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "left as they are" not in stop.stdout, stop.stdout
    for host in (a, b):
        assert_clean(host)
        assert not host.exists(STATE)
