"""`mgmt run --remote ... --json`: one document on stdout, one entry per host, each
holding what its agent did to each resource (mgmt.engine.report's shape)."""

import json

import pytest
from remote_helpers import assert_clean, graph_for, mgmt_run, need_hosts

from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "b"]) as hosts:
        yield hosts


def _resources(report: dict) -> dict:
    return {(r["kind"], r["name"]): r for r in report["resources"]}


def test_json_holds_every_host_and_its_resources(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graphs = [
        graph_for("remote2a.yaml", f"ssh://root@{a.address}:22", tmp_path),
        graph_for("remote2b.yaml", f"ssh://root@{b.address}:22", tmp_path),
    ]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=2", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # stdout is the document and nothing else
    assert document["version"] == 1 and document["status"] == "ok"
    hosts = {h["host"]: h for h in document["hosts"]}
    assert set(hosts) == {a.address, b.address}
    for host, own in ((a, "file1a"), (b, "file1b")):
        entry = hosts[host.address]
        assert (entry["result"], entry["bundle"]) == ("converged", "copied")
        report = entry["report"]
        # The initiator stopped the agent once the run converged; the agent was idle
        # then, and its report says so as the host's row does.
        assert report["host"] == host.address and report["status"] == "ok"
        assert report["converged"] is True
        found = _resources(report)
        assert found[("file", own)]["result"] == "changed"
        assert found[("file", own)]["changes"][0]["field"] in ("content", "state")
        # Collected from both hosts: each host lists both exported files.
        names = " ".join(n for k, n in found if k == "file")
        assert "file2a" in names and "file2b" in names, names
        assert host.read_file(f"/tmp/{own}") == f"i am {own}\n"
        assert_clean(host)
    # Host output and the summary went to stderr.
    assert f"{a.address} | " in done.stderr


def test_json_of_a_second_run_says_nothing_changed(pool, bundle, tmp_path):
    a = pool["a"]
    graph = graph_for("remote2a.yaml", f"ssh://root@{a.address}:22", tmp_path)
    first = mgmt_run(pool, bundle, [graph], "--converged-timeout=1")
    assert first.returncode == 0, first.stderr
    done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1", "--json", "--noop")
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)["hosts"]
    assert entry["bundle"] == "cached"
    found = _resources(entry["report"])
    assert found[("file", "file1a")]["result"] == "unchanged"
    assert entry["report"]["noop"] is True
