"""`mgmt run` end to end on real files: converge, restore, noop, reload, errors, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import SRC, AgentProcess, read, run_mgmt, wait_for


def write_graph(path, body: str) -> None:
    path.write_text("graph: test\n" + textwrap.dedent(body))


def files_graph(out, **contents) -> str:
    lines = ["resources:", "  file:"]
    for name, content in contents.items():
        lines += [
            f"  - name: {name}",
            f"    path: {out / name}",
            f"    content: {json.dumps(content)}",
        ]
    return "\n".join(lines) + "\n"


def test_converges_and_exits_zero(tmp_path):
    graph = tmp_path / "g.yaml"
    write_graph(graph, files_graph(tmp_path / "out", a="A\n", b="B\n"))
    result = run_mgmt(
        ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-timeout", "0"]
    )
    assert result.returncode == 0, result.stderr
    assert read(tmp_path / "out" / "a") == "A\n" and read(tmp_path / "out" / "b") == "B\n"
    assert "converged" in result.stderr


def test_an_empty_graph_converges_too(tmp_path):
    graph = tmp_path / "g.yaml"
    write_graph(graph, "resources: {}\n")
    result = run_mgmt(
        ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-timeout", "0"]
    )
    assert result.returncode == 0, result.stderr
    assert "converged" in result.stderr


def test_tmp_prefix_is_private_and_removed_at_exit(tmp_path):
    graph = tmp_path / "g.yaml"
    write_graph(graph, "resources:\n  exec:\n  - name: where\n    cmd: 'true'\n")
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--tmp-prefix", "-v"], tmp_path / "log"
    )
    try:
        assert agent.wait_log("where: ran", 10), agent.log
        state = re.search(r"state directory (\S+)", agent.log).group(1)
        assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    finally:
        assert agent.stop() == 0
    assert not os.path.exists(state)


def test_restores_after_external_edit_and_delete_then_stops_on_sigterm(tmp_path):
    graph, out = tmp_path / "g.yaml", tmp_path / "out"
    write_graph(graph, files_graph(out, f="keep me\n") + "    mode: '0644'\n")
    agent = AgentProcess(["--file", str(graph), "--no-server", "--tmp-prefix"], tmp_path / "log")
    try:
        assert wait_for(lambda: read(out / "f") == "keep me\n", 10), agent.log
        (out / "f").write_text("vandalised\n")
        assert wait_for(lambda: read(out / "f") == "keep me\n", 5), agent.log
        (out / "f").unlink()
        assert wait_for(lambda: read(out / "f") == "keep me\n", 5), agent.log
        os.chmod(out / "f", 0o777)
        assert wait_for(lambda: stat.S_IMODE(os.stat(out / "f").st_mode) == 0o644, 5), agent.log
    finally:
        code = agent.stop(signal.SIGTERM)
    assert code == 0
    assert "interrupted by SIGTERM" in agent.log and "Goodbye!" in agent.log
    assert "Traceback" not in agent.log


def test_a_copied_tree_is_kept_in_step_at_every_depth(tmp_path):
    source, copy = tmp_path / "src", tmp_path / "copy"
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "b" / "deep").write_text("deep\n")
    graph = tmp_path / "g.yaml"
    write_graph(
        graph,
        f"resources:\n  file:\n  - name: tree\n    path: {copy}/\n"
        f"    source: {source}\n    recurse: true\n",
    )
    agent = AgentProcess(["--file", str(graph), "--no-server", "--tmp-prefix"], tmp_path / "log")
    try:
        deep = copy / "a" / "b" / "deep"
        assert wait_for(lambda: read(deep) == "deep\n", 10), agent.log
        deep.write_text("vandalised\n")  # three levels down in the copy
        assert wait_for(lambda: read(deep) == "deep\n", 5), agent.log
        (source / "a" / "new").mkdir()  # a directory made after the start, then a file in it
        (source / "a" / "new" / "f").write_text("new\n")
        assert wait_for(lambda: read(copy / "a" / "new" / "f") == "new\n", 5), agent.log
    finally:
        assert agent.stop(signal.SIGTERM) == 0
    assert "Traceback" not in agent.log


def test_sigint_stops_cleanly(tmp_path):
    graph = tmp_path / "g.yaml"
    write_graph(graph, files_graph(tmp_path / "out", f="x"))
    agent = AgentProcess(["--file", str(graph), "--no-server", "--tmp-prefix"], tmp_path / "log")
    assert agent.wait_log("created", 10), agent.log
    assert agent.stop(signal.SIGINT) == 0
    assert "Traceback" not in agent.log


# Loaded at the child's start (site imports it): a real SIGINT to itself as it
# imports one module, a ^C at that very moment, where no sleep could aim.
INTERRUPT_AT_IMPORT = """\
import os, signal, sys

class InterruptAt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, InterruptAt())
"""


# The installed command (setup.cfg's console script, as the bundle's entry point).
INSTALLED = str(Path(sys.executable).with_name("mgmt"))


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("mgmt.settings", [sys.executable, "-m", "mgmt"]),  # as mgmt.cli is imported
        ("mgmt.settings", [INSTALLED]),
        ("argparse", [sys.executable, "-m", "mgmt"]),  # as main() builds the parser
        # as the flags are read (the system hostname: _run, before the handler)
        ("socket", [sys.executable, "-m", "mgmt"]),
    ],
)
def test_a_sigint_while_the_command_line_loads_exits_130_with_one_line(tmp_path, module, command):
    """A ^C in the first tenth of a second gave Python's traceback, or exit 130 in
    silence; a later one logs why the agent stops."""
    graph = tmp_path / "g.yaml"
    write_graph(graph, files_graph(tmp_path / "out", f="x"))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(INTERRUPT_AT_IMPORT.format(module=module))
    path = [str(tmp_path / "site"), str(SRC), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    result = subprocess.run(
        [*command, "run", "--file", str(graph), "--no-server", "--tmp-prefix"],
        capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 130, result.stderr
    assert re.fullmatch(r"\d\d:\d\d:\d\d main: interrupted by SIGINT\n", result.stderr)
    assert not (tmp_path / "out").exists()


def test_noop_reports_and_changes_nothing(tmp_path):
    graph, out = tmp_path / "g.yaml", tmp_path / "out"
    out.mkdir()
    (out / "b").write_text("wrong\n")
    write_graph(graph, files_graph(out, a="A\n", b="B\n"))
    result = run_mgmt(
        ["--file", str(graph), "--no-server", "--tmp-prefix", "--noop", "--converged-timeout", "0"]
    )
    assert result.returncode == 0, result.stderr
    assert "would create" in result.stderr and "would rewrite content" in result.stderr
    assert not (out / "a").exists() and read(out / "b") == "wrong\n"


def test_live_reload_applies_only_the_difference_and_survives_a_bad_edit(tmp_path):
    graph, out = tmp_path / "g.yaml", tmp_path / "out"
    write_graph(graph, files_graph(out, keep="same\n", edit="v1\n", drop="bye\n"))
    agent = AgentProcess(["--file", str(graph), "--no-server", "--tmp-prefix"], tmp_path / "log")
    try:
        assert wait_for(lambda: read(out / "edit") == "v1\n" and read(out / "drop") == "bye\n", 10)
        kept = os.stat(out / "keep")
        write_graph(graph, files_graph(out, keep="same\n", edit="v2\n", add="new\n"))
        assert wait_for(lambda: read(out / "edit") == "v2\n" and read(out / "add") == "new\n", 5), (
            agent.log
        )
        assert agent.wait_log(
            "added 1 (file[add]), changed 1 (file[edit]), removed 1 (file[drop])", 5
        )
        after = os.stat(out / "keep")
        assert (kept.st_ino, kept.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
        # A removed resource is no longer managed: its file stays as it is.
        assert read(out / "drop") == "bye\n"
        graph.write_text("graph: broken\nresources: [\n")
        assert agent.wait_log("keeping the last good graph", 5), agent.log
        assert "YAML syntax error" in agent.log and f"{graph}:" in agent.log
        (out / "edit").write_text("tampered")
        assert wait_for(lambda: read(out / "edit") == "v2\n", 5), agent.log
        assert agent.proc.poll() is None
    finally:
        assert agent.stop() == 0


def test_a_graph_given_as_a_symlink_follows_saves_of_its_target_and_a_new_target(tmp_path):
    """Editors save by renaming a new file over the old one, in the target's folder."""
    out = tmp_path / "out"
    real, other, link = tmp_path / "real" / "g.yaml", tmp_path / "other.yaml", tmp_path / "g.yaml"
    real.parent.mkdir()
    write_graph(real, files_graph(out, f="v1\n"))
    link.symlink_to(real)
    agent = AgentProcess(["--file", str(link), "--no-server", "--tmp-prefix"], tmp_path / "log")
    try:
        assert wait_for(lambda: read(out / "f") == "v1\n", 10)
        saved = real.with_suffix(".swp")  # as vim or sed -i saves
        write_graph(saved, files_graph(out, f="v2\n"))
        os.replace(saved, real)
        assert wait_for(lambda: read(out / "f") == "v2\n", 5), agent.log
        # The link pointed elsewhere (ln -sf): that file, and saves of it, count.
        write_graph(other, files_graph(out, f="v3\n"))
        new_link = tmp_path / "g.yaml.new"
        new_link.symlink_to(other)
        os.replace(new_link, link)
        assert wait_for(lambda: read(out / "f") == "v3\n", 5), agent.log
        saved = tmp_path / "other.swp"
        write_graph(saved, files_graph(out, f="v4\n"))
        os.replace(saved, other)
        assert wait_for(lambda: read(out / "f") == "v4\n", 5), agent.log
    finally:
        assert agent.stop() == 0


def test_a_folder_moved_away_is_made_again_before_the_file_in_it(tmp_path):
    """Both hear of the move at once: the folder (0700) is made first, by its own
    resource, not as the file's parent with the default mode."""
    graph, out = tmp_path / "g.yaml", tmp_path / "out"
    folder = out / "d"
    write_graph(
        graph,
        f"""\
        resources:
          file:
          - name: d
            path: {folder}/
            mode: "0700"
          - name: g
            path: {folder}/g
            content: "g"
        """,
    )
    agent = AgentProcess(["--file", str(graph), "--no-server", "--tmp-prefix"], tmp_path / "log")
    try:
        assert wait_for(lambda: read(folder / "g") == "g", 10)
        for i in range(3):
            folder.rename(out / f"moved{i}")
            assert wait_for(lambda: read(folder / "g") == "g", 5), agent.log
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700

        def made() -> list:
            return [line for line in agent.log.splitlines() if " created " in line]

        # At start, then after each move: d, then g (the last line may follow the file).
        assert wait_for(lambda: len(made()) == 8, 5), "\n".join(made())
        for first, second in zip(made()[::2], made()[1::2]):
            assert "file: d: created directory" in first and "file: g: created" in second
        assert "set mode" not in agent.log  # never made wider first
    finally:
        assert agent.stop() == 0


def test_a_file_whose_folder_further_up_is_moved_away_is_made_again(tmp_path):
    graph, out = tmp_path / "g.yaml", tmp_path / "out"
    target = out / "a" / "b" / "c" / "f"
    write_graph(
        graph,
        f"""\
        resources:
          file:
          - name: deep
            path: {target}
            content: "deep"
        """,
    )
    agent = AgentProcess(["--file", str(graph), "--no-server", "--tmp-prefix"], tmp_path / "log")
    try:
        assert wait_for(lambda: read(target) == "deep", 10)
        (out / "a" / "b").rename(out / "b-moved")
        assert wait_for(lambda: read(target) == "deep", 5), agent.log
        (out / "a").rename(out / "a-moved")
        assert wait_for(lambda: read(target) == "deep", 5), agent.log
    finally:
        assert agent.stop() == 0


def test_a_graph_link_in_a_linked_folder_follows_a_new_target(tmp_path):
    """The link's folder and the target's are one folder under two names."""
    out, real = tmp_path / "out", tmp_path / "real"
    real.mkdir()
    write_graph(real / "v1.yaml", files_graph(out, f="v1\n"))
    write_graph(real / "v2.yaml", files_graph(out, f="v2\n"))
    (real / "g.yaml").symlink_to("v1.yaml")
    (tmp_path / "linked").symlink_to(real)
    graph = tmp_path / "linked" / "g.yaml"
    agent = AgentProcess(["--file", str(graph), "--no-server", "--tmp-prefix"], tmp_path / "log")
    try:
        assert wait_for(lambda: read(out / "f") == "v1\n", 10)
        (real / "g.new").symlink_to("v2.yaml")
        os.replace(real / "g.new", real / "g.yaml")  # as ln -sfn does
        assert wait_for(lambda: read(out / "f") == "v2\n", 5), agent.log
    finally:
        assert agent.stop() == 0


def test_no_watch_ignores_graph_edits(tmp_path):
    graph, out = tmp_path / "g.yaml", tmp_path / "out"
    write_graph(graph, files_graph(out, f="v1\n"))
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--tmp-prefix", "--no-watch"], tmp_path / "log"
    )
    try:
        assert wait_for(lambda: read(out / "f") == "v1\n", 10)
        write_graph(graph, files_graph(out, f="v2\n"))
        (out / "f").write_text("poke")  # an event the agent does react to
        assert wait_for(lambda: read(out / "f") == "v1\n", 5)
    finally:
        agent.stop()


def test_bad_files_and_cycles_exit_2_with_file_and_line(tmp_path):
    graph = tmp_path / "bad.yaml"
    write_graph(graph, "resources:\n  file:\n  - name: /tmp/x\n    colour: red\n")
    result = run_mgmt(["--file", str(graph), "--no-server", "--tmp-prefix"])
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"mgmt: error: {graph}:5: file[/tmp/x]: colour")
    )
    cycle = tmp_path / "cycle.yaml"
    write_graph(
        cycle,
        """\
        resources:
          noop: [{name: a}, {name: b}]
        edges:
        - {name: ab, from: {kind: noop, name: a}, to: {kind: noop, name: b}}
        - {name: ba, from: {kind: noop, name: b}, to: {kind: noop, name: a}}
        """,
    )
    result = run_mgmt(["--file", str(cycle), "--no-server", "--tmp-prefix"])
    assert result.returncode == 2
    assert f"mgmt: error: {cycle}:5: dependency cycle: " in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_mgmt(["--file", str(tmp_path / "nope.yaml"), "--no-server", "--tmp-prefix"])
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_a_bad_graph_fails_before_a_state_dir_or_etcd_exists(tmp_path):
    graph = tmp_path / "bad.yaml"
    write_graph(graph, "resources:\n  file:\n  - name: f\n    path: /x\n    state: exist\n")
    prefix = tmp_path / "prefix"  # the embedded etcd would keep its data here
    result = run_mgmt(["--file", str(graph), "--prefix", str(prefix)])
    assert result.returncode == 2
    assert f"mgmt: error: {graph}:6: file[f]: state: 'exist'" in result.stderr
    assert "etcd" not in result.stderr and not prefix.exists()


def test_a_tree_copied_from_a_file_exits_2_and_makes_nothing(tmp_path):
    """It failed at every check of the run (exit 1), its folder made first."""
    graph, source = tmp_path / "g.yaml", tmp_path / "motd"
    source.write_text("hello\n")
    write_graph(graph, f"resources:\n  file:\n  - name: d\n    path: {tmp_path}/d/\n"
                f"    source: {source}\n")  # fmt: skip
    flags = ["--no-server", "--tmp-prefix", "--converged-timeout", "1"]
    result = run_mgmt(["--file", str(graph), *flags])
    assert result.returncode == 2, result.stderr
    assert f"mgmt: error: {graph}:6: file[d]: source: {source} is not a directory" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "d").exists()


def _broken_and_fine(tmp_path: Path):
    """A graph with one failing exec and one file that applies regardless."""
    graph, out = tmp_path / "g.yaml", tmp_path / "out"
    write_graph(
        graph,
        f"""\
        resources:
          exec:
          - {{name: broken, cmd: 'false'}}
          file:
          - {{name: fine, path: {out}/fine, content: "ok"}}
        """,
    )
    return graph, out


def test_failed_resource_makes_a_converged_run_exit_1_but_others_apply(tmp_path):
    graph, out = _broken_and_fine(tmp_path)
    result = run_mgmt(
        ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-timeout", "0"]
    )
    assert result.returncode == 1
    assert "broken: failed" in result.stderr
    assert read(out / "fine") == "ok"


def test_failed_resource_makes_a_stopped_run_exit_1(tmp_path):
    # Remote agents never converge by themselves: the initiator stops them with
    # SIGINT and reads this status to tell a failed host from a converged one.
    graph, out = _broken_and_fine(tmp_path)
    agent = AgentProcess(["--file", str(graph), "--no-server", "--tmp-prefix"], tmp_path / "log")
    assert agent.wait_log("broken: failed", 10), agent.log
    assert wait_for(lambda: read(out / "fine") == "ok", 5), agent.log
    assert agent.stop(signal.SIGINT) == 1, agent.log
    assert "stopped with 1 failed resource(s)" in agent.log


def test_usage_errors_exit_2():
    assert run_mgmt([]).returncode == 2
    result = run_mgmt(["--file", "x.yaml", "--etcd-auth-stdin", "--seeds", "http://127.0.0.1:9"])
    assert result.returncode == 2 and "username:password" in result.stderr


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--no-server"], "--no-server cannot be used with --remote"),
        (["--file", "local.yaml"], "--file cannot be used with --remote"),  # not ignored
    ],
)
def test_flags_a_remote_run_cannot_honour_are_refused(tmp_path, flags, said):
    graph = tmp_path / "a.yaml"
    write_graph(graph, "remote: ssh://root@192.0.2.1\nresources: {}\n")
    result = run_mgmt(["--remote", str(graph), *flags])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mgmt: error: {said}"), result.stderr


def test_sigkill_mid_write_never_leaves_a_partial_file_nor_a_temp_file(tmp_path):
    source = tmp_path / "big"
    block = bytes(range(256)) * 4096  # 1 MiB
    source.write_bytes(block * 16)
    target = tmp_path / "out" / "copy"
    (tmp_path / "out").mkdir()
    graph = tmp_path / "g.yaml"
    write_graph(
        graph, f"resources:\n  file:\n  - name: copy\n    path: {target}\n    source: {source}\n"
    )
    for attempt in range(4):
        if target.exists():
            target.unlink()
        # Its state in tmp_path: a --tmp-prefix dir would outlive the SIGKILL.
        state = str(tmp_path / f"state{attempt}")
        agent = AgentProcess(
            ["--file", str(graph), "--no-server", "--prefix", state], tmp_path / f"log{attempt}"
        )
        assert agent.wait_log("graph 'test'", 10), agent.log
        # Kill at a different moment each time, while the 16 MiB copy is under way.
        wait_for(lambda: False, 0.02 * attempt)
        agent.proc.kill()
        agent.wait()
        if target.exists():
            assert target.stat().st_size == source.stat().st_size
            assert target.read_bytes() == source.read_bytes()
        # else: killed before the new file took its name, which leaves the old state
        # Nor a half-written temp file beside it: the new content has no name until done.
        assert sorted(os.listdir(tmp_path / "out")) == (["copy"] if target.exists() else [])
