"""A tree removal never reaches into a file system mounted inside the tree (or at it).

Run in a mount namespace of the test's own, / read-only but the temp dir, with a
tmpfs mounted inside the tree there: the mount goes with the namespace.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import _pythonpath

# $0: the temp dir; then the agent's command line. The mount's file is read back
# after the agent ended, inside the namespace.
SCRIPT = """
mount --bind "$0" "$0" && mount -o bind,remount,ro / || exit 99
mount -t tmpfs tmpfs "$0/tree/mnt" && echo precious > "$0/tree/mnt/data" || exit 98
"$@"
echo "agent exited $?"
cat "$0/tree/mnt/data"
"""


@pytest.mark.parametrize(
    "resource",
    [
        "{name: gone, path: TREE/, state: absent, recurse: true}",
        "{name: file, path: TREE, content: x, force: true}",
    ],
)
def test_a_mount_inside_a_tree_to_remove_is_refused_and_left_whole(tmp_path, resource):
    from support import require_root, require_tools

    require_root()
    require_tools("unshare")
    tree = tmp_path / "tree"
    (tree / "mnt").mkdir(parents=True)
    (tree / "keep").mkdir()
    (tree / "keep" / "x").write_text("x\n")
    graph = tmp_path / "g.yaml"
    graph.write_text(f"graph: g\nresources:\n  file:\n  - {resource.replace('TREE', str(tree))}\n")
    agent = [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--no-server",
             "--prefix", str(tmp_path / "state"), "--converged-timeout", "0"]  # fmt: skip
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", SCRIPT, str(tmp_path), *agent],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": _pythonpath(), "PATH": "/usr/bin:/bin"},
    )
    assert "agent exited 1" in done.stdout, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("precious"), done.stdout + done.stderr
    assert f"{tree}/mnt is mounted inside it" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tree / "keep" / "x").read_text() == "x\n"  # nothing removed before the refusal
