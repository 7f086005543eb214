"""The kernel's inotify limits reached: said in words the user can act on."""

from __future__ import annotations

import subprocess
import sys

from helpers import _pythonpath

from support import require_root, require_tools

# A user namespace has inotify limits of its own (/proc/sys/user/): set one there,
# none of this machine's. / is read-only in it but for the test's folder ("$0").
IN_NAMESPACE = (
    'echo 0 > /proc/sys/user/max_inotify_instances && mount --bind "$0" "$0"'
    ' && mount -o bind,remount,ro / && exec "$@"'
)


def test_no_inotify_instance_left_fails_naming_the_limit(tmp_path):
    require_root()
    require_tools("unshare")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"graph: g\nresources:\n  file:\n  - name: f\n    path: {tmp_path / 'f'}\n    content: x\n"
    )
    result = subprocess.run(
        ["unshare", "-U", "-r", "-m", "--propagation", "private", "sh", "-c", IN_NAMESPACE,
         str(tmp_path), sys.executable, "-m", "mgmt", "run", "--file", str(graph),
         "--no-server", "--prefix", str(tmp_path / "state"), "--converged-timeout", "0"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "PYTHONPATH": _pythonpath()},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "fs.inotify.max_user_instances" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "f").exists()  # nothing applied unwatched
