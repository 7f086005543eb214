"""The kinds tested least, run as a user runs them: bad values, --noop, --json.

The served kinds (``http:server``, ``tftp:server`` and their files) and exec,
through ``mgmt run``: a value the graph gets wrong stops it at its line; under
``--noop`` each says what it would change (in the log and in ``--json``), starts
nothing, and fails where the real run would fail. None of these graphs writes
a file (exec runs nothing under noop), so the agent runs unconfined.
"""

from __future__ import annotations

import json
import socket

import pytest

from agent.helpers import AgentProcess, run_mgmt


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(tmp_path, text: str, *extra: str):
    graph = tmp_path / "g.yaml"
    graph.write_text(text)
    args = ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-timeout", "0"]
    return run_mgmt([*args, *extra], timeout=60)


@pytest.mark.parametrize("kind", ["http:server", "tftp:server"])
def test_a_bare_port_as_address_is_refused_at_its_line(tmp_path, kind):
    """`address: 8080` was the host "8080" (0.0.31.144) on the default port: the
    graph loaded, and the real run failed to listen on an address no one meant."""
    done = _run(tmp_path, f"graph: g\nresources:\n  {kind}:\n  - name: s\n    address: 8080\n")
    assert done.returncode == 2, done.stderr
    assert f"g.yaml:5: {kind}[s]: address: '8080' is no host: write ':8080' for a port" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_an_address_with_a_port_still_loads(tmp_path):
    text = "graph: g\nresources:\n  http:server:\n  - name: s\n    address: '127.0.0.1:8080'\n"
    done = _run(tmp_path, text, "--noop")
    assert done.returncode == 0, done.stderr


SERVED = """\
graph: g
resources:
  http:server:
  - name: web
    address: "127.0.0.1:{http}"
  http:server:file:
  - name: ks
    server: web
    path: /ks.cfg
    content: "text\\n"
  tftp:server:
  - name: boot
    address: "127.0.0.1:{tftp}"
  tftp:server:file:
  - name: menu
    server: boot
    source: {source}
"""


def test_noop_says_which_servers_and_files_it_would_serve_and_starts_none(tmp_path):
    """Under --noop the server kinds said nothing: no log line, `changes: []`."""
    http, tftp = _free_port(), _free_port()
    (tmp_path / "menu").write_text("default linux\n")
    graph = tmp_path / "g.yaml"
    graph.write_text(SERVED.format(http=http, tftp=tftp, source=tmp_path / "menu"))
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--tmp-prefix", "--noop", "--json"],
        tmp_path / "agent.log",
    )
    try:
        # The last to be checked (it comes after its server): all four have been.
        assert agent.wait_log("tftp:server:file: menu: would serve", timeout=30), agent.log
        with pytest.raises(ConnectionRefusedError):  # nothing listens: noop started nothing
            socket.create_connection(("127.0.0.1", http), timeout=5).close()
        log = agent.log
        assert f"http:server: web: would serve files on 127.0.0.1 port {http} (noop)" in log
        assert "would serve inline content at /ks.cfg on http:server[web] (noop)" in log
        assert f"would serve {tmp_path}/menu at /menu on tftp:server[boot] (noop)" in log
    finally:
        assert agent.stop() == 0, agent.log
    (line,) = [x for x in agent.log.splitlines() if x.startswith('{"version"')]
    doc = json.loads(line)
    rows = {r["name"]: r for r in doc["resources"]}
    assert rows["web"]["result"] == "would-change"
    assert rows["web"]["changes"] == [
        {"field": "state", "wanted": f"serving on 127.0.0.1 port {http}", "actual": "stopped",
         "applied": False},
    ]  # fmt: skip
    assert rows["ks"]["changes"] == [
        {"field": "served", "wanted": "inline content at /ks.cfg on http:server[web]",
         "actual": None, "applied": False},
    ]  # fmt: skip
    assert [c["field"] for c in rows["boot"]["changes"]] == ["state"]
    assert [c["field"] for c in rows["menu"]["changes"]] == ["served"]


ORPHAN = """\
graph: g
resources:
  http:server:file:
  - name: ks
    server: nowhere
    content: "text\\n"
"""


@pytest.mark.parametrize("noop", [False, True], ids=["run", "noop"])
def test_a_file_for_a_server_the_graph_lacks_fails_under_noop_too(tmp_path, noop):
    """--noop said "would-change" (exit 0) where the real run fails (exit 1)."""
    done = _run(tmp_path, ORPHAN, "--json", *(["--noop"] if noop else []))
    assert done.returncode == 1, done.stderr
    (row,) = json.loads(done.stdout)["resources"]
    assert row["result"] == "failed"
    assert row["errors"] == ["no http:server named 'nowhere' is running"]


def test_exec_under_noop_lists_the_command_it_would_run_in_json(tmp_path):
    """exec's row said `would-change` with `changes: []`: not what it would do."""
    never = tmp_path / "never"
    text = (
        "graph: g\nresources:\n  exec:\n  - name: guarded\n"
        f"    cmd: touch {never}\n    ifcmd: test ! -e {never}\n"
        "  - name: plain\n    cmd: 'true'\n"
    )
    done = _run(tmp_path, text, "--noop", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)["resources"]}
    assert rows["guarded"]["changes"] == [
        {"field": "cmd", "wanted": f"touch {never}", "actual": None, "applied": False}
    ]
    assert rows["plain"]["changes"] == [
        {"field": "cmd", "wanted": "true", "actual": None, "applied": False}
    ]
    assert not never.exists()


ROOTED = """\
graph: g
resources:
  file:
  - name: {tree}/
  http:server:
  - name: web
    address: "127.0.0.1:{port}"
    root: {tree}
"""


def test_noop_serves_a_root_a_file_before_it_would_make(tmp_path):
    """--noop failed the server ("root ... is no directory") where the real run
    makes the folder first (autoedge) and serves it."""
    tree = tmp_path / "tree"
    text = ROOTED.format(tree=tree, port=_free_port())
    done = _run(tmp_path, text, "--noop", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["kind"]: r for r in json.loads(done.stdout)["resources"]}
    assert rows["http:server"]["result"] == "would-change"
    assert f"would serve {tree} on 127.0.0.1 port" in done.stderr
    assert "(noop; after file[" in done.stderr  # its name, cut in the log when long
    assert "], which would change)" in done.stderr
    assert not tree.exists()


def test_noop_fails_a_root_nothing_would_make_as_the_run_does(tmp_path):
    text = ROOTED.format(tree=tmp_path / "tree", port=_free_port()).replace("  file:\n", "")
    text = text.replace(f"  - name: {tmp_path}/tree/\n", "")
    for extra in (["--noop"], []):
        done = _run(tmp_path, text, "--json", *extra)
        assert done.returncode == 1, done.stderr
        (row,) = json.loads(done.stdout)["resources"]
        assert row["errors"] == [f"root {tmp_path}/tree is no directory (missing?)"]


SOURCED = """\
graph: g
resources:
  file:
  - name: {source}
    content: "default linux\\n"
  tftp:server:
  - name: boot
    address: "127.0.0.1:{port}"
  tftp:server:file:
  - name: menu
    server: boot
    source: {source}
"""


def test_noop_serves_a_source_a_file_before_it_would_write(tmp_path):
    """--noop failed the served file ("source ... is not a file") where the real
    run writes the source first (autoedge) and serves it."""
    source = tmp_path / "menu"
    done = _run(tmp_path, SOURCED.format(source=source, port=_free_port()), "--noop", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["kind"]: r for r in json.loads(done.stdout)["resources"]}
    assert rows["tftp:server:file"]["result"] == "would-change"
    assert f"would serve {source} at /menu on tftp:server[boot] (noop; after " in done.stderr
    assert not source.exists()
