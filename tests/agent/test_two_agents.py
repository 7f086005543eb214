"""Two agents, hostnames a and b, sharing one real etcd: the write-up's example.

Each runs examples/remote2a.yaml or remote2b.yaml with its own file and collect
pattern pointed into a temp dir of its own, and must end with file1x, file2a
and file2b holding exactly the write-up's contents.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import AgentProcess, read, wait_for

from support import require_tools
from support.polling import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WANTED = {
    "file2a": "i am file2a, exported from host a\n",
    "file2b": "i am file2b, exported from host b\n",
}


@pytest.fixture
def etcd(tmp_path):
    require_tools("etcd")
    from mgmt.world.client import EtcdClient
    from mgmt.world.server import EmbeddedEtcd

    with EmbeddedEtcd(tmp_path / "etcd" / "data") as server:
        client = EtcdClient([server.client_url])
        yield server, client
        client.close()


def localized(host: str, folder: Path, tmp_path: Path) -> Path:
    """The example graph with its own file and collect pattern moved into ``folder``."""
    text = (EXAMPLES / f"remote2{host}.yaml").read_text()
    text = text.replace(f'"/tmp/file1{host}"', f'"{folder}/file1{host}"')
    text = text.replace('pattern: "/tmp/"', f'pattern: "{folder}/"')
    graph = tmp_path / f"remote2{host}.yaml"
    graph.write_text(text)
    return graph


def start(host: str, graph: Path, url: str, tmp_path: Path, *extra: str) -> AgentProcess:
    args = ["--file", str(graph), "--hostname", host, "--seeds", url, "--no-server", "--tmp-prefix"]
    return AgentProcess([*args, *extra], tmp_path / f"agent-{host}.log")


def _contents(folder: Path) -> dict:
    return {p.name: read(p) for p in folder.iterdir()} if folder.is_dir() else {}


def keys(client, prefix: str) -> dict:
    return {key: value for key, value, _ in client.range(prefix, prefix=True)[1]}


def test_two_agents_exchange_exported_files_through_etcd(etcd, tmp_path):
    server, client = etcd
    dirs = {h: tmp_path / f"host-{h}" for h in "ab"}
    graphs = {h: localized(h, dirs[h], tmp_path) for h in "ab"}
    agents = {h: start(h, graphs[h], server.client_url, tmp_path) for h in "ab"}
    try:
        for host, folder in dirs.items():
            expected = dict(WANTED, **{f"file1{host}": f"i am file1{host}\n"})
            # Exactly these files with exactly these contents (a temp file may
            # linger for a moment after its new name appears).
            done = wait_for(lambda f=folder, e=expected: _contents(f) == e, 20)
            assert done, (_contents(folder), agents[host].log)
        # Only the exported resources are applied through collection, never at /tmp/file2x.
        exported = keys(client, "/_mgmt/exported/")
        assert (
            json.loads(exported["/_mgmt/exported/a/resources/file/file2a"])["content"]
            == WANTED["file2a"]
        )
        assert set(exported) == {
            "/_mgmt/exported/a/resources/file/file2a",
            "/_mgmt/exported/b/resources/file/file2b",
        }
        assert wait_for(
            lambda: (
                keys(client, "/_mgmt/converged/")
                == {"/_mgmt/converged/a": "true", "/_mgmt/converged/b": "true"}
            ),
            10,
        )

        # Editing b's exported file reaches both hosts; an edit on a host is undone.
        text = graphs["b"].read_text().replace("exported from host b", "edited on b")
        graphs["b"].write_text(text)
        for folder in dirs.values():
            assert wait_for(lambda f=folder: read(f / "file2b") == "i am file2b, edited on b\n", 10)
        (dirs["a"] / "file2a").write_text("vandalised\n")
        assert wait_for(lambda: read(dirs["a"] / "file2a") == WANTED["file2a"], 5)

        # b stops exporting: its key goes, and a's copy is no longer managed.
        local = text.replace('"@@file2b"', '"file2b"')
        graphs["b"].write_text(local.replace('"/tmp/file2b"', f'"{dirs["b"]}/file2b"'))
        assert wait_for(
            lambda: "/_mgmt/exported/b/resources/file/file2b" not in keys(client, "/_mgmt/"), 10
        )
        assert agents["a"].wait_log("removed 1 (file[file2b])", 10), agents["a"].log
    finally:
        codes = {h: agent.stop() for h, agent in agents.items()}
    assert codes == {"a": 0, "b": 0}, {h: a.log for h, a in agents.items()}


def test_both_agents_exit_by_themselves_once_converged(etcd, tmp_path):
    server, _client = etcd
    dirs = {h: tmp_path / f"host-{h}" for h in "ab"}
    agents = {
        h: start(
            h,
            localized(h, dirs[h], tmp_path),
            server.client_url,
            tmp_path,
            "--converged-timeout",
            "3",  # margin for one agent starting slowly
        )
        for h in "ab"
    }
    codes = {h: agent.wait(30) for h, agent in agents.items()}
    assert codes == {"a": 0, "b": 0}, {h: a.log for h, a in agents.items()}
    for host, folder in dirs.items():
        assert (
            read(folder / "file2a") == WANTED["file2a"]
            and read(folder / "file2b") == WANTED["file2b"]
        )
        assert read(folder / f"file1{host}") == f"i am file1{host}\n"


def test_two_hosts_exporting_one_path_do_not_fight_over_it(etcd, tmp_path):
    # Both export "clash"; the collect pattern puts both at <folder>/clash.
    server, _client = etcd
    agents = {}
    for host in "ab":
        folder = tmp_path / f"host-{host}"
        graph = tmp_path / f"clash-{host}.yaml"
        graph.write_text(
            "graph: clash\n"
            "resources:\n"
            "  file:\n"
            "  - name: '@@clash'\n"
            "    path: /tmp/clash\n"
            f"    content: 'from {host}'\n"
            "collect:\n"
            "- kind: file\n"
            f"  pattern: '{folder}/'\n"
        )
        agents[host] = start(host, graph, server.client_url, tmp_path, "--converged-timeout", "2")
    try:
        # Rewriting each other forever, they would never be idle long enough.
        codes = {h: agent.wait(30) for h, agent in agents.items()}
    finally:
        for agent in agents.values():
            if agent.proc.poll() is None:
                agent.proc.kill()
                agent.proc.wait()
    assert codes == {"a": 0, "b": 0}, {h: a.log for h, a in agents.items()}
    for host in "ab":
        # The first in host order wins on every host; the other is skipped, named.
        assert read(tmp_path / f"host-{host}" / "clash") == "from a"
        log = agents[host].log
        assert "skipping file[clash] from b: file:" in log and "file[clash] from a" in log


def test_a_hostile_export_cannot_write_or_remove_outside_the_collect_pattern(etcd, tmp_path):
    # Put straight into etcd: a host running this code would refuse such a graph.
    server, client = etcd
    inbox = tmp_path / "a" / "in"
    inbox.mkdir(parents=True)
    (inbox / "keep").write_text("mine\n")
    prefix = "/_mgmt/exported/evil/resources/file/"
    client.put(prefix + "climber", json.dumps({"path": "/x", "basename": "../escaped"}))
    client.put(prefix + "wiper", json.dumps({"path": "/x/", "state": "absent", "recurse": True}))
    client.put(prefix + "fine", json.dumps({"path": "/tmp/fine", "content": "ok\n"}))
    graph = tmp_path / "collector.yaml"
    graph.write_text(
        "graph: g\nresources:\n  noop: [{name: n}]\n"
        f"collect:\n- kind: file\n  pattern: '{inbox}/'\n"
    )
    agent = start("a", graph, server.client_url, tmp_path, "--converged-timeout", "1")
    assert agent.wait(30) == 0, agent.log
    assert read(inbox / "fine") == "ok\n"  # collection itself works
    assert read(inbox / "keep") == "mine\n"  # the wiper removed <inbox>/x/ at most
    assert not (tmp_path / "a" / "escaped").exists()
    assert "skipping file[climber] from evil: " in agent.log


def test_an_export_marked_noop_is_reported_not_applied_where_it_is_collected(etcd, tmp_path):
    """mgmt's exports carry their metaparameters; ours dropped them, and a collector
    rewrote a file its exporter had marked ``meta: {noop: true}``."""
    server, _client = etcd
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "watched").write_text("theirs\n")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        "  - name: '@@watched'\n    path: /tmp/watched\n    content: \"ours\\n\"\n"
        "    meta: {noop: true}\n"
        "  - name: '@@written'\n    path: /tmp/written\n    content: \"ours\\n\"\n"
        f"collect:\n- kind: file\n  pattern: '{inbox}/'\n"
    )
    args = ["--file", str(graph), "--hostname", "a", "--seeds", server.client_url, "--json"]
    args += ["--no-server", "--prefix", str(tmp_path / "state"), "--converged-timeout", "1"]
    agent = AgentProcess(args, tmp_path / "agent.log", confined=tmp_path)
    assert agent.wait(30) == 0, agent.log
    assert read(inbox / "written") == "ours\n"  # collection itself works
    assert read(inbox / "watched") == "theirs\n"
    report = next(line for line in agent.log.splitlines() if line.startswith("{"))
    rows = {row["name"]: row["result"] for row in json.loads(report)["resources"]}
    assert rows == {"watched": "would-change", "written": "changed"}, agent.log


def test_a_noop_run_publishes_no_export_for_other_hosts_to_apply(etcd, tmp_path):
    """mgmt exports nothing under --noop; ours published, and another host applied
    the file that a run asked to change nothing had exported."""
    server, client = etcd
    inbox = tmp_path / "in"
    inbox.mkdir()
    exporter = tmp_path / "a.yaml"
    exporter.write_text(
        "graph: a\nresources:\n  file:\n"
        "  - name: '@@from-a'\n    path: /tmp/from-a\n    content: \"from a\\n\"\n"
    )
    collector = tmp_path / "b.yaml"
    collector.write_text(
        "graph: b\nresources:\n  noop: [{name: n}]\n"
        f"collect:\n- kind: file\n  pattern: '{inbox}/'\n"
    )

    def run(host: str, graph: Path, *extra: str) -> AgentProcess:
        args = ["--file", str(graph), "--hostname", host, "--seeds", server.client_url]
        args += ["--no-server", "--prefix", str(tmp_path / f"state-{host}")]
        args += ["--converged-timeout", "1", *extra]
        agent = AgentProcess(args, tmp_path / f"agent-{host}.log", confined=tmp_path)
        assert agent.wait(30) == 0, agent.log
        return agent

    a = run("a", exporter, "--noop")
    run("b", collector)
    assert not (inbox / "from-a").exists()
    assert keys(client, "/_mgmt/exported/") == {}
    assert "--noop: 1 exported resource(s) not published" in a.log
    # Without --noop the same export reaches b: the collection itself works.
    run("a", exporter)
    assert set(keys(client, "/_mgmt/exported/")) == {"/_mgmt/exported/a/resources/file/from-a"}
    run("b", collector)
    assert read(inbox / "from-a") == "from a\n"


def test_a_second_agent_of_one_name_waits_its_turn_instead_of_overwriting(etcd, tmp_path):
    """Two machines cloned from one image, both called "a": the second one says who
    holds the name and publishes nothing, until the first stops."""
    server, client = etcd
    key = "/_mgmt/exported/a/resources/file/file2a"
    graphs = {}
    for clone in ("first", "second"):
        graph = localized("a", tmp_path / clone, tmp_path)
        text = graph.read_text().replace("exported from host a", f"exported from the {clone}")
        graphs[clone] = tmp_path / f"{clone}.yaml"
        graphs[clone].write_text(text)
    first = start("a", graphs["first"], server.client_url, tmp_path)
    second = None
    try:
        wait_until(lambda: key in keys(client, "/_mgmt/exported/"), what="the first's export")
        second = AgentProcess(
            ["--file", str(graphs["second"]), "--hostname", "a", "--seeds", server.client_url,
             "--no-server", "--tmp-prefix"],
            tmp_path / "agent-second.log",
        )  # fmt: skip
        assert second.wait_log("hostname 'a' is held by another agent (pid", 20), second.log
        assert "cannot publish exported resources" in second.log
        # Both apply their graphs; only the first one's export is in etcd.
        assert read(tmp_path / "second" / "file1a") == "i am file1a\n"
        assert "exported from the first" in keys(client, "/_mgmt/exported/")[key]
        assert first.stop() == 0, first.log
        assert second.wait_log("in step with etcd again", 20), second.log
        wait_until(
            lambda: "exported from the second" in keys(client, "/_mgmt/exported/").get(key, ""),
            what="the second's export",
        )
    finally:
        first.stop()
        code = second.stop() if second is not None else None
    assert code == 0, second.log
