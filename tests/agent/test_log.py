"""mgmt's log lines: the format, levels, tracebacks, and logging from a signal handler."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import run_mgmt

from mgmt.log import get_logger, setup


def test_format_levels_prefix_and_traceback(mgmt_log):
    log = get_logger("engine")
    log.debug("not shown at the default level")
    log.info("%d resources", 3)
    log.child("file[a]").warning("%s done, 100%%", "half")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = mgmt_log.getvalue().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d engine: 3 resources", lines[0])
    assert lines[1].endswith(" engine: file[a]: half done, 100%")
    assert lines[2].endswith(" engine: failed") and lines[3] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"
    assert "not shown" not in mgmt_log.getvalue()
    setup(-1, mgmt_log)
    log.info("quiet now")
    assert "quiet now" not in mgmt_log.getvalue()


class _Closed:
    """stderr once the initiator has gone: every write fails."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_line_that_cannot_be_written_or_formatted_does_not_fail_the_caller(mgmt_log):
    log = get_logger("main")
    log.info("%d resources", "three")  # a bad format: the line still says what it could
    assert "main: %d resources ('three',)" in mgmt_log.getvalue()
    setup(0, _Closed())
    log.info("interrupted by %s", "SIGINT")  # must not raise into a signal handler


# A signal arrives while the main thread is writing a line, and its handler logs
# (as the agent's SIGINT/SIGTERM handler does): that must not deadlock.
SIGNAL_IN_WRITE = """
import os, signal, sys
from mgmt.log import get_logger, setup

class Stream:
    signalled = False
    def write(self, text):
        if not Stream.signalled:
            Stream.signalled = True
            os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs inside this write
        sys.stdout.write(text)
    def flush(self):
        sys.stdout.flush()

log = get_logger("main")
signal.signal(signal.SIGUSR1, lambda *_: log.info("interrupted"))
setup(0, Stream())
log.info("graph loaded")
"""


def test_a_signal_handler_can_log_while_a_line_is_being_written():
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_WRITE], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 1)[1] for line in done.stdout.splitlines()] == [
        "main: interrupted",
        "main: graph loaded",
    ]


def test_control_characters_in_a_message_are_escaped(mgmt_log):
    """A command's output in a message (a progress bar's \\r, colours) neither
    overwrites the line nor drives the terminal; newlines and tabs stay."""
    get_logger("exec").error("failed: %s", "100%\r 50%\x1b[31m red\x1b[0m\x00\x9b\nnext\tline")
    text = mgmt_log.getvalue()
    assert text.endswith(r" exec: failed: 100%\r 50%\x1b[31m red\x1b[0m\x00\x9b" + "\nnext\tline\n")


def test_a_failing_commands_carriage_returns_leave_its_log_line_whole(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  exec:\n  - name: fetch\n"
        "    cmd: printf '  0%%\\r 45%%\\r' >&2; exit 22\n    shell: /bin/sh\n"
    )
    done = run_mgmt(
        ["--file", str(graph), "--no-server", "--tmp-prefix", "--converged-timeout", "0"]
    )
    assert done.returncode == 1, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert re.search(r"exec: fetch: failed: .* exited 22: 0%\\r 45%$", done.stderr, re.M)
