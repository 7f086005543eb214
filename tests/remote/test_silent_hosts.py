"""A host that takes the TCP connection but never sends its SSH greeting (its
sshd stopped): both runners give up after the run's --lost-timeout (at most the
connect timeout) and say so in the same plain words."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from remote_helpers import file_graph, mgmt_run, need_hosts, summary, wait_until

from mgmt.errors import RemoteError
from mgmt.remote.hostspec import parse_remote
from mgmt.remote.transport.connect import ConnectOptions
from mgmt.remote.transport.openssh import OpenSshRunner
from mgmt.remote.transport.paramiko_ssh import ParamikoRunner
from mgmt.remote.transport.runner import HURRY_SECONDS
from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["mute"]) as hosts:
        yield hosts


@pytest.fixture()
def mute(pool):
    """The host, its sshd stopped: the kernel accepts, nobody speaks."""
    host = pool["mute"]
    os.kill(host.pid, signal.SIGSTOP)
    try:
        yield host
    finally:
        os.kill(host.pid, signal.SIGCONT)


def _silent(host, seconds: int) -> str:
    return f"{host.address}:22 accepted the connection but sent no SSH greeting within {seconds} s"


def test_paramiko_gives_up_after_the_lost_timeout_and_says_why(pool, mute, monkeypatch):
    monkeypatch.setenv("HOME", str(pool.ssh_dir.parent))
    spec = parse_remote(f"ssh://root@{mute.address}", Path("g.yaml"), 1)
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        ParamikoRunner(spec, ConnectOptions(), lost_timeout=2)
    took = time.monotonic() - started
    assert caught.value.message == _silent(mute, 2)
    assert took < 5, took  # not paramiko's own 10 or 15 s


def test_openssh_gives_up_after_the_lost_timeout_and_says_why(pool, mute):
    spec = parse_remote("mute", Path("g.yaml"), 1)  # the alias: ssh_config says the rest
    runner = OpenSshRunner(spec, lost_timeout=2, ssh_config=str(pool.ssh_config))
    started = time.monotonic()
    try:
        with pytest.raises(RemoteError) as caught:
            runner.run("true")
    finally:
        runner.close()
    took = time.monotonic() - started
    assert caught.value.message == _silent(mute, 2)
    assert took < 5, took


def test_a_run_reports_the_silent_host_within_its_lost_timeout(pool, mute, bundle, tmp_path):
    graph = file_graph("mute", f"ssh://root@{mute.address}", tmp_path)
    started = time.monotonic()
    done = mgmt_run(pool, bundle, [graph], "--lost-timeout=3", timeout=30)
    took = time.monotonic() - started
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    result, _, message = summary(done.stdout)[mute.address]
    assert (result, message) == ("failed", _silent(mute, 3)), out
    assert took < 8, (took, out)


def test_openssh_stopped_while_logging_in_gives_up_within_seconds(pool, mute):
    """hurry() (the run stops) while the login waits for a greeting: ssh's
    ConnectTimeout (10 s here) is not waited out."""
    spec = parse_remote("mute", Path("g.yaml"), 1)
    runner = OpenSshRunner(spec, lost_timeout=30, ssh_config=str(pool.ssh_config))
    failed = []

    def log_in() -> None:
        try:
            runner.run("true")
        except RemoteError as err:
            failed.append(err.message)

    thread = threading.Thread(target=log_in, daemon=True)
    thread.start()
    try:
        wait_until(lambda: runner._master is not None, 10, "the login to begin")
        started = time.monotonic()
        runner.hurry()  # returns at once: it does not wait for the login's lock
        assert time.monotonic() - started < 1
        thread.join(HURRY_SECONDS + 3)
        took = time.monotonic() - started
    finally:
        runner.close()
    assert failed == ["stopped: no SSH login within 3 s of the stop"], (failed, took)
    assert took < HURRY_SECONDS + 2, took
