"""A remote run keeps its own state (its etcd's data) in a private temp dir unless
--prefix says where, as fab deploy does: in /var/lib/mgmt, the default of a --file
run, a normal user's remote run failed (exit 1), and two runs at once, each to its
own hosts, met in one etcd data dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import _pythonpath

from support import require_root, require_tools

MGMT_RUN = [sys.executable, "-m", "mgmt", "run"]
EXPORTS = """graph: g
remote: ssh://root@{address}:22
resources:
  file:
  - {{name: own, path: /tmp/own-{name}, content: "{name}\\n"}}
  - {{name: "@@{name}", path: /tmp/from-{name}, content: "{name}\\n"}}
collect:
- kind: file
  pattern: /tmp/
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from mgmt_pkg.bundle import build_bundle

    return build_bundle(tmp_path_factory.mktemp("bundle") / "mgmt.pyz").path


def test_two_remote_runs_at_once_without_a_prefix_each_have_their_etcd(tmp_path, bundle):
    require_root()
    require_tools("sshd", "ssh", "ip", "unshare", "nsenter", "etcd")
    from support.hosts import ssh_hosts

    with ssh_hosts(["a", "b"]) as pool:
        runs = []
        for host in pool.hosts:
            graph = tmp_path / f"{host.name}.yaml"
            graph.write_text(EXPORTS.format(address=host.address, name=host.name))
            argv = [*MGMT_RUN, "--remote", str(graph), "--converged-timeout", "2"]
            env = pool.env(MGMT_BUNDLE=str(bundle), PYTHONPATH=_pythonpath())
            out = subprocess.PIPE
            runs.append(subprocess.Popen(argv, env=env, text=True, stdout=out, stderr=out))
        outputs = [" ".join(run.communicate(timeout=120)) for run in runs]
        for run, output in zip(runs, outputs):
            assert run.returncode == 0, output
            assert "another mgmt agent runs an etcd here" not in output
        for host in pool.hosts:  # each exported to its own run's etcd and collected it
            assert host.read_file(f"/tmp/from-{host.name}") == f"{host.name}\n"
