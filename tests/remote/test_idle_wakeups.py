"""An idle remote run lets the initiator's threads sleep.

Each connection's threads woke on timers: paramiko's reader every 0.1 s, the
heartbeat's watch and the session's wait every 0.25 s: about 18 wake-ups a second
per host, 2,300 a second at 100 hosts, 7% of a core spent doing nothing
(measured). Now each wakes about once a second, and the keepalive goes every few
seconds. Wake-ups are counted (the kernel's context switches of every thread),
not timed: a slower machine wakes no more often.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from remote_helpers import Initiator, file_graph, need_hosts

from support.hosts import ssh_hosts
from support.polling import wait_until

HOSTS = 4
WINDOW = 4.0  # seconds counted


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(HOSTS) as hosts:
        yield hosts


def _switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # a thread that just ended
            continue
        for line in status.splitlines():
            if "ctxt_switches:" in line:  # voluntary and nonvoluntary
                total += int(line.split(":")[1])
    return total


def test_an_idle_run_wakes_the_initiator_about_once_a_second_per_thread(pool, bundle, tmp_path):
    graphs = [file_graph(host.name, host.name, tmp_path, content="idle") for host in pool]
    with Initiator(pool, bundle, graphs) as run:
        for host in pool:
            path = f"/tmp/only-{host.name}"
            wait_until(
                lambda host=host, path=path: host.exists(path) and host.read_file(path) == "idle",
                30,
                f"{host.name}'s file",
            )
        before = _switches(run.proc.pid)
        time.sleep(WINDOW)  # the window counted, not a wait for something to happen
        woke = _switches(run.proc.pid) - before
        run.interrupt()
        assert run.wait(30) == 0, run.output
    per_host_and_second = woke / HOSTS / WINDOW
    # About 4 a second per host now (reader, watch, wait, the keepalive's round trip),
    # 19 before.
    assert per_host_and_second < 9, (woke, per_host_and_second)
    for host in pool:
        host.run(f"rm -f /tmp/only-{host.name}")
