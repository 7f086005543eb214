"""`mgmt-pkg kickstart render -o`: the file written, and who may read it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

URL = "http://10.0.0.1/os"
# Any crypt hash will do: what matters is that the file holds one.
HASH = "$6$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ./"


def render_to(output: Path, umask: int = 0o022) -> subprocess.CompletedProcess:
    args = ["minimal", "--var", f"url={URL}", "--var", f"rootpw_hash={HASH}", "-o", str(output)]
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "render", *args],
        capture_output=True, text=True, timeout=60, check=False,
        preexec_fn=lambda: os.umask(umask),
    )  # fmt: skip


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_kickstart_made_private_stays_private_when_rendered_again(tmp_path: Path):
    """It holds the root password's hash: a re-render made it 0644, readable by all."""
    output = tmp_path / "node.ks"
    assert render_to(output).returncode == 0
    output.chmod(0o600)
    done = render_to(output)
    assert done.returncode == 0, done.stderr
    assert HASH in output.read_text()
    assert mode_of(output) == 0o600


def test_a_new_kickstart_follows_the_umask(tmp_path: Path):
    private = tmp_path / "private.ks"
    assert render_to(private, umask=0o077).returncode == 0
    assert mode_of(private) == 0o600
    shared = tmp_path / "shared.ks"
    assert render_to(shared, umask=0o022).returncode == 0
    assert mode_of(shared) == 0o644


def test_a_cache_dir_taken_by_someone_else_does_not_stop_a_render(tmp_path: Path):
    """Jinja2 refuses a cache directory in the temp dir that is not the user's own
    0700 folder (another user may have made it first): the render ended with
    'internal error: RuntimeError: Cannot determine safe temp directory'."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    (temp / f"_jinja2-cache-{os.getuid()}").write_text("taken\n")
    output = tmp_path / "node.ks"
    done = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "render", "minimal",
         "--var", f"url={URL}", "-o", str(output)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "TMPDIR": str(temp)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "url --url=http://10.0.0.1/os" in output.read_text()


def test_a_kickstart_rendered_through_a_symlink_is_written_where_it_points(tmp_path: Path):
    """As the shell's `>` writes: the link was replaced by a new file of a new file's
    mode (0644, the password's hash readable by all), and the private file it named,
    the one a server may serve, kept the old text."""
    served = tmp_path / "srv"
    served.mkdir()
    real = served / "node7.ks"
    real.write_text("old\n")
    real.chmod(0o600)
    link = tmp_path / "node7.ks"
    link.symlink_to(real)
    done = render_to(link)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert HASH in real.read_text()
    assert mode_of(real) == 0o600
    assert sorted(p.name for p in served.iterdir()) == ["node7.ks"]  # no temp file left


def test_a_dangling_symlink_gets_the_file_it_names(tmp_path: Path):
    link = tmp_path / "node.ks"
    link.symlink_to("made/node.ks")
    (tmp_path / "made").mkdir()
    done = render_to(link, umask=0o077)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert HASH in (tmp_path / "made" / "node.ks").read_text()
    assert mode_of(tmp_path / "made" / "node.ks") == 0o600


def test_a_symlink_into_a_missing_folder_is_bad_input(tmp_path: Path):
    link = tmp_path / "node.ks"
    link.symlink_to(tmp_path / "gone" / "node.ks")
    done = render_to(link)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"mgmt-pkg: error: --output {tmp_path}/gone/node.ks: its directory "
        f"{tmp_path}/gone does not exist\n"
    )
    assert link.is_symlink() and not (tmp_path / "gone").exists()
