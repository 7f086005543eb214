"""What hosts print, as the initiator shows it: a flood on stderr before the agent
starts (a `python:` wrapper, a login script) neither stalls the start nor is cut,
a run whose output nobody reads any more (`| head`) still ends, and host lines
and log lines sharing one pipe never land inside one another."""

import re
import signal
import subprocess
import sys

import pytest
from remote_helpers import (
    MGMT,
    assert_clean,
    file_graph,
    has_file,
    mgmt_run,
    need_hosts,
    summary,
)

from support.hosts import ssh_hosts

# 48 lines of 64 KiB on stderr, 3 MiB in all (past paramiko's 2 MiB channel
# window), then the real Python.
NOISY_PYTHON = """#!/bin/sh
python3 -c '
import sys
for i in range(48):
    sys.stderr.write("noise%d-" % i + "x" * 65536 + "-end\\n")
'
exec python3 "$@"
"""


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a"]) as hosts:
        yield hosts


def test_megabytes_on_stderr_before_the_agent_starts_are_shown_whole(pool, bundle, tmp_path):
    # Unread until the launcher said which Python it is, the stderr filled the
    # channel's window, which stdout shares: the host failed after 60 s with
    # "/tmp/noisy-python3 said nothing for 60 s: not the agent's Python?".
    a = pool["a"]
    a.run("cat > /tmp/noisy-python3 && chmod 755 /tmp/noisy-python3", input=NOISY_PYTHON)
    graph = file_graph("a", "a", tmp_path)
    graph.write_text(graph.read_text() + "python: /tmp/noisy-python3\n")
    done = mgmt_run(pool, bundle, [graph], "--converged-timeout=0", timeout=50)
    assert done.returncode == 0, done.stderr[-2000:]
    assert summary(done.stdout)["a"][0] == "converged"
    assert has_file(a, "i am a")
    noise = [line for line in done.stdout.splitlines() if "noise" in line]
    expected = [f"a | noise{i}-" + "x" * 65536 + "-end" for i in range(48)]
    assert noise == expected, [re.sub("x{100,}", "x...", line) for line in noise]
    assert_clean(a)


# Starts the real Python, and beside it 3 MiB on stderr (from the first line on).
FLOODING_PYTHON = """#!/bin/sh
python3 -c '
import sys
for i in range(48):
    sys.stderr.write("flood%d-" % i + "x" * 65536 + "\\n")
' &
exec python3 "$@"
"""


def test_a_run_whose_output_nobody_reads_any_more_still_ends_as_it_went(pool, bundle, tmp_path):
    # `mgmt run ... | head -1`: the first write after head ended raised
    # BrokenPipeError in the session's reader, which stopped reading the host
    # (past 2 MiB unread, its output stalls the channel), and the run ended in
    # "internal error: BrokenPipeError", exit 1, whatever the hosts did.
    a = pool["a"]
    a.run("cat > /tmp/flood-python3 && chmod 755 /tmp/flood-python3", input=FLOODING_PYTHON)
    graph = file_graph("a", "a", tmp_path, content="flooded")
    graph.write_text(graph.read_text() + "python: /tmp/flood-python3\n")
    argv = [*MGMT, "run", "--tmp-prefix", "--converged-timeout=1", "--remote", str(graph)]
    env = pool.env(MGMT_BUNDLE=str(bundle))
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        run.stdout.readline()
        run.stdout.close()  # as head does once it has its line
        try:
            _, err = run.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGINT)
            run.communicate(timeout=30)
            raise AssertionError("the run did not end once its stdout was closed") from None
    assert run.returncode == 0, err[-2000:]
    assert "internal error" not in err
    assert has_file(a, "flooded")
    assert_clean(a)


# A host's line, or a log line (``HH:MM:SS component: message``): nothing else.
LINE = re.compile(r"h \| x{1000000}|\d\d:\d\d:\d\d remote: a log line")
INTERLEAVED = """
import sys, threading
from mgmt.log import get_logger, setup
from mgmt.remote.orchestration.follow import Printer

setup(0)
log, printer, done = get_logger("remote"), Printer(sys.stdout), threading.Event()
def logging():
    while not done.is_set():
        log.info("a log line")
thread = threading.Thread(target=logging)
thread.start()
for _ in range(20):
    printer("h", "x" * 1000000)
done.set()
thread.join()
"""


def test_log_lines_never_land_inside_a_host_line_on_one_pipe():
    # `mgmt run --remote ... 2>&1 | tee run.log`: host lines (stdout) and the
    # initiator's log lines (stderr) each had a lock of their own; a long host line
    # goes into the pipe in pieces, and a log line landed between two of them
    # ("c | L26-YYY16:08:37 remote: b: Running ...", the line's rest on its own).
    done = subprocess.run(
        [sys.executable, "-c", INTERLEAVED],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    mixed = [line[:80] for line in lines if not LINE.fullmatch(line)]
    assert not mixed
    assert sum(line.startswith("h | ") for line in lines) == 20


def test_what_the_host_printed_in_a_failure_is_shown_escaped_in_the_summary(pool, bundle, tmp_path):
    # START failed (its cache cannot be made) and its message carried what the login
    # printed on stderr: the summary wrote the host's ESC sequences raw (a colour, a
    # terminal title), while the log line above it showed them escaped.
    a = pool["a"]
    a.run(
        "printf '%s\\n' \"printf '\\\\033[31mRED\\\\033]0;title\\\\007\\\\n' >&2\" > /root/.bashrc"
    )
    a.run("rm -rf /root/.cache && touch /root/.cache")
    try:
        done = mgmt_run(pool, bundle, [file_graph("a", "a", tmp_path)], "--converged-timeout=0")
    finally:
        a.run("rm -f /root/.bashrc /root/.cache")
    assert done.returncode == 1, done.stdout + done.stderr
    result, _bundle, message = summary(done.stdout)["a"]
    assert result == "failed" and "\\x1b[31mRED\\x1b]0;title\\x07" in message, message
    assert "\x1b" not in done.stdout + done.stderr
    assert_clean(a)
