"""`mgmt-pkg` maps every failure to one line and an exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def mgmt_pkg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("serve", "/tmp", "--port", "99999"), 2, "'--port': 99999 is not in the range"),
        (("serve", "/tmp", "--tftp-port", "-1"), 2, "'--tftp-port': -1 is not in the range"),
        (("serve", "/tmp", "--max-ranges", "4097"), 2, "'--max-ranges': 4097 is not in the range"),
        (("bundle", "-o", "/proc/no-such-dir/mgmt"), 2, "error: --output: cannot create /proc/"),
        (("no-such-command",), 2, "No such command 'no-such-command'"),
    ],
)
def test_bad_input_and_failed_operations_are_one_line(args, code, fragment):
    done = mgmt_pkg(*args)
    assert done.returncode == code, done.stderr
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr


def test_version_and_help_exit_zero():
    done = mgmt_pkg("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("mgmt-pkg, version ")
    assert mgmt_pkg("--help").returncode == 0


CRASH = (
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/rpm/x.py", line 5, in <module>\n'
    "    main()\n"
    "    ^^^^^^\n"
    "OSError: [Errno 28] No space left on device\n"
)


def test_a_tool_that_crashed_is_one_line_its_exception():
    from mgmt_pkg.errors import ToolFailed

    message = str(ToolFailed("shiv", 1, "\n" + CRASH))
    assert message == "shiv failed with exit code 1: OSError: [Errno 28] No space left on device"


def test_a_traceback_in_a_tools_output_is_cut_to_its_exception_lines():
    """rpmbuild's output around a script's chained tracebacks: its words stay, frames go."""
    from mgmt_pkg.errors import ToolFailed

    chained = "\nDuring handling of the above exception, another exception occurred:\n\n"
    output = (
        "+ /usr/lib/rpm/brp-python-bytecompile\n"
        + CRASH.replace("OSError: [Errno 28] No space left on device", "KeyError: 'a'")
        + chained
        + CRASH
        + "error: Bad exit status from /var/tmp/rpm-tmp.1 (%install)\n"
    )
    assert str(ToolFailed("rpmbuild", 1, output)).splitlines() == [
        "rpmbuild failed with exit code 1:",
        "+ /usr/lib/rpm/brp-python-bytecompile",
        "KeyError: 'a'",
        "OSError: [Errno 28] No space left on device",
        "error: Bad exit status from /var/tmp/rpm-tmp.1 (%install)",
    ]


LONG = "a" * 300  # one name past NAME_MAX (255 bytes): stat() says ENAMETOOLONG

# Path.exists()/is_dir()/is_file() raise for ENAMETOOLONG (they swallow only
# "not there"): each of these was "error: File name too long", exit 1, no option.
LONG_NAMES = [
    (("fake-rpm", "-n", "p", "-v", "1", "-o", LONG), f"--output-dir {LONG}: File name too long"),
    (("fake-rpm", "-n", "p", "-v", "1", "-o", f"{LONG}/x"), f"--output-dir {LONG}/x: File name"),
    (("rpm", "-n", "p", "-v", "1", "-o", "out", f"{LONG}/=/usr/share/p/"), f"{LONG}/=/usr/share"),
    (("kickstart", "render", "minimal", "-o", LONG), f"--output {LONG}: File name too long"),
    (("kickstart", "render", "minimal", "-o", f"{LONG}/x"), f"--output {LONG}/x: File name"),
    (("kickstart", "render", LONG), f"TEMPLATE '{LONG}': File name too long"),
    (("bundle", "-o", f"{LONG}/x.pyz"), f"--output {LONG}/x.pyz: File name too long"),
    (("repo", LONG), f"{LONG}: File name too long"),
    (("copr", "project", "a/b", "--chroot", "fedora-rawhide-x86_64", "--dry-run",
      "--config", LONG), f"copr config {LONG}: File name too long"),
    (("fake-rpm", "-n", "p", "-v", "1", "-o", "out", "--copr", "a/b", "--copr-config", LONG),
     f"copr config {LONG}: File name too long"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"), LONG_NAMES, ids=[" ".join(a[:2]) for a, _ in LONG_NAMES]
)
def test_a_name_too_long_is_bad_input_naming_its_option(tmp_path, monkeypatch, args, message):
    from support.pkgcli import run_cli

    monkeypatch.chdir(tmp_path)
    done = run_cli(*args)
    assert done.code == 2, done.err
    assert done.err.startswith("mgmt-pkg: error: ") and message in done.err, done.err
    assert len(done.err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing made, not even the output folder


def _with_stdout_closed(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", *args],
        capture_output=False, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip


def test_a_closed_stdout_is_no_traceback():
    """`mgmt-pkg --version >&-` ended in AttributeError: 'NoneType' object has no
    attribute 'flush', from the quick exit that flushes stdout."""
    done = _with_stdout_closed("--version")
    assert (done.returncode, done.stderr) == (0, "")


def test_a_kickstart_rendered_to_a_closed_stdout_is_not_lost_unsaid():
    done = _with_stdout_closed("kickstart", "render", "minimal", "--var", "url=http://a/os/")
    assert done.returncode == 1
    assert done.stderr == (
        "mgmt-pkg: error: stdout is closed: nowhere to print the kickstart; give -o FILE\n"
    )


SWALLOWING_COMMAND = """\
import os, signal, time, weakref
import click

@click.command()
def command():
    class Held:
        pass
    held = Held()
    # The signal lands in a finalizer, as in a pooled connection closed by the
    # garbage collector while `copr build` followed its build.
    weakref.finalize(held, lambda: os.kill(os.getpid(), signal.SIGINT) or time.sleep(0.01))
    del held
    deadline = time.monotonic() + float(os.environ["RUN_ON"])
    while time.monotonic() < deadline:
        time.sleep(0.01)
    print("ran on")
"""


@pytest.mark.parametrize("run_on", ["20", "0"], ids=["runs-on", "ends-at-once"])
def test_an_interrupt_that_lands_in_a_finalizer_still_ends_the_run(tmp_path, run_on):
    """Python ignores what a finalizer raises: a ^C handled in one was printed as
    "Exception ignored in: <finalize object ...>" with a traceback, and the run went
    on, deaf to further signals (a `copr build` followed its build for ever). A run
    that ends before the signal comes again is interrupted all the same."""
    (tmp_path / "swallowing.py").write_text(SWALLOWING_COMMAND)
    program = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "import mgmt_pkg.cli as cli\n"
        "cli.COMMANDS['swallow'] = 'swallowing:command'\n"
        "sys.argv = ['mgmt-pkg', 'swallow']\n"
        "cli.entry()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ, RUN_ON=run_on),
    )  # fmt: skip
    assert done.returncode == 130, done.stdout + done.stderr
    if run_on != "0":
        assert "ran on" not in done.stdout
        assert done.stderr == "mgmt-pkg: interrupted by SIGINT; removed what the run had made\n"
    else:  # said as main() says it, or after it ended
        assert done.stderr.startswith("mgmt-pkg: interrupted by SIGINT"), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
