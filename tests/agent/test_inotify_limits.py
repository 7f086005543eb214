"""The kernel's inotify limits reached: said in words the user can act on, and a
watch limit raised while the agent runs takes effect without a restart."""

from __future__ import annotations

import subprocess
import sys

from helpers import CONFINE, AgentProcess, _pythonpath, read, wait_for

from support import require_root, require_tools

# A user namespace has inotify limits of its own (/proc/sys/user/): set one there,
# none of this machine's; then / read-only in it but for the test's folder (CONFINE).
NO_INSTANCES = "echo 0 > /proc/sys/user/max_inotify_instances && " + CONFINE
FEW_WATCHES = "echo 30 > /proc/sys/user/max_inotify_watches && " + CONFINE
NO_WATCHES = "echo 0 > /proc/sys/user/max_inotify_watches && " + CONFINE
RAISE_WATCHES = "echo 1000 > /proc/sys/user/max_inotify_watches"  # nsenter -t PID -U


def _limited(script: str, tmp_path) -> list:
    """The command line that runs what follows it under ``script``'s limits, confined."""
    return ["unshare", "-U", "-r", "-m", "--propagation", "private", "sh", "-c", script,
            str(tmp_path)]  # fmt: skip


def _run_once(script: str, tmp_path, graph, converged: str, timeout: float):
    """`mgmt run` of ``graph`` under ``script``'s limits, until converged."""
    return subprocess.run(
        [*_limited(script, tmp_path), sys.executable, "-m", "mgmt", "run", "--file", str(graph),
         "--no-server", "--prefix", str(tmp_path / "state"), "--converged-timeout", converged],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "PYTHONPATH": _pythonpath()},
    )  # fmt: skip


def _raise_watches(agent: AgentProcess) -> None:
    """Raise the watch limit of ``agent``'s user namespace, as an admin would the host's."""
    raised = subprocess.run(
        ["nsenter", "-t", str(agent.proc.pid), "-U", "sh", "-c", RAISE_WATCHES],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert raised.returncode == 0, raised.stderr


def test_no_inotify_instance_left_fails_naming_the_limit(tmp_path):
    require_root()
    require_tools("unshare")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"graph: g\nresources:\n  file:\n  - name: f\n    path: {tmp_path / 'f'}\n    content: x\n"
    )
    result = _run_once(NO_INSTANCES, tmp_path, graph, "0", 60)
    assert result.returncode == 1, result.stderr
    assert "fs.inotify.max_user_instances" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "f").exists()  # nothing applied unwatched


def test_watches_raised_while_it_runs_watch_the_paths_left_unwatched(tmp_path):
    require_root()
    require_tools("unshare", "nsenter")
    files = [tmp_path / f"d{i}" / "f" for i in range(60)]
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        + "".join(f"  - name: f{i}\n    path: {f}\n    content: x\n" for i, f in enumerate(files))
    )
    # 30 watches for 60 folders (and the agent's own: its graph's folder, a state dir).
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")],
        tmp_path / "log",
        wrap=_limited(FEW_WATCHES, tmp_path),
    )
    try:
        assert wait_for(lambda: all(read(f) == "x" for f in files), 20), agent.log
        # Said by the watcher's thread, which may come to it after the files were made.
        assert agent.wait_log("the inotify watch limit is reached", 10), agent.log
        _raise_watches(agent)
        for f in files:  # each changed by hand: every one is seen, and undone
            f.write_text("changed")
        assert wait_for(lambda: all(read(f) == "x" for f in files), 15), [
            str(f) for f in files if read(f) != "x"
        ]
        assert agent.wait_log("every path is watched", 5), agent.log
        assert agent.stop() == 0
    finally:
        if agent.proc.poll() is None:
            agent.stop()


def test_an_agent_that_stays_short_of_watches_still_converges(tmp_path):
    """The paths tried again every few seconds tell no resource while none is
    watched anew: a copied tree's check must not keep the agent busy for ever."""
    require_root()
    require_tools("unshare")
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "a" / "x").write_text("1")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - name: tree\n    path: {tmp_path / 'copy'}/\n    source: {tmp_path / 'src'}/\n"
        "    recurse: true\n"
        + "".join(f"  - name: f{i}\n    path: {tmp_path / f'd{i}' / 'f'}\n    content: x\n"
                  for i in range(60))
    )  # fmt: skip
    result = _run_once(FEW_WATCHES, tmp_path, graph, "6", 40)
    assert result.returncode == 0, result.stderr
    assert "the inotify watch limit is reached" in result.stderr
    assert "converged: idle for 6 s" in result.stderr
    assert (tmp_path / "copy" / "a" / "x").read_text() == "1"


def test_with_no_watch_at_start_the_graph_and_files_are_watched_once_raised(tmp_path):
    """Not even / watchable: the graph file's watch and the files' wait for watches."""
    require_root()
    require_tools("unshare", "nsenter")
    out, graph = tmp_path / "f", tmp_path / "g.yaml"
    graph.write_text(f"graph: g\nresources:\n  file:\n  - {{name: f, path: {out}, content: x}}\n")
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")],
        tmp_path / "log",
        wrap=_limited(NO_WATCHES, tmp_path),
    )
    try:
        assert wait_for(lambda: read(out) == "x", 10), agent.log
        _raise_watches(agent)
        assert agent.wait_log("every path is watched", 15), agent.log
        graph.write_text(graph.read_text().replace("content: x", "content: y"))
        assert wait_for(lambda: read(out) == "y", 5), agent.log
        out.write_text("by hand")
        assert wait_for(lambda: read(out) == "y", 5), agent.log
        assert agent.stop() == 0
    finally:
        if agent.proc.poll() is None:
            agent.stop()
