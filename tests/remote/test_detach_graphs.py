"""The graphs a detached cluster's agents run, kept on their hosts: a graph file may be
named as any of the cluster's own files there (``cluster.json`` is a fine name for a
graph written in JSON), and an edit pushed by ``mgmt run --attach --detach``
reaches the agent."""

import json

import pytest
from remote_helpers import (
    Initiator,
    assert_clean,
    cluster_command,
    mgmt_run,
    need_hosts,
    wait_until,
)

from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["g"], bridge=True) as hosts:
        yield hosts


def _json_graph(path, content: str):
    graph = {
        "graph": "json",
        "resources": {
            "file": [{"name": "f", "path": "/tmp/f-json", "content": content, "state": "exists"}]
        },
        "remote": "g",
    }
    path.write_text(json.dumps(graph))
    return path


@pytest.mark.parametrize("name", ["cluster.json", "agent.json", "etcd.json"])
def test_a_graph_named_as_a_file_of_the_cluster_runs_and_takes_edits(pool, bundle, tmp_path, name):
    """The graph was written in the cluster's folder under its own name: cluster.json,
    the cluster's record, then overwrote it (agent.json: the supervisor's spec of the
    agent), and the agent ran that as its graph; the hand-over failed."""
    g = pool["g"]
    graph = _json_graph(tmp_path / name, "one\n")
    try:
        done = mgmt_run(pool, bundle, [graph], "--detach")
        assert done.returncode == 0, done.stdout + done.stderr
        assert g.read_file("/tmp/f-json") == "one\n"
        _json_graph(graph, "two\n")
        with Initiator(pool, bundle, [graph], "--attach", "--detach") as attached:
            attached.wait_for_line(r"attached to 1 host\(s\)", 60)
            wait_until(lambda: g.read_file("/tmp/f-json") == "two\n", 30, "the edit applied")
            attached.interrupt()
            assert attached.wait(30) == 0, attached.output
        status = cluster_command(pool, bundle, "status", [graph])
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        stop = cluster_command(pool, bundle, "stop", [graph])
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert_clean(g)
