"""A secondary runs the fan-out on a host: what it imports of the initiator-side
packages (orchestration, transport, which may otherwise use Python 3.9+) must
run on the hosts' Python 3.6, and must not need paramiko or Fabric."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mgmt

# Packages whose modules are allowed 3.9+ unless a secondary imports them.
INITIATOR_SIDE = (
    "mgmt.remote.hierarchy",
    "mgmt.remote.orchestration",
    "mgmt.remote.transport",
    "mgmt.remote.protocol",
)
IMPORTS = """
import json, sys
from mgmt.remote.hierarchy.secondary import run_secondary
from mgmt.remote.orchestration.etcd import SeedsEtcd
from mgmt.remote.transport.openssh import OpenSshRunner
print(json.dumps(sorted(m for m in sys.modules)))
"""


def _secondary_modules() -> list:
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_a_secondary_imports_neither_paramiko_nor_fabric():
    loaded = _secondary_modules()
    assert not [m for m in loaded if m.split(".")[0] in ("paramiko", "fabric", "invoke")]


def test_what_a_secondary_imports_of_the_initiator_side_runs_on_python_3_6():
    root = Path(mgmt.__file__).parent.parent
    files = []
    for name in _secondary_modules():
        if name.startswith(INITIATOR_SIDE):
            module = sys.modules.get(name) or __import__(name, fromlist=["_"])
            files.append(str(Path(module.__file__).relative_to(root)))
    assert "mgmt/remote/hierarchy/secondary.py" in files
    assert "mgmt/remote/transport/openssh.py" in files
    vermin = Path(sys.executable).with_name("vermin")
    done = subprocess.run(
        [str(vermin), "-t=3.6-", "--no-tips", "--violations", "--eval-annotations", *files],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
