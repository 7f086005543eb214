"""The supervisor of a detached cluster's processes (mgmt.remote.protocol's supervise.py),
run here as the hosts run it outside systemd: ``python3 -S DIR/supervise.py NAME`` in a
session of its own, DIR/NAME.json saying what to run."""

import json
import os
import signal
import subprocess
import sys

import pytest

from mgmt.remote.orchestration.detach import SUPERVISOR
from support.polling import wait_until


@pytest.fixture
def supervised(tmp_path):
    """start(argv, **spec): the supervisor of ``argv`` as "agent" in tmp_path; stopped after."""
    started = []

    def start(argv, **extra):
        (tmp_path / "supervise.py").write_text(SUPERVISOR)
        spec = {"argv": argv, "stdin": None, "env": {}, "stop_signal": "TERM", "umask": None}
        (tmp_path / "agent.json").write_text(json.dumps({**spec, **extra}))
        process = subprocess.Popen(
            [sys.executable, "-S", str(tmp_path / "supervise.py"), "agent"],
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def test_a_process_that_fails_at_once_is_first_restarted_after_one_second(tmp_path, supervised):
    """README: restarted "1 s, doubling while they keep failing, up to 30 s": 1, 2, 4..."""
    supervised(["sh", "-c", "exit 3"])
    log = tmp_path / "agent.log"
    wait_until(lambda: log.read_text().count("restarting") >= 2, timeout=20, what="2 restarts")
    lines = [line for line in log.read_text().splitlines() if "restarting" in line]
    assert lines[:2] == [
        "mgmt-detached: agent ended with status 3; restarting in 1 s",
        "mgmt-detached: agent ended with status 3; restarting in 2 s",
    ]


def test_the_log_of_a_process_that_keeps_writing_stays_bounded(tmp_path, supervised):
    """A cluster lives for months: its agent's log is kept under the limit, the older
    part in NAME.log.1 (one generation), the newest lines in NAME.log."""
    limit = 64 * 1024
    writer = (
        "import sys, time\n"
        "for i in range(4000):\n"  # 4000 lines of 100 bytes: about 6 times the limit
        "    sys.stdout.write('line %05d '.ljust(99, 'x') % i + '\\n'); sys.stdout.flush()\n"
        "    time.sleep(0.0005)\n"
        "print('done', flush=True)\n"
        "time.sleep(3600)\n"
    )
    supervised([sys.executable, "-c", writer], log_limit=limit)
    log, older = tmp_path / "agent.log", tmp_path / "agent.log.1"
    wait_until(lambda: "done\n" in log.read_text(), timeout=30, what="the last line in the log")
    assert older.exists()
    # Checked once a second: what a second of writing adds, at most, over the limit.
    assert log.stat().st_size <= limit + 400 * 1024
    assert older.stat().st_size <= limit + 400 * 1024
    assert oct(os.stat(older).st_mode & 0o777) == "0o600"
    # The newest lines are whole and in order, the log's last one the writer's last.
    shown = (older.read_text() + log.read_text()).splitlines()
    assert shown[-2].startswith("line 03999 ") and shown[-1] == "done"
