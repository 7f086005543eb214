"""The remote agent's start imports only what it is allowed to: its start-up budget is guarded.

A remote agent starts on every host of every run, and its start is mostly
imports (bench/agent_start.py measures it). A module that joins its start path
(an ``import shutil`` at the top of a module the engine uses, a library pulled
in by the world) costs every host, every run, and no test of behaviour would
notice. This test runs the agent from the extracted bundle exactly as a warm
start on a host does (``mgmt.cli.run_remote_agent``, the entry the launcher and
shiv's bootstrap both call, its settings as a JSON line on stdin), then lists
``sys.modules``: every module beyond what a bare ``python3 -S`` has loaded must
be in the allowed lists below.

If this fails because you added a module on purpose: measure its cost with
``python3 -X importtime`` and bench/agent_start.py, then add it here in the
same commit, with the reason.
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from mgmt_pkg.bundle import build_bundle

SYSTEM_PYTHON = "/usr/bin/python3"

# Standard library packages the start path may import (a package allows its
# submodules and C accelerators named after it: "json" allows json.decoder, _json).
# Not pathlib, which brings urllib.parse and ipaddress (3.4 ms): paths are strings
# on the agent's side (see mgmt.settings).
ALLOWED_STDLIB = {
    "os", "stat", "posixpath", "genericpath", "_collections_abc", "__future__",
    "collections", "contextlib", "copyreg", "ctypes", "enum", "errno",
    "functools", "heapq", "importlib", "itertools", "json",
    "keyword", "operator", "re", "reprlib", "select",
    "signal", "sre_compile", "sre_constants", "sre_parse", "struct", "threading",
    "types", "typing", "warnings", "weakref", "gc", "_sre",
    "_locale", "_weakrefset", "_typing", "_collections", "_functools", "_operator",
    "pwd",
}  # fmt: skip
# The agent's own modules on the start path of a graph of files (by name: a new
# one is a decision, not an accident). Of mgmt.remote only its protocol (the
# lines the agent speaks), never the transport or orchestration; not the
# etcd client (http.client costs ~25 ms; a graph that exchanges nothing never
# connects, see mgmt.world.lazy), argparse (remote agents get JSON settings).
ALLOWED_MGMT = {
    "mgmt", "mgmt.cli", "mgmt.errors", "mgmt.log", "mgmt.settings", "mgmt.statedir",
    "mgmt.wakeup", "mgmt.engine", "mgmt.engine.agent", "mgmt.engine.converger",
    "mgmt.engine.exchange", "mgmt.engine.inotify", "mgmt.engine.scheduler",
    "mgmt.engine.watcher", "mgmt.graph", "mgmt.graph.deps", "mgmt.graph.diff",
    "mgmt.graph.located", "mgmt.graph.model", "mgmt.graph.parse", "mgmt.resources",
    "mgmt.resources.atomic", "mgmt.resources.base", "mgmt.resources.file", "mgmt.world",
    "mgmt.world.api", "mgmt.world.lazy", "mgmt.engine.autogroup", "mgmt.engine.outcome",
    "mgmt.graph.limits", "mgmt.graph.values", "mgmt.remote", "mgmt.remote.protocol",
    "mgmt.resources.filediff", "mgmt.resources.filepath", "mgmt.resources.filesafe",
    "mgmt.resources.filetree", "mgmt.resources.fields", "mgmt.graph.clash",
    "mgmt.engine.graphfile", "mgmt.engine.vertex", "mgmt.engine.watchstate", "mgmt.engine.retry",
    "mgmt.engine.linkwatch", "mgmt.engine.watchfolders", "mgmt.resources.fileclaims",
    # Parts of the file kind split out of file.py (owner and mode; the one guard on
    # removing a tree; mgmt's fragments), no new imports of their own.
    "mgmt.resources.fileattrs", "mgmt.resources.fileremove", "mgmt.resources.filefragments",
    # The agent's side of the world split out of agent.py, and the reader of the
    # exports split out of exchange.py (no new imports of their own).
    "mgmt.engine.worldsync", "mgmt.engine.exportread",
}  # fmt: skip
# Only a graph that reaches the agent as YAML (one without a JSON form) loads
# PyYAML, and what PyYAML imports in turn.
ALLOWED_FOR_YAML = {
    "yaml", "mgmt.graph.yamlload", "datetime", "base64", "binascii", "math",
    "mgmt.graph.scalars",  # a plain 0644 in a text field is the text written, as mgmt reads it
}  # fmt: skip

GRAPH = {
    "graph": "start",
    "resources": {"file": [{"name": "f", "path": "OUT/f", "content": "x\n", "state": "exists"}]},
}
# As the initiator sends a graph that has no JSON form (a date, a key like 1:).
YAML_GRAPH = """\
graph: start
resources:
  file:
  - name: f
    path: OUT/f
    content: "x\\n"
    state: exists
"""
# What the initiator sends (see mgmt.remote): etcd on the tunnel, converged on stdout.
SETTINGS = {
    "hostname": "start",
    "no_server": True,
    "seeds": ["http://127.0.0.1:9"],
    "converged_stdout": True,
    "converged_timeout": 0,
    "no_watch": False,
    "noop": False,
    "verbosity": 0,
}
DRIVER = """\
import builtins, sys
site, graph, state = sys.argv[1:4]
sys.argv = ["mgmt", graph, state]
del sys.path[0]
sys.path.insert(0, site)
evals, _compile = [], builtins.compile
def compile(source, filename, mode, *args, **kwargs):
    if mode == "eval":
        evals.append(source)
    return _compile(source, filename, mode, *args, **kwargs)
builtins.compile = compile
from mgmt.cli import run_remote_agent
code = run_remote_agent()
sys.stderr.write("@@modules %r\\n" % sorted(sys.modules))
sys.stderr.write("@@evals %r\\n" % evals)
sys.exit(code)
"""
BARE = "import sys; sys.stderr.write('@@modules %r\\n' % sorted(sys.modules))"


def _clean_env(home: Path) -> dict:
    return {"HOME": str(home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The bundle, extracted by shiv's bootstrap as on a host's first run."""
    work = tmp_path_factory.mktemp("agent-start")
    info = build_bundle(work / "mgmt")
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", str(info.path), "--version"],
        capture_output=True, text=True, env=_clean_env(work), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [found] = (work / ".shiv").glob("mgmt_*/site-packages")
    return found


def _reported(stderr: str, mark: str):
    [line] = [line for line in stderr.splitlines() if line.startswith(mark)]
    return ast.literal_eval(line[len(mark) :])


def _modules(stderr: str) -> set:
    return set(_reported(stderr, "@@modules "))


def _allowed(name: str, allowed: set) -> bool:
    if name.startswith("mgmt"):
        return name in allowed
    top = name.split(".")[0]
    return top in allowed or top.lstrip("_") in allowed


@pytest.mark.parametrize(
    ("case", "graph_text", "allowed"),
    [
        ("json graph", json.dumps(GRAPH), ALLOWED_STDLIB | ALLOWED_MGMT),
        ("yaml graph", YAML_GRAPH, ALLOWED_STDLIB | ALLOWED_MGMT | ALLOWED_FOR_YAML),
    ],
)
def test_the_remote_agent_starts_with_allowed_modules_only(site, tmp_path, case, graph_text,
                                                           allowed):  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    graph = tmp_path / "graph"
    graph.write_text(graph_text.replace("OUT", str(out)))
    env = _clean_env(tmp_path)
    bare = subprocess.run(
        [SYSTEM_PYTHON, "-S", "-c", BARE], capture_output=True, text=True, env=env, check=True
    )
    done = subprocess.run(
        [SYSTEM_PYTHON, "-S", "-c", DRIVER, str(site), str(graph), str(tmp_path / "state")],
        input=json.dumps(SETTINGS) + "\n",
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # It really started and applied the graph: the start path was walked.
    assert (out / "f").read_text() == "x\n"
    assert "@@mgmt-converged true" in done.stdout
    loaded = _modules(done.stderr) - _modules(bare.stderr)
    outside = sorted(name for name in loaded if not _allowed(name, allowed))
    assert not outside, f"{case}: the agent's start imports modules not allowed: {outside}"
    # Each allowed mgmt module is really on the path (the list stays exact, not a wish list).
    mgmt = {name for name in loaded if name.startswith("mgmt")}
    assert mgmt == {name for name in allowed if name.startswith("mgmt")}, case
    # Nothing is compiled from a string: a quoted name inside a typing subscript
    # (List["X"]) makes a ForwardRef, which compiles it at import, and the first
    # such compile of a process costs about 1.3 ms. Quote the whole annotation.
    assert _reported(done.stderr, "@@evals ") == [], case
