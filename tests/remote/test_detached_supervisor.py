"""The supervisor of a detached cluster's processes (mgmt.remote.protocol's supervise.py),
run here as the hosts run it outside systemd: ``python3 -S DIR/supervise.py NAME`` in a
session of its own, DIR/NAME.json saying what to run."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from remote_helpers import supervised_dir

from support import require_root, require_tools
from support.polling import wait_until


@pytest.fixture
def supervised(tmp_path):
    """start(argv, **spec): the supervisor of ``argv`` as "agent" in tmp_path; stopped after."""
    started = []

    def start(argv, **extra):
        script = supervised_dir(tmp_path, argv, **extra)
        process = subprocess.Popen(
            [sys.executable, "-S", str(script), "agent"], start_new_session=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def test_a_stop_while_the_process_starts_stops_it(tmp_path, supervised):
    """SIGTERM while the supervisor started its process (opening its stdin, its fork
    and exec) found no process to stop: the process then ran on, and the supervisor
    waited on it for ever (a cluster stopped as its agent started kept that agent).
    Here its stdin is a FIFO, whose opening waits for a writer: the SIGTERM lands then."""
    fifo = tmp_path / "agent.in"
    os.mkfifo(fifo)
    supervisor = supervised(["sleep", "3600"], stdin=str(fifo))
    wchan = Path(f"/proc/{supervisor.pid}/wchan")
    wait_until(lambda: wchan.read_text() == "wait_for_partner", what="opening the FIFO")
    supervisor.send_signal(signal.SIGTERM)
    with open(fifo, "wb"):  # the open goes on (PEP 475) and the process starts
        pass
    assert supervisor.wait(30) == 0
    child = int((tmp_path / "agent.pid").read_text())
    wait_until(lambda: not os.path.exists(f"/proc/{child}"), what="the process stopped")


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


def test_a_full_disk_does_not_end_the_supervisor(tmp_path):
    """The cluster's directory on a full disk (a tmpfs of 64 KiB, in a mount namespace
    of the test's own): the process ends and its status cannot be written, yet the
    supervisor lives on and starts it again, once there is room."""
    require_root()
    require_tools("unshare")
    folder = tmp_path / "detached"
    folder.mkdir()
    # First run: fill the disk and fail. The next: room again, and run on.
    child = "if [ -e fill ]; then rm fill; exec sleep 3600; fi; cat /dev/zero > fill; exit 3"
    supervised_dir(tmp_path, ["sh", "-c", child])
    script = (
        f'mount -t tmpfs -o size=64k tmpfs "$1" && cp "$2/supervise.py" "$2/agent.json" "$1" '
        f'&& exec {sys.executable} -S "$1/supervise.py" agent'
    )
    process = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
         str(folder), str(tmp_path)],
        start_new_session=True,
    )  # fmt: skip
    # Its files, seen through its own root (the tmpfs is in its namespace alone).
    inside = Path(f"/proc/{process.pid}/root") / str(folder).lstrip("/")

    def sleeping() -> bool:  # the second run, noted in agent.pid once there is room
        pid = int((inside / "agent.pid").read_text())
        # The program, not the text: the first run's `sh -c` names sleep in its script.
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[0] == "sleep"

    try:
        wait_until(lambda: process.poll() is not None or sleeping(), timeout=30,
                   what="the supervisor's end, or its second run")  # fmt: skip
        assert process.poll() is None, "the supervisor ended on a full disk"
        assert not (inside / "fill").exists()
        # The first run's status, written late (tried again each second).
        wait_until(lambda: (inside / "agent.exit").read_text() == "3\n", what="agent.exit")
        assert sorted(p.name for p in inside.iterdir() if p.name.endswith(".new")) == []
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def test_a_graph_pushed_to_a_full_disk_fails_naming_it_and_leaves_no_partial_file(tmp_path):
    """``--attach`` pushing an edited graph to a host whose disk is full: the error
    said only "OSError: [Errno 28] No space left on device", and a partial
    GRAPH.new stayed in the cluster's directory."""
    import json

    from mgmt.remote.orchestration.detach import DETACHED
    from mgmt.remote.orchestration.hosts import detached_args

    require_root()
    require_tools("unshare")
    home = tmp_path / "home"
    state = home / ".local/state/mgmt/detached"
    state.mkdir(parents=True)
    supervised_dir(state, ["true"])
    (state / "cluster.json").write_text(json.dumps({"graph": "web.yaml"}))
    (state / "web.yaml").write_text("graph: old\n")
    # A tmpfs of 64 KiB over HOME holding the same files, filled up, in a mount
    # namespace of the test's own; the answer, and what is left, printed after it.
    script = (
        'cp -a "$1" "$TMPDIR/copy" && mount -t tmpfs -o size=64k tmpfs "$1" '
        '&& cp -a "$TMPDIR/copy/." "$1" && (cat /dev/zero > "$1/fill" 2>/dev/null; true) '
        '&& { HOME="$1" "$2" -S -c "$3" "${@:5}"; echo "status $?"; ls -A "$4"; '
        'cat "$4/web.yaml"; }'
    )
    request = json.dumps({"graph": "graph: new\n" + "# padding\n" * 2000}) + "\n"
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", script, "bash",
         str(home), sys.executable, DETACHED, str(state), *detached_args("graph")],
        input=request, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, TMPDIR=str(tmp_path)),
    )  # fmt: skip
    lines = done.stdout.splitlines()
    answer = json.loads(lines[0])
    assert f"{state}/web.yaml" in answer["error"] and "No space left" in answer["error"], answer
    assert lines[1] == "status 1", done.stdout + done.stderr
    assert not [name for name in lines[2:] if name.endswith(".new")], lines
    assert lines[-1] == "graph: old"  # the graph as it was, whole
