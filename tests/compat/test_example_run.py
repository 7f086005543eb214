"""The write-up's example, run by the real bundle under each host Python.

Two agents (hosts a and b, examples/remote2a.yaml and remote2b.yaml as they are)
and an etcd share a throw-away host: a mount namespace where / is read-only but
the test's temp dir and a private /tmp, with a network of its own (so etcd's
default ports are free). Each agent runs ``python3.X -I mgmt run --file ...`` from
the zipapp, as a host's bare Python would; both must end with the README's four
files in /tmp and exit 0 once converged.
"""

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from private_host import PrivateHost
from pythons import HOST_VERSIONS, python, version_of

from support import require_tools, which
from support.polling import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ETCD_URL = "http://127.0.0.1:2379"  # etcd's default: the host has a network of its own
WANTED = {
    "/tmp/file1a": "i am file1a\n",
    "/tmp/file1b": "i am file1b\n",
    "/tmp/file2a": "i am file2a, exported from host a\n",
    "/tmp/file2b": "i am file2b, exported from host b\n",
}


def _inside(host: PrivateHost, command: List[str]) -> List[str]:
    # -F: no fork, so the pid we hold is the program's own (and a kill reaches it).
    return ["nsenter", "-a", "-F", "-t", str(host.pid), "--", *command]


def _bare_env(host: PrivateHost, home: Path) -> Dict[str, str]:
    """What a bare host's login has: no venv, nothing of ours; TMPDIR in the test's dir."""
    home.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            "TMPDIR": str(host.tmpdir)}  # fmt: skip


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_the_example_runs_from_the_bundle(bundle, version, tmp_path):
    require_tools("etcd", "curl", "unshare", "nsenter")
    interpreter = python(version)
    assert version_of(interpreter) == version, interpreter
    copy = tmp_path / "mgmt"  # the host sees no other temp dir: copied in, as to a host
    shutil.copy2(bundle.path, copy)
    host = PrivateHost(tmp_path)
    processes: List[subprocess.Popen] = []
    try:
        with open(tmp_path / "etcd.log", "wb") as log:
            processes.append(subprocess.Popen(
                _inside(host, [which("etcd"), "--data-dir", str(tmp_path / "etcd")]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=_bare_env(host, tmp_path / "home-etcd"),
            ))  # fmt: skip
        wait_until(
            lambda: host.run(["curl", "-sf", f"{ETCD_URL}/health"], check=False).returncode == 0,
            60, what=f"etcd in the private host ({tmp_path / 'etcd.log'})",
        )  # fmt: skip
        agents = {}
        for name in "ab":
            command = [interpreter, "-I", str(copy), "run",
                       "--file", str(EXAMPLES / f"remote2{name}.yaml"), "--hostname", name,
                       "--seeds", ETCD_URL, "--no-server", "--tmp-prefix",
                       "--converged-timeout", "3"]  # fmt: skip
            with open(tmp_path / f"agent-{name}.log", "wb") as log:
                agents[name] = subprocess.Popen(
                    _inside(host, command), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=_bare_env(host, tmp_path / f"home-{name}"),
                )  # fmt: skip
            processes.append(agents[name])
        codes = {name: agent.wait(120) for name, agent in agents.items()}
        logs = {name: (tmp_path / f"agent-{name}.log").read_text() for name in agents}
        assert codes == {"a": 0, "b": 0}, logs
        found = {path: host.run(["cat", path], check=False).stdout for path in WANTED}
        assert found == WANTED, logs
        # Each agent ran under this Python: it wrote its bytecode for it, in the
        # copy shiv unpacked into that agent's home.
        tag = "cpython-" + version.replace(".", "")
        for name in agents:
            home = tmp_path / f"home-{name}" / ".shiv"
            assert list(home.glob(f"mgmt_*/site-packages/mgmt/engine/__pycache__/*.{tag}.pyc"))
    finally:
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait()
        host.close()
