"""A remote run's agent starts under each host Python, by all three of the launcher's ways.

start.sh runs ``python3 -S -c LAUNCHER SITE BUNDLE GRAPH STATE`` on the host with
the graph (base64) and the agent's settings (JSON) on stdin; this does the same,
in a throw-away host whose / is read-only but the test's temp dir:

- cold, cached bundle: the launcher unpacks the bundle first (its own zip
  reader, under this Python) and the agent runs from that copy, leaving its
  bytecode there: only the first start on a host compiles;
- warm: the agent imports from that unpacked copy (shiv's bootstrap skipped);
- no caching: the launcher runs the bundle, so shiv's own bootstrap unpacks it.

The interpreter choice itself (``python:``, discovery) belongs to the remote tests.
"""

import base64
import json
import shutil
import zipfile
from typing import Dict

import pytest
from private_host import PrivateHost
from pythons import HOST_VERSIONS, python, version_of

from mgmt.remote.protocol import CONVERGED_MARK
from mgmt.remote.protocol.programs import LAUNCHER
from support import require_tools

GRAPH = """\
graph: start
resources:
  file:
  - name: f
    path: OUT/f
    content: "started under VERSION\\n"
    state: exists
"""
# As the initiator sends them: etcd behind a tunnel (never reached: nothing is
# exchanged), converged reported on stdout, exit once converged.
SETTINGS = {
    "hostname": "start", "no_server": True, "seeds": ["http://127.0.0.1:9"],
    "converged_stdout": True, "converged_timeout": 0, "no_watch": False, "noop": False,
    "verbosity": 0,
}  # fmt: skip


def _start(host: PrivateHost, interpreter: str, argv: list, graph: str, env: Dict[str, str]):
    feed = base64.b64encode(graph.encode()).decode() + "\n" + json.dumps(SETTINGS) + "\n"
    return host.run(
        [interpreter, "-S", "-c", LAUNCHER, *argv], input=feed, env=env, check=False, timeout=120
    )


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_the_remote_agent_starts_cold_warm_and_uncached(bundle, version, tmp_path):
    require_tools("unshare", "nsenter")
    interpreter = python(version)
    assert version_of(interpreter) == version, interpreter
    with zipfile.ZipFile(bundle.path) as archive:
        build_id = json.loads(archive.read("environment.json"))["build_id"]
        members = {
            info.filename: archive.read(info)
            for info in archive.infolist()
            if info.filename.startswith("site-packages/") and not info.is_dir()
        }
    cache = tmp_path / "home" / ".cache" / "mgmt"  # start.sh's layout
    (cache / "bundles").mkdir(parents=True)
    (cache / "shiv").mkdir()
    cached = cache / "bundles" / "0123abcd.pyz"
    shutil.copy2(bundle.path, cached)
    site = cache / "shiv" / f"{cached.name}_{build_id}" / "site-packages"
    uncached_run = tmp_path / "run-nocache"
    (uncached_run / "shiv").mkdir(parents=True)
    uncached = uncached_run / "mgmt.pyz"
    shutil.copy2(bundle.path, uncached)
    starts = {
        "cold": ([str(site), str(cached)], cache / "shiv"),
        "warm": ([str(site), str(cached)], cache / "shiv"),
        "nocache": (["", str(uncached)], uncached_run / "shiv"),
    }
    tag = "cpython-" + version.replace(".", "")
    compiled: Dict = {}
    host = PrivateHost(tmp_path)
    try:
        for name, (argv, shiv_root) in starts.items():
            run = tmp_path / f"run-{name}"
            out = run / "out"
            out.mkdir(parents=True)
            env = {"HOME": str(tmp_path / "home"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                   "LANG": "C.UTF-8", "TMPDIR": str(host.tmpdir), "SHIV_ROOT": str(shiv_root),
                   "PYTHONUNBUFFERED": "1"}  # fmt: skip
            graph = GRAPH.replace("OUT", str(out)).replace("VERSION", version)
            done = _start(host, interpreter, [*argv, str(run / "graph"), str(run / "state")],
                          graph, env)  # fmt: skip
            assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
            assert f"{CONVERGED_MARK}true" in done.stdout, f"{name}: {done.stdout}"
            assert (out / "f").read_text() == f"started under {version}\n", name
            assert "Traceback" not in done.stderr, f"{name}: {done.stderr}"
            if name == "cold":  # run from the unpacked copy, which holds its bytecode now
                # Unpacked by the launcher under this Python: every member, byte for byte.
                unpacked = {
                    str(p.relative_to(site.parent)): p.read_bytes()
                    for p in site.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts
                }
                assert unpacked == members
                assert list(site.glob(f"mgmt/engine/__pycache__/*.{tag}.pyc"))
                compiled = {p: p.stat().st_mtime_ns for p in site.glob("**/*.pyc")}
    finally:
        host.close()
    # The warm start imported the unpacked copy, under this Python, and compiled
    # nothing of what the cold start had.
    assert {p: p.stat().st_mtime_ns for p in compiled} == compiled
    # Without caching, shiv's bootstrap unpacked the bundle into the run's own root.
    assert list((uncached_run / "shiv").glob("mgmt.pyz_*/site-packages/mgmt/cli.py"))


@pytest.mark.parametrize("version", HOST_VERSIONS)
def test_a_stop_while_the_launcher_starts_is_exit_130_without_a_traceback(version, tmp_path):
    """The initiator's ^C reaches an agent still starting (here: waiting for its graph)."""
    import signal
    import subprocess

    interpreter = python(version)
    argv = [str(tmp_path / "site"), str(tmp_path / "b.pyz"), str(tmp_path / "g"), "state"]
    launcher = subprocess.Popen(
        [interpreter, "-S", "-c", LAUNCHER, *argv],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert launcher.stdout.readline().startswith(b"@@mgmt-remote python ")
        launcher.send_signal(signal.SIGINT)
        _, stderr = launcher.communicate(timeout=30)
    finally:
        launcher.kill()
    assert (launcher.returncode, stderr) == (130, b"")
    assert list(tmp_path.iterdir()) == []
