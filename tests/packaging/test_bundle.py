"""The agent bundle: reproducible, self-contained, and runnable by a bare system python3."""

from __future__ import annotations

import ast
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import mgmt
from mgmt_pkg.bundle import INITIATOR_FILES, REQUIREMENTS, build_bundle, describe
from support import require_root, require_tools, unavailable

SYSTEM_PYTHON = "/usr/bin/python3"
PYENV = os.path.expanduser("~/.pyenv/versions/{version}*/bin/python{version}")


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", *args], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> list:
    """The bundle built three times: by the command line, then twice by the API from one
    snapshot of the agent's source (so that edits to the tree meanwhile cannot differ)."""
    output = tmp_path_factory.mktemp("cli") / "mgmt"
    done = _run_cli("bundle", "-o", str(output))
    assert done.returncode == 0, done.stderr
    built = [(output, done.stdout)]
    snapshot = tmp_path_factory.mktemp("source") / "mgmt"
    shutil.copytree(Path(mgmt.__file__).parent, snapshot)
    for name in ("first", "second"):
        info = build_bundle(tmp_path_factory.mktemp(name) / "mgmt", package_dir=snapshot)
        assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
        assert info.size == info.path.stat().st_size
        built.append((info.path, describe(info)))
    return built


def _clean_env(home: Path) -> dict:
    """No venv on PATH, nothing of ours in the environment: what a bare host has."""
    return {"HOME": str(home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def test_cli_prints_size_and_sha256(bundles):
    path, printed = bundles[0]
    assert f"sha256: {hashlib.sha256(path.read_bytes()).hexdigest()}" in printed
    assert f"size: {path.stat().st_size} bytes" in printed


def test_built_twice_gives_the_same_sha256(bundles):
    (_, _), (first, _), (second, _) = bundles
    assert first.read_bytes() == second.read_bytes()


def test_output_is_executable_and_nothing_partial_is_left(bundles):
    path, _ = bundles[0]
    assert os.access(path, os.X_OK)
    assert path.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert sorted(p.name for p in path.parent.iterdir()) == ["mgmt"]


def test_runs_version_with_the_system_python_from_a_clean_home(bundles, tmp_path):
    path, _ = bundles[0]
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", str(path), "--version"],
        capture_output=True,
        text=True,
        env=_clean_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert mgmt.__version__ in done.stdout + done.stderr
    # shiv extracted it under the clean HOME, keyed by the build id.
    assert list((tmp_path / ".shiv").glob("mgmt_*/site-packages/mgmt/cli.py"))


def test_remote_mode_from_the_bundle_says_what_it_lacks(bundles, tmp_path):
    path, _ = bundles[0]
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nremote: ssh://root@10.254.9.9\n")
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", str(path), "run", "--remote", str(graph)],
        capture_output=True, text=True, env=_clean_env(tmp_path), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("mgmt: error: --remote needs Fabric")
    assert "Traceback" not in done.stderr


def test_carries_exactly_the_agent_and_pyyaml(bundles):
    """No etcd client library: the agent speaks etcd's gateway with http.client."""
    path, _ = bundles[0]
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    top = {n.split("/")[1] for n in names if n.startswith("site-packages/")}
    packages = {t for t in top if not t.endswith(".dist-info")}
    assert packages == {"mgmt", "yaml"}
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]
    assert not [n for n in names if "mgmt_pkg" in n or "/tests/" in n]
    dist_infos = {t.rsplit(".", 1)[0].lower() for t in top if t.endswith(".dist-info")}
    assert dist_infos == {r.lower().replace("==", "-") for r in REQUIREMENTS}


# Where a host's Python starts in the bundle: its entry point (mgmt.cli), and the
# resource kinds' modules, which mgmt.resources.base imports by name.
HOST_ROOTS = ("mgmt", "mgmt.cli", "mgmt.__main__")
# mgmt.remote.run_remotes imports this only once Fabric is found: never on a host.
GATE = "mgmt.remote.orchestration.initiator"


def _imports(tree: ast.Module, package: str) -> set:
    """Every module ``tree`` may import, at its top or in a function, and the
    packages on their way; not under ``if TYPE_CHECKING:`` (never run)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            node.body = []
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {".".join(n.split(".")[:k]) for n in names for k in range(1, n.count(".") + 2)}


def _reachable_from_a_host() -> set:
    """The agent's files a host can load from the bundle: the modules the roots
    import at any depth, except past the GATE, and the programs such a module reads
    (a file name in its text, as mgmt.remote.protocol.programs reads start.sh)."""
    from mgmt.resources.base import REGISTRY

    source = Path(mgmt.__file__).parent
    files = {
        f"mgmt/{path.relative_to(source)}": path
        for path in source.rglob("*")
        if path.suffix in (".py", ".sh")
    }
    module_file = {
        f[: -len(".py")].replace("/", ".").replace(".__init__", ""): f
        for f in files
        if f.endswith(".py")
    }
    roots = [*HOST_ROOTS, *(target.partition(":")[0] for target in REGISTRY.values())]
    reached, todo = set(), [module_file[root] for root in roots]
    while todo:
        file = todo.pop()
        if file in reached:
            continue
        reached.add(file)
        if not file.endswith(".py"):
            continue
        text = files[file].read_text()
        tree = ast.parse(text)
        module = next(m for m, f in module_file.items() if f == file)
        package = module if file.endswith("__init__.py") else module.rpartition(".")[0]
        imported = _imports(tree, package) - {GATE}
        todo += [module_file[m] for m in imported if m in module_file]
        folder = file.rpartition("/")[0]
        read = {
            node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and f"{folder}/{node.value}" in files
        }  # fmt: skip
        todo += [f"{folder}/{name}" for name in read]
    return reached


def test_leaves_out_exactly_what_no_host_can_reach(bundles):
    """What a host never loads costs every host its copy; anything else left out
    could be missed there."""
    everything = {
        f"mgmt/{path.relative_to(Path(mgmt.__file__).parent)}"
        for path in Path(mgmt.__file__).parent.rglob("*")
        if path.suffix in (".py", ".sh")
    }
    assert everything - _reachable_from_a_host() == set(INITIATOR_FILES)
    with zipfile.ZipFile(bundles[0][0]) as archive:
        names = set(archive.namelist())
    assert not {f"site-packages/{path}" for path in INITIATOR_FILES} & names
    for needed in ("transport/openssh.py", "hierarchy/secondary.py", "protocol/start.sh"):
        assert f"site-packages/mgmt/remote/{needed}" in names  # a secondary's


def test_dependencies_import_from_the_bundle_alone(bundles, tmp_path):
    """-S hides the system's site-packages: only what the bundle carries can load."""
    path, _ = bundles[0]
    probe = (
        "import sys, yaml, mgmt, mgmt.world.client\n"
        "print('libyaml', yaml.__with_libyaml__)\n"
        "print('roundtrip', yaml.safe_load(yaml.safe_dump({'a': [1, 2]})) == {'a': [1, 2]})\n"
        "print('yaml', yaml.__version__)\n"
        "print('mgmt', mgmt.__version__)\n"
        "print('paths', all('.shiv' in m.__file__ for m in (yaml, mgmt)))\n"
    )
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-S", str(path)],
        input=probe,
        capture_output=True,
        text=True,
        env={**_clean_env(tmp_path), "SHIV_INTERPRETER": "1"},
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "libyaml False" in done.stdout
    assert "roundtrip True" in done.stdout
    assert f"yaml {REQUIREMENTS[0].split('==')[1]}" in done.stdout
    assert f"mgmt {mgmt.__version__}" in done.stdout
    assert "paths True" in done.stdout


def test_nothing_the_hosts_run_needs_more_than_python_3_6(bundles, tmp_path):
    """shiv's bootstrap, PyYAML and the agent side of mgmt (the bundle also carries the
    initiator-only modules, which a host never imports: see tests/compat)."""
    path, _ = bundles[0]
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path)
    root = tmp_path / "site-packages"
    vermin = Path(sys.executable).with_name("vermin")
    done = subprocess.run(
        [str(vermin), "-t=3.6-", "--no-tips", "--violations", "--eval-annotations",
         "--exclude-regex", "/mgmt/remote/(transport|orchestration)/",
         "--exclude-regex", r"/mgmt/remote/hostspec\.py$",
         str(root), str(tmp_path / "_bootstrap"), str(tmp_path / "__main__.py")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    flagged = {
        str(Path(match).relative_to(root))
        for match in re.findall(rf"({re.escape(str(root))}/\S+\.py)", done.stdout)
    }
    assert not flagged, done.stdout


GRAPH = """\
---
graph: bundled
resources:
  file:
  - name: hello
    path: "/tmp/from-bundle/hello"
    content: |
      applied by the bundle
    state: exists
  exec:
  - name: python-version
    cmd: "python3 -c 'import sys; print(sys.version)' > /tmp/from-bundle/python"
    shell: /bin/sh
    ifcmd: "test ! -e /tmp/from-bundle/python"
    ifshell: /bin/sh
edges:
- name: dir-first
  from: {kind: file, name: hello}
  to: {kind: exec, name: python-version}
"""


def test_runs_a_graph_on_a_bare_host_over_ssh(bundles, tmp_path):
    """Copied with scp into a throw-away host (own /tmp and /root), run with its python3."""
    require_root()
    require_tools("sshd", "ssh", "ip", "unshare", "nsenter", "etcd")
    from support.hosts import ssh_hosts

    path, _ = bundles[0]
    graph = tmp_path / "graph.yaml"
    graph.write_text(GRAPH)
    ssh = ["-F", None, "-o", "BatchMode=yes"]
    with ssh_hosts(["bare"]) as pool:
        ssh[1] = str(pool.ssh_config)
        host = pool["bare"]
        copy = subprocess.run(
            ["scp", "-q", *ssh, str(path), str(graph), "bare:/tmp/"],
            env=pool.env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert copy.returncode == 0, copy.stderr
        assert not host.exists("/root/.shiv")  # a fresh home: nothing extracted yet
        command = (
            "mkdir -p /tmp/from-bundle && cd /tmp && env -i HOME=/root PATH=/usr/bin:/bin "
            "/usr/bin/python3 -I /tmp/mgmt run --file /tmp/graph.yaml --tmp-prefix "
            "--hostname bare --converged-timeout 1 --no-watch"
        )
        done = subprocess.run(
            ["ssh", *ssh, "bare", command],
            env=pool.env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert host.read_file("/tmp/from-bundle/hello") == "applied by the bundle\n"
        assert host.read_file("/tmp/from-bundle/python").startswith(sys_python_version())
        assert host.listdir("/root/.shiv")  # extracted in the host's own home
    assert not Path("/tmp/from-bundle").exists()  # it all happened inside the host


def sys_python_version() -> str:
    return subprocess.run(
        [SYSTEM_PYTHON, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _python(version: str, why: str) -> str:
    """A python``version`` of this machine (pyenv keeps them on ours)."""
    candidates = [*sorted(glob.glob(PYENV.format(version=version)), reverse=True),
                  shutil.which(f"python{version}")]  # fmt: skip
    for candidate in candidates:
        # pyenv's shims only dispatch to the selected version: skip them.
        if candidate and "/shims/" not in candidate and os.access(candidate, os.X_OK):
            return candidate
    unavailable(f"python{version} not found ({why}; e.g. `pyenv install {version}`)")
    raise AssertionError("unreachable")


def test_bootstrap_and_pyyaml_run_on_python_3_6(bundles, tmp_path):
    """RHEL 8's platform-python: shiv's bootstrap unpacks the bundle and PyYAML loads.

    (Every agent module under every host Python: tests/compat.)
    """
    python36 = _python("3.6", "RHEL 8's platform-python")
    path, _ = bundles[0]
    probe = (
        "import sys, yaml; print(sys.version_info[:2], yaml.__version__, yaml.safe_load('a: [1]'))"
    )
    done = subprocess.run(
        [python36, "-I", "-S", str(path)], input=probe, capture_output=True, text=True,
        env={**_clean_env(tmp_path), "SHIV_INTERPRETER": "1"}, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert f"(3, 6) {REQUIREMENTS[0].split('==')[1]} {{'a': [1]}}" in done.stdout
    assert list((tmp_path / ".shiv").glob("mgmt_*/site-packages/yaml/__init__.py"))


def test_runs_a_graph_with_python_3_6(bundles, tmp_path):
    """The real check behind vermin's: the agent applies a graph under Python 3.6."""
    require_tools("etcd")
    python36 = _python("3.6", "RHEL 8's platform-python")
    path, _ = bundles[0]
    work = tmp_path / "work"
    work.mkdir()
    graph = tmp_path / "graph.yaml"
    graph.write_text(GRAPH.replace("/tmp/from-bundle", str(work)))
    done = subprocess.run(
        [python36, "-I", str(path), "run", "--file", str(graph), "--tmp-prefix",
         "--hostname", "rhel8", "--converged-timeout", "1", "--no-watch"],
        capture_output=True, text=True, env=_clean_env(tmp_path), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (work / "hello").read_text() == "applied by the bundle\n"
    assert (work / "python").exists()  # the exec ran (with the PATH's python3)
    # The agent itself ran under 3.6: its bytecode was written for 3.6.
    assert list((tmp_path / ".shiv").glob("mgmt_*/site-packages/mgmt/__pycache__/*cpython-36.pyc"))


def test_the_cached_bundle_is_built_again_when_the_recipe_changes(tmp_path, monkeypatch):
    """The initiator caches the bundle it builds by a hash: of mgmt's sources, and of
    mgmt-pkg's bundle.py and minify.py, which decide what the bundle holds."""
    import importlib.util

    import mgmt_pkg
    from mgmt.remote.orchestration import bundlefile

    recipe = tmp_path / "mgmt_pkg"
    recipe.mkdir()
    (recipe / "__init__.py").write_text("")
    for name in bundlefile.RECIPE:
        shutil.copy(Path(mgmt_pkg.__file__).parent / name, recipe / name)
    spec = importlib.util.spec_from_file_location("mgmt_pkg", recipe / "__init__.py")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    before = bundlefile.source_fingerprint()
    assert bundlefile.source_fingerprint() == before
    (recipe / "minify.py").write_text((recipe / "minify.py").read_text() + "\n# changed\n")
    assert bundlefile.source_fingerprint() != before


def test_the_cached_bundle_is_built_again_when_a_shell_program_changes(tmp_path, monkeypatch):
    """Only *.py counted: an edit of start.sh (which the bundle ships, and a
    secondary sends on) left the initiator's cached bundle in use."""
    import mgmt
    from mgmt.remote.orchestration import bundlefile

    copy = tmp_path / "mgmt"
    shutil.copytree(Path(mgmt.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(mgmt, "__file__", str(copy / "__init__.py"))
    before = bundlefile.source_fingerprint()
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"compiled")
    assert bundlefile.source_fingerprint() == before  # bytecode is no source
    start = copy / "remote" / "protocol" / "start.sh"
    start.write_text(start.read_text() + "# changed\n")
    assert bundlefile.source_fingerprint() != before
