"""`mgmt-pkg bundle` on bad input: checked before pip runs, exit 2, one line, nothing left."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from support import require_root, require_tools

NO_OVERRIDE = "-dac_override,-dac_read_search"


def bundle(
    *args: str, unprivileged: bool = False, env: Optional[dict] = None
) -> subprocess.CompletedProcess:
    """``mgmt-pkg bundle ARGS``; ``unprivileged``: as root without its file-permission overrides."""
    command: List[str] = [sys.executable, "-m", "mgmt_pkg", "bundle", *args]
    if unprivileged and os.geteuid() == 0:
        require_tools("setpriv")
        command = ["setpriv", "--bounding-set", NO_OVERRIDE, "--inh-caps", NO_OVERRIDE, "--",
                   *command]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env
    )


def read_only_folder(path: Path) -> Path:
    """A folder nobody's (if we are root), mode 555: not ours to write into."""
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    path.chmod(0o555)
    return path


def assert_one_line(done: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("mgmt-pkg: error: "), done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def test_an_unwritable_output_folder_is_refused_up_front(tmp_path: Path):
    folder = read_only_folder(tmp_path / "ro")
    done = bundle("--pip-arg=--no-index", "-o", str(folder / "x"), unprivileged=True)
    # --no-index: pip would fail; the output's folder is refused before pip runs.
    assert_one_line(done, 2, f"--output: cannot write into {folder}: permission denied")
    assert list(folder.iterdir()) == []


def test_an_output_folder_that_cannot_be_made_is_bad_input(tmp_path: Path):
    folder = read_only_folder(tmp_path / "ro")
    done = bundle("--pip-arg=--no-index", "-o", str(folder / "new" / "x"), unprivileged=True)
    assert_one_line(done, 2, f"--output: cannot create {folder / 'new'}: Permission denied")


@pytest.mark.parametrize(
    ("output", "message"),
    [("", "--output: the path is empty"), ("{tmp}/", "is a directory; give a file name"),
     ("{tmp}/fifo", "--output {tmp}/fifo: exists and is not a regular file")],
    ids=["empty", "folder", "fifo"],
)  # fmt: skip
def test_an_output_that_is_no_file_name_is_bad_input(tmp_path: Path, output: str, message: str):
    """A FIFO stands in for a device such as /dev/null, which a rename would replace."""
    os.mkfifo(tmp_path / "fifo")
    done = bundle("--pip-arg=--no-index", "-o", output.format(tmp=tmp_path))
    assert_one_line(done, 2, message.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == [tmp_path / "fifo"]


def test_folders_made_for_the_output_go_when_the_build_fails(tmp_path: Path):
    done = bundle("--pip-arg=--no-index", "-o", str(tmp_path / "new" / "deep" / "mgmt"))
    assert done.returncode == 1, done.stderr
    assert "pip install (bundle dependencies) failed" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("python", "message"),
    [
        ("python3\nimport os", "contains a control character"),
        ("python 3", "not an absolute path"),
        ("relative/python3", "not an absolute path"),
        (" /usr/bin/python3", "expected an absolute path, optionally with one argument"),
        ("", "expected an absolute path"),
        ("/" + "p" * 300, "would be 304 bytes, more than the kernel's 128"),
        ("/" + "p" * 125, "would be 129 bytes"),  # shiv takes 128, old kernels cut it
        # The kernel passes what follows the path as one argument: python3 said
        # "Unknown option: - ", env "No such file or directory", on every start.
        ("/usr/bin/python3 -E -s", "passes '-E -s' to /usr/bin/python3 as one argument"),
        ("/usr/bin/env python3 -I", "give /usr/bin/env -S python3 -I"),
        # env then runs the bundle itself, which starts env again, for ever.
        ("/usr/bin/env", "/usr/bin/env needs the command to run"),
    ],
    ids=[
        "newline",
        "space",
        "relative",
        "leading-space",
        "empty",
        "too-long",
        "one-too-long",
        "two-options",
        "env-without-S",
        "env-alone",
    ],
)
def test_a_shebang_that_cannot_run_is_refused(tmp_path: Path, python: str, message: str):
    output = tmp_path / "mgmt"
    done = bundle("--pip-arg=--no-index", "--python", python, "-o", str(output))
    assert_one_line(done, 2, "--python ", message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("python", "line"),
    [
        ("python3", b"#!/usr/bin/env python3\n"),  # a bare name runs through env
        # One argument, spaces and all, as the kernel passes it (env -S splits it).
        ("/usr/bin/env -S python3 -I", b"#!/usr/bin/env -S python3 -I\n"),
        ("/usr/bin/python3 -Es", b"#!/usr/bin/python3 -Es\n"),  # options joined: one argument
    ],
)
def test_a_shebang_given_is_written_as_a_line_that_runs(tmp_path: Path, python: str, line: bytes):
    output = tmp_path / "mgmt"
    done = bundle("--python", python, "-o", str(output))
    assert done.returncode == 0, done.stderr
    assert output.read_bytes().startswith(line)
    ran = subprocess.run([str(output), "--version"], capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr


def test_a_tool_traceback_is_summarised_in_one_line(tmp_path: Path):
    """shiv dying with a traceback: its last line is the message, not the frames."""
    fake = tmp_path / "fake" / "shiv"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("def build():\n    raise OSError(28, 'No space left')\n"
                                      "build()\n")  # fmt: skip
    path = [str(tmp_path / "fake"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    output = tmp_path / "out" / "mgmt"
    done = bundle("-o", str(output), env=env)
    assert_one_line(done, 1, "shiv failed with exit code 1: OSError: [Errno 28] No space left")
    assert list(tmp_path.iterdir()) == [tmp_path / "fake"]


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path):
    """shiv on a full disk chained the same OSError three times: three lines said
    the same under "shiv failed with exit code 1:"."""
    require_root()
    require_tools("unshare", "mount")
    small = tmp_path / "small"
    small.mkdir()
    command = [sys.executable, "-m", "mgmt_pkg", "bundle", "-o", str(small / "out" / "mgmt")]
    script = 'mount -t tmpfs -o size=64k tmpfs "$1" && shift && "$@"; s=$?; ls -A "$0"; exit $s'
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(small), str(small),
         *command],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert_one_line(done, 1, "No space left on device")
    assert done.stdout == ""  # nothing left in the full folder (ls -A said nothing)
