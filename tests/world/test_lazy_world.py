"""An agent of a remote run (--converged-stdout) connects to etcd only when its graph exchanges.

Such an agent reports its converged state on stdout for the initiator to
relay; these tests run the real agent process against a real etcd, and against
a port where nothing listens, to show when it connects and when it does not.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

from mgmt.world.api import converged_line

REPO = Path(__file__).resolve().parents[2]


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens once closed


def _run_agent(graph: Path, seeds: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--hostname", "h"]
    argv += ["--no-server", "--seeds", seeds, "--converged-stdout"]
    argv += ["--tmp-prefix", "--converged-timeout", "0"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def _keys(client, prefix: str) -> dict:
    encoded = base64.b64encode(prefix.encode()).decode()
    end = base64.b64encode(prefix[:-1].encode() + bytes([ord(prefix[-1]) + 1])).decode()
    found = client.call("kv/range", {"key": encoded, "range_end": end}).get("kvs", [])
    return {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in found
    }


def test_a_graph_that_exchanges_nothing_runs_without_ever_reaching_etcd(tmp_path):
    out = tmp_path / "out"
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"graph: g\nresources:\n  file:\n  - name: f\n    path: {out}\n    content: hi\n"
    )
    done = _run_agent(graph, _closed_port_url())
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "hi"
    assert converged_line(True) in done.stdout.splitlines()
    assert "etcd" not in done.stderr


def test_a_graph_that_exports_connects_and_leaves_converged_to_the_initiator(
    etcd, client, tmp_path
):
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources:\n  noop:\n  - name: '@@shared'\n")
    done = _run_agent(graph, etcd.client_url)
    assert done.returncode == 0, done.stderr
    exported = _keys(client, "/_mgmt/exported/h/")
    assert list(exported) == ["/_mgmt/exported/h/resources/noop/shared"]
    # Reported on stdout, not written: relaying it is the initiator's job.
    assert converged_line(True) in done.stdout.splitlines()
    assert _keys(client, "/_mgmt/converged/") == {}


def test_a_graph_that_collects_fails_clearly_when_etcd_is_unreachable(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources: {}\ncollect:\n- kind: file\n")
    done = _run_agent(graph, _closed_port_url())
    assert done.returncode != 0
    assert "cannot reach etcd" in done.stderr
    assert "Traceback" not in done.stderr
