"""While etcd hangs (it takes connections and answers nothing: the etcd process
SIGSTOPped here, as a stalled SSH tunnel does), the agent's own graph is still
applied at once, its exports reach etcd once it answers again, and a stop is
prompt and says the run ended out of step.

Publishing ran on the planner: a graph edit waited for the publish's HTTP
timeouts (etcd's read timeout, 10 s) before it was applied. So did reading the
exports that a graph collects, at the start and at an edit that changed the
kinds collected; read elsewhere, that read must still hold off "converged".
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from helpers import AgentProcess, read

from support import require_tools
from support.polling import wait_for, wait_until

KEY = "/_mgmt/exported/h/resources/file/shared"
# Far less than the client's read timeout (10 s), which the edit waited for.
AT_ONCE = 5.0


@pytest.fixture
def etcd(tmp_path):
    require_tools("etcd")
    from mgmt.world.client import EtcdClient
    from mgmt.world.server import EmbeddedEtcd

    with EmbeddedEtcd(tmp_path / "etcd" / "data") as server:
        client = EtcdClient([server.client_url])
        try:
            yield server, client
        finally:
            os.kill(server.pid, signal.SIGCONT)  # else its stop waits on a stopped process
            client.close()


def write_graph(graph, out, word: str, collect: bool = False, kind: str = "file") -> None:
    """A file, and an export that the graph collects (``collect``) into out/col/;
    ``kind="noop"``: it collects noops instead (none are exported)."""
    entry = f"{{kind: file, pattern: '{out}/col/'}}" if kind == "file" else "{kind: noop}"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: f, path: '{out}/f', content: \"{word}\\n\"}}\n"
        f"  - {{name: '@@shared', path: '{out}/col/shared', content: \"{word} shared\\n\"}}\n"
        + (f"collect:\n- {entry}\n" if collect else "")
    )


def exported(client) -> str:
    found = client.range(KEY)[1]
    return json.loads(found[0][1])["content"] if found else ""


def launch(etcd, tmp_path, collect: bool = False, kind: str = "file", args=()):
    """The agent on a graph that exports (and ``collect``s), started; and out/."""
    server, _ = etcd
    out = tmp_path / "out"
    out.mkdir()
    graph = tmp_path / "g.yaml"
    write_graph(graph, out, "one", collect, kind)
    args = ["--file", str(graph), "--hostname", "h", "--seeds", server.client_url,
            "--no-server", "--prefix", str(tmp_path / "state"), *args]  # fmt: skip
    return AgentProcess(args, tmp_path / "agent.log", confined=tmp_path), graph, out


def start(etcd, tmp_path, collect: bool = False, kind: str = "file"):
    """:func:`launch`, once its graph is applied and its export in etcd."""
    _, client = etcd
    agent, graph, out = launch(etcd, tmp_path, collect, kind)
    try:
        assert wait_for(lambda: read(out / "f") == "one\n"), agent.log
        assert wait_for(lambda: exported(client) == "one shared\n"), agent.log
        if collect and kind == "file":
            assert wait_for(lambda: read(out / "col" / "shared") == "one shared\n"), agent.log
    except BaseException:
        agent.stop()
        raise
    return agent, graph, out


# A graph that collects read every host's exports again at each edit, on the planner too.
@pytest.mark.parametrize("collect", [False, True], ids=["exports", "collects"])
def test_an_edit_is_applied_at_once_while_etcd_hangs_and_published_once_it_answers(
    etcd, tmp_path, collect
):
    server, client = etcd
    agent, graph, out = start(etcd, tmp_path, collect)
    try:
        os.kill(server.pid, signal.SIGSTOP)
        try:
            write_graph(graph, out, "two", collect)
            wait_until(lambda: read(out / "f") == "two\n", AT_ONCE, "the edit applied")
            # Out of step, said once its calls time out (the other hosts lack the edit).
            assert agent.wait_log("cannot publish exported resources", 30), agent.log
        finally:
            os.kill(server.pid, signal.SIGCONT)
        wait_until(lambda: exported(client) == "two shared\n", what="the edited export in etcd")
        assert agent.wait_log("in step with etcd again"), agent.log
        if collect:  # and collected back from etcd
            assert wait_for(lambda: read(out / "col" / "shared") == "two shared\n"), agent.log
    finally:
        code = agent.stop()
    assert code == 0, agent.log
    assert agent.log.count("cannot publish exported resources") == 1, agent.log


def test_a_stop_while_etcd_hangs_is_prompt_and_says_the_run_ended_out_of_step(etcd, tmp_path):
    server, client = etcd
    agent, graph, out = start(etcd, tmp_path)
    try:
        os.kill(server.pid, signal.SIGSTOP)
        write_graph(graph, out, "two")  # its export, and the converged state, hang
        wait_until(lambda: read(out / "f") == "two\n", AT_ONCE, "the edit applied")
        began = time.monotonic()
        code = agent.stop()
        took = time.monotonic() - began
    finally:
        os.kill(server.pid, signal.SIGCONT)
        if agent.proc.poll() is None:  # the test failed before its stop
            agent.stop()
    assert took < AT_ONCE, (took, agent.log)
    assert code == 1, agent.log
    assert "stopped, but cannot publish exported resources" in agent.log, agent.log
    assert exported(client) == "one shared\n"  # as the log says: the edit never reached it


# The first apply read every host's exports on the agent's main thread, before
# the graph's own resources were applied. As a remote run's agent: it connects
# to etcd once its graph needs it (an agent of its own checks etcd first).
def test_an_agent_started_while_etcd_hangs_applies_its_graph_at_once_and_collects_once_it_answers(
    etcd, tmp_path
):
    server, client = etcd
    os.kill(server.pid, signal.SIGSTOP)
    agent, _, out = launch(etcd, tmp_path, collect=True, args=["--converged-stdout"])
    try:
        try:
            wait_until(lambda: read(out / "f") == "one\n", AT_ONCE, "the graph applied")
        finally:
            os.kill(server.pid, signal.SIGCONT)
        wait_until(lambda: exported(client) == "one shared\n", what="the export in etcd")
        wait_until(lambda: read(out / "col" / "shared") == "one shared\n", what="it collected")
    finally:
        code = agent.stop()
    assert code == 0, agent.log


# An edit that collected another kind read the exports again on the planner.
def test_an_edit_collecting_another_kind_while_etcd_hangs_is_applied_at_once(etcd, tmp_path):
    server, _ = etcd
    agent, graph, out = start(etcd, tmp_path, collect=True, kind="noop")
    try:
        os.kill(server.pid, signal.SIGSTOP)
        try:
            write_graph(graph, out, "two", collect=True)  # now it collects files
            wait_until(lambda: read(out / "f") == "two\n", AT_ONCE, "the edit applied")
            assert read(out / "col" / "shared") is None  # not collected before: unknown yet
        finally:
            os.kill(server.pid, signal.SIGCONT)
        wait_until(lambda: read(out / "col" / "shared") == "two shared\n", what="it collected")
    finally:
        code = agent.stop()
    assert code == 0, agent.log


def test_a_read_that_hangs_holds_off_converged_until_what_it_collects_is_applied(etcd, tmp_path):
    """As a remote run's agent (--converged-stdout: its initiator stops the run once
    every host said converged): while the first read of the exports hangs, the
    agent applied its own graph but has not collected yet, so is not converged."""
    from mgmt.remote.protocol import CONVERGED_MARK

    server, client = etcd
    shared = tmp_path / "out" / "col" / "shared"
    # Its export in etcd already (as a run before left it): the read finds it
    # whether or not the agent's own publish, which hangs as well, comes first.
    client.put(KEY, json.dumps({"path": str(shared), "content": "one shared\n"}))
    os.kill(server.pid, signal.SIGSTOP)
    args = ["--converged-stdout", "--converged-timeout", "1"]
    agent, _, out = launch(etcd, tmp_path, collect=True, args=args)
    said = CONVERGED_MARK + "true"
    collected_when_said = []
    try:
        try:
            wait_until(lambda: read(out / "f") == "one\n", AT_ONCE, "the graph applied")
            # Three times its timeout: neither said converged nor ended.
            assert not wait_for(lambda: said in agent.log or agent.proc.poll() is not None, 3)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert wait_for(lambda: said in agent.log and not collected_when_said.append(read(shared)))
        code = agent.wait()
    finally:
        agent.stop()
    assert collected_when_said == ["one shared\n"], agent.log
    assert code == 0, agent.log
    assert "converged: idle for 1 s" in agent.log, agent.log
