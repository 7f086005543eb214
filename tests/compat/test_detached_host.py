"""The hosts' side of a detached cluster runs under each host Python.

The remote tests run it on the machine's python3; here detached.py and
supervise.py (mgmt.remote.protocol) run under 3.6, 3.9, 3.12 and 3.13, in a
throw-away host whose / is read-only but the test's temp dir, as the initiator
runs them over SSH (``python3 -S -c PROGRAM COMMAND``, a JSON request on stdin):
prepare, probe, a one-member etcd, auth (the bundle's client code, from its zip),
the agent (launcher and agent under the same Python), a graph edit, status, stop.
"""

import contextlib
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from private_host import PrivateHost
from pythons import HOST_VERSIONS, python

from mgmt.remote.orchestration.cluster_tls import member_certificates
from mgmt.remote.orchestration.detach import DETACHED, SUPERVISOR
from mgmt.remote.orchestration.hosts import detached_args
from mgmt.remote.protocol.programs import LAUNCHER
from support import require_tools
from support.polling import wait_until

URL = "http://127.0.0.1:2379"
GRAPH = """\
graph: detached
resources:
  file:
  - name: "@@OUT/f"
    path: OUT/f
    content: "CONTENT\\n"
    state: exists
collect:
- kind: file
  pattern: OUT/
"""


def _leftovers(marker: str) -> list:
    """Processes whose command line names ``marker`` (the cluster's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_the_hosts_side_of_a_detached_cluster_runs_under(bundle, version, tmp_path):
    require_tools("unshare", "nsenter", "etcd")
    interpreter = python(version)
    home = tmp_path / "home"
    sha = hashlib.sha256(bundle.path.read_bytes()).hexdigest()
    (home / ".cache/mgmt/bundles").mkdir(parents=True)
    shutil.copy2(bundle.path, home / f".cache/mgmt/bundles/{sha}.pyz")
    out = tmp_path / "out"
    out.mkdir()
    state = home / ".local/state/mgmt/detached"
    host = PrivateHost(tmp_path)
    env = dict(host.env(), HOME=str(home))

    def call(command: str, request: dict) -> dict:
        argv = [interpreter, "-S", "-c", DETACHED, *detached_args(command)]
        done = host.run(argv, check=False, env=env, input=json.dumps(request) + "\n")
        answer = json.loads(done.stdout.splitlines()[-1]) if done.stdout.strip() else {}
        assert done.returncode == 0 and "error" not in answer, (command, done)
        return answer

    def graph(content: str) -> str:
        return GRAPH.replace("OUT", str(out)).replace("CONTENT", content)

    try:
        prepared = call("prepare", {"sha256": sha})
        assert prepared["python"] == version and prepared["bundle_ok"], prepared
        call("probe", {"address": "127.0.0.1", "ports": [2379, 2380], "others": []})
        call("etcd", {
            "binary": prepared["etcd"], "name": "m1", "address": "127.0.0.1",
            "supervisor": SUPERVISOR,
            "client_port": 2379, "peer_port": 2380, "token": "t",
            "peers": {"m1": "https://127.0.0.1:2380"},
            "tls": member_certificates("t", {"m1": "127.0.0.1"})["m1"]._asdict(),
        })  # fmt: skip
        run = ["mgmt-run-test", "secret"]
        call("auth", {"client_url": URL, "peer_urls": [], "run": run,
                      "bundle": prepared["bundle"]})  # fmt: skip
        settings = {"hostname": "h", "no_server": True, "seeds": [URL], "credentials": run,
                    "noop": False, "no_watch": False, "verbosity": 0}  # fmt: skip
        call("agent", {
            "bundle": prepared["bundle"], "build_id": "", "graph_name": "g.yaml",
            "graph": graph(f"exported under {version}"), "launcher": LAUNCHER,
            "supervisor": SUPERVISOR,
            "settings": settings,
            "cluster": {"member_url": URL, "bundle": prepared["bundle"], "graph": "g.yaml",
                        "bundle_sha256": sha},
        })  # fmt: skip
        # Exported and collected back through the cluster's etcd, by an agent on this Python.
        wait_until(lambda: (out / "f").read_text() == f"exported under {version}\n", 60, "f")
        agent = int((state / "agent.pid").read_text())
        assert interpreter.encode() in Path(f"/proc/{agent}/cmdline").read_bytes()

        def converged() -> bool:
            return call("status", {}).get("converged") is True

        wait_until(converged, 30, "converged in the cluster's etcd")
        status = call("status", {})
        assert status["agent"]["running"] and status["etcd"]["health"], status

        call("graph", {"graph": graph("edited")})
        wait_until(lambda: (out / "f").read_text() == "edited\n", 30, "the edit applied")

        # The cluster's hosts and members come with it (none here: this record names
        # none), and whether this host holds the root account (auth made it here).
        alone = {"cluster_hosts": [], "cluster_host": None, "cluster_members": [], "root": True}
        assert call("stop", {"what": ["agent"]}) == {"stopped": ["agent"], **alone}
        stopped = call("stop", {"what": ["etcd"], "clean": True, "caching": True})
        assert stopped == {"stopped": ["etcd"], **alone}
        assert not (home / ".local/state/mgmt").exists()
        assert (home / f".cache/mgmt/bundles/{sha}.pyz").exists()
        assert _leftovers(str(state)) == []  # no supervisor, agent or etcd
    finally:
        for pid in _leftovers(str(state)):  # whatever a failure left running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        host.close()
