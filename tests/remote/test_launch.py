"""The one-command start: the launcher on its own, and a graph too long for a line."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import shlex
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from remote_helpers import assert_clean, mgmt_run, need_hosts, summary

from mgmt.cmdline import build_parser, settings_from
from mgmt.remote import protocol
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.agentstart import PRUNED
from mgmt.remote.orchestration.bundlefile import shiv_build_id
from mgmt.remote.orchestration.context import RunContext
from mgmt.remote.orchestration.session import Session
from mgmt.remote.protocol import INLINE_GRAPH_MAX, RemotePaths, command_line
from mgmt.remote.protocol.programs import (
    LAUNCHER,
    PRUNE_DAYS,
    UNPACKED_IMPORT,
    read,
    with_unpacked,
)
from mgmt.settings import settings_from_json
from support import require_tools
from support.hosts import ssh_hosts

PYTHON = "/usr/bin/python3"
# An agent on its own that applies its graph and exits once idle.
SETTINGS = {"hostname": "t", "no_server": True, "converged_timeout": 0}
EMPTY_GRAPH = "graph: g\nresources: {}\n"


def _launch(
    site: str, bundle: Path, graph: Path, graph_line: bytes, *, home: Path, raw=None, **settings
):
    """START's last step: the graph line, then the settings line (or ``raw``), on stdin."""
    line = raw if raw is not None else json.dumps({**SETTINGS, **settings}).encode()
    return subprocess.run(
        [PYTHON, "-S", "-c", LAUNCHER, site, str(bundle), str(graph), str(home / "state")],
        input=graph_line + line + b"\n",
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "SHIV_ROOT": str(home / "shiv")},
        cwd=graph.parent,
        preexec_fn=lambda: os.umask(0o022),  # a login's: START keeps it for the agent
        timeout=60,
        check=False,
    )


@pytest.fixture()
def unpacked(bundle, tmp_path) -> Path:
    """The bundle's site-packages, unpacked where shiv would put them."""
    site = tmp_path / "shiv" / f"{bundle.name}_{shiv_build_id(bundle)}" / "site-packages"
    with zipfile.ZipFile(bundle) as archive:
        members = [m for m in archive.namelist() if m.startswith("site-packages/")]
        archive.extractall(site.parent, members)
    return site


def test_launcher_writes_the_graph_privately_and_runs_from_the_unpacked_bundle(
    bundle, unpacked, tmp_path
):
    require_tools(PYTHON)
    graph = tmp_path / "g.yaml"
    text = EMPTY_GRAPH.encode()
    done = _launch(
        str(unpacked),
        tmp_path / "missing.pyz",  # never read: the unpacked copy is used
        graph,
        base64.b64encode(text) + b"\n",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "main: This is: mgmt" in done.stderr.decode()
    assert graph.read_bytes() == text
    assert graph.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_graph_the_host_cannot_write_ends_the_launcher_with_why(unpacked, tmp_path):
    """A full disk was a traceback, then "the agent ended with failed resources"."""
    require_tools(PYTHON)
    graph = tmp_path / "g.yaml"
    (tmp_path / ".g.yaml.new").mkdir()  # where it is written first: the write fails
    line = base64.b64encode(EMPTY_GRAPH.encode()) + b"\n"
    done = _launch(str(unpacked), tmp_path / "b.pyz", graph, line, home=tmp_path)
    assert done.returncode == protocol.EXIT_NO_GRAPH
    [said] = [x for x in done.stderr.decode().splitlines() if x]
    assert said == f"mgmt-remote: cannot write the graph to {graph}: File exists"
    assert not graph.exists()


def test_the_launchers_exit_statuses_are_the_protocols():
    """launcher.py is shipped alone (unpacked.py's text in it, no imports): its copies
    must not drift."""
    namespace: dict = {}
    exec(compile(LAUNCHER, "launcher.py", "exec"), namespace)
    names = [n for n in namespace if n.startswith("EXIT_") or n.endswith("_MARK")]
    assert len(names) == 6
    assert {n: namespace[n] for n in names} == {n: getattr(protocol, n) for n in names}


def test_the_launcher_is_sent_with_unpacked_py_in_it_and_its_own_line_numbers():
    """Nothing can be imported from the bundle before it is on the path: the program
    sent holds unpacked.py's text, once, before main runs, and its import is a
    comment; each line of launcher.py keeps its number (a host's traceback names it)."""
    sent, own = LAUNCHER.splitlines(), read("launcher.py").splitlines()
    assert not [line for line in sent if line.startswith(UNPACKED_IMPORT)]
    assert LAUNCHER.count(read("unpacked.py")) == 1
    guard = own.index('if __name__ == "__main__":')
    changed = [i for i in range(guard) if sent[i] != own[i]]
    assert [own[i] for i in changed] == [line for line in own if line.startswith(UNPACKED_IMPORT)]
    assert sent[-(len(own) - guard) :] == own[guard:]
    with pytest.raises(ValueError):
        with_unpacked("import os\n")


def test_launcher_runs_the_bundle_when_nothing_is_unpacked(bundle, tmp_path):
    require_tools(PYTHON)
    graph = tmp_path / "g.yaml"
    env = tmp_path / "env.txt"
    text = f"graph: g\nresources:\n  exec:\n  - {{name: e, cmd: 'env > {env}', shell: /bin/sh}}\n"
    graph.write_text(text)
    done = _launch(str(tmp_path / "shiv" / "none"), bundle, graph, b"\n", home=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert "main: This is: mgmt" in done.stderr.decode()
    assert graph.read_text() == text  # an empty line: the graph was copied apart
    # What the launcher told shiv is not passed on to what the agent runs.
    assert "SHIV_" not in env.read_text() and "HOME=" in env.read_text()
    assert list((tmp_path / "shiv").glob("*/site-packages/mgmt/cli.py"))  # shiv unpacked it


def _cached(folder: Path, name: str, age_days: float) -> Path:
    path = folder / name
    path.write_bytes(b"an older bundle")
    then = time.time() - age_days * 86400
    os.utime(path, (then, then))
    return path


def test_a_new_bundle_prunes_old_ones_unused_for_a_month_but_never_one_in_use(bundle, tmp_path):
    require_tools(PYTHON)
    cache = tmp_path / "cache" / "bundles"
    shiv = tmp_path / "shiv"
    cache.mkdir(parents=True)
    shiv.mkdir()
    current = cache / "current.pyz"
    shutil.copy(bundle, current)
    stale = _cached(cache, "stale.pyz", PRUNE_DAYS + 1)
    (shiv / "stale.pyz_0123" / "site-packages").mkdir(parents=True)
    (shiv / ".stale.pyz_0123_lock").write_text("")
    recent = _cached(cache, "recent.pyz", PRUNE_DAYS - 1)
    running = _cached(cache, "running.pyz", PRUNE_DAYS + 1)
    graph = tmp_path / "g.yaml"
    graph.write_text(EMPTY_GRAPH)
    with open(running, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # as the agent running it holds it
        done = _launch(str(shiv / "none"), current, graph, b"\n", home=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert sorted(p.name for p in cache.iterdir()) == ["current.pyz", "recent.pyz", "running.pyz"]
    assert not stale.exists()
    assert not list(shiv.glob("*stale*")) and not list(shiv.glob(".stale*"))
    assert list(shiv.glob("current.pyz_*/site-packages/mgmt"))  # the new one was unpacked
    assert recent.exists() and running.exists()


def test_each_start_marks_its_bundle_as_used(bundle, unpacked, tmp_path):
    require_tools(PYTHON)
    cache = tmp_path / "cache" / "bundles"
    cache.mkdir(parents=True)
    used = _cached(cache, "used.pyz", PRUNE_DAYS + 1)
    graph = tmp_path / "g.yaml"
    graph.write_text(EMPTY_GRAPH)
    done = _launch(str(unpacked), used, graph, b"\n", home=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert time.time() - used.stat().st_mtime < 60


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"colour": "blue"}, "unknown setting 'colour'"),
        ({"remotes": ["x.yaml"]}, "unknown setting 'remotes'"),  # an agent is no initiator
        ({"credentials": 1}, "credentials: expected list, got 1"),
        ({"credentials": ["user"]}, "credentials: expected [user, password]"),
        ({"seeds": "http://x"}, "seeds: expected list, got 'http://x'"),
        ({"verbosity": "loud"}, "verbosity: expected int, got 'loud'"),
        ({"noop": 1}, "noop: expected bool, got 1"),
        ({"converged_timeout": -5}, "converged_timeout: expected -1 or more, got -5"),
        ({"raw": b"\xff\xfe"}, "Expecting value"),  # not UTF-8: not JSON either
        ({"raw": b"[1, 2]"}, "not a JSON object"),
        ({"raw": b"[" * 100_000}, "longer than 65536 bytes"),
        ({"raw": b'{"seeds": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"}, "nested too deeply"),
        ({"raw": b'{"hostname": "' + b"[" * 100_000 + b'"}'}, "longer than"),
        ({"raw": b'{"hostname": "caf\xe9"}'}, "hostname: not valid UTF-8"),
        ({"raw": b'{"hostname": "\\udcff"}'}, "hostname: not valid UTF-8"),
        ({"hostname": "a/b"}, "hostname: not a host name"),
        ({"hostname": "a\nb"}, "hostname: control character"),
        ({"seeds": ["http://x\u0000"]}, "seeds: control character"),
    ],
)
def test_bad_settings_are_refused_with_exit_code_2(unpacked, tmp_path, settings, message):
    require_tools(PYTHON)
    graph = tmp_path / "g.yaml"
    graph.write_text(EMPTY_GRAPH)
    raw = settings.pop("raw", None)
    done = _launch(
        str(unpacked), tmp_path / "x.pyz", graph, b"\n", home=tmp_path, raw=raw, **settings
    )
    assert done.returncode == 2, done.stderr.decode()
    error = done.stderr.decode()
    assert error.startswith("mgmt: error: agent settings on stdin: ") and message in error
    assert "Traceback" not in error and len(error.splitlines()) == 1
    assert not (tmp_path / "state").exists()  # refused before anything was made


def test_a_graph_too_long_for_a_line_is_copied_and_applied(bundle, tmp_path):
    need_hosts()
    require_tools("sshd", "ssh-keygen")
    with ssh_hosts(["a"]) as pool:
        host = pool["a"]
        filler = "# " + "x" * 98 + "\n"
        graph = tmp_path / "big.yaml"
        graph.write_text(
            filler * (INLINE_GRAPH_MAX // len(filler) + 10)
            + "graph: big\nresources:\n  file:\n  - name: big\n    path: /tmp/big\n"
            + "    content: made from a long graph\nremote: a\n"
        )
        assert graph.stat().st_size > INLINE_GRAPH_MAX
        done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert host.read_file("/tmp/big") == "made from a long graph"
        assert summary(done.stdout)["a"][0] == "converged"
        assert_clean(host)


@pytest.mark.parametrize(
    "options",
    [
        {"noop": False, "no_watch": False, "verbosity": 0},
        {"noop": True, "no_watch": True, "verbosity": 2},
        {"noop": False, "no_watch": False, "verbosity": -1},
    ],
)
def test_the_logged_command_line_runs_the_agent_with_the_same_settings(
    options, monkeypatch, tmp_path
):
    """What the log shows as "Running: ..." gives, typed on the host, what the JSON gives."""
    spec = HostSpec(target="h", graph=tmp_path / "h.yaml")
    ctx = RunContext(
        bundle=tmp_path / "b.pyz",
        bundle_sha256="0" * 64,
        endpoint=None,
        connect=None,
        agent_options=options,
    )
    settings = Session(spec, ctx, report=lambda host, state: None).agent_settings(4242)
    paths = RemotePaths("/tmp/mgmt-x", "/root/.cache/mgmt/bundles/s.pyz", "/s", True)
    argv = shlex.split(command_line(paths, spec.graph.name, settings))
    assert argv[0] == paths.bundle
    monkeypatch.setattr("sys.stdin", io.StringIO("user:secret\n"))  # --etcd-auth-stdin
    typed = settings_from(build_parser().parse_args(argv[1:]))
    line = json.dumps({**settings, "credentials": ["user", "secret"]})
    in_run_dir = {"file": paths.graph(spec.graph.name), "prefix": paths.state_dir}
    given = settings_from_json(line, **in_run_dir)
    assert typed == given
    assert given.seeds == ("http://127.0.0.1:4242",)


@pytest.mark.parametrize(
    ("status", "stopped", "judged"),
    [
        (0, False, ("exited", "")),
        (130, True, ("stopped", "")),  # SIGINT, as asked: a clean stop
        (1, False, ("failed", "the agent ended with failed resources (status 1; see its output)")),
        (95, False, ("failed", PRUNED)),  # the launcher's: its bundle went as it started
        (77, False, ("failed", "agent exited with status 77")),
    ],
)
def test_how_a_hosts_exit_status_is_told(status, stopped, judged, tmp_path):
    spec = HostSpec(target="h", graph=tmp_path / "h.yaml")
    ctx = RunContext(bundle=tmp_path / "b.pyz", bundle_sha256="0" * 64, endpoint=None, connect=None)
    session = Session(spec, ctx, report=lambda host, state: None)
    if stopped:
        session.stop()
    assert session._judge(status) == judged
