"""The run's etcd endpoint (started on the first dial, converged states mirrored to it)
and the fan-out's converged states."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from mgmt.errors import WorldError
from mgmt.remote.orchestration.etcd import RunEtcd
from mgmt.remote.orchestration.fanout import ConvergedStates
from mgmt.wakeup import Wakeup
from mgmt.world.client import EtcdClient
from support import require_tools
from support.polling import wait_for


def _converged_keys(etcd: RunEtcd) -> dict:
    client = EtcdClient([etcd.client_url], etcd._server.root_credentials)
    try:
        _, items = client.range("/_mgmt/converged/", prefix=True)
        return {key: value for key, value, _rev in items}
    finally:
        client.close()


class _Counting(Wakeup):
    """A Wakeup that also counts how often it was set."""

    def __init__(self):
        super().__init__()
        self.changes = threading.Semaphore(0)

    def set(self):
        self.changes.release()
        super().set()


def test_converged_states_are_kept_once_and_only_changes_wake_the_run():
    wake = _Counting()
    published = []
    states = ConvergedStates(wake, lambda host, state: published.append((host, state)))
    try:
        states.report("a", False)
        states.report("a", True)
        assert wake.changes.acquire(timeout=1) and wake.changes.acquire(timeout=1)
        assert states.snapshot() == {"a": True}
        assert states.idle_since("a") is not None
        states.report("a", True)  # no change: nobody is told
        assert not wake.changes.acquire(timeout=0.2)
        assert published == [("a", False), ("a", True)]
    finally:
        wake.close()


def test_etcd_starts_on_the_first_dial_and_mirrors_every_state(tmp_path):
    require_tools("etcd")
    etcd = RunEtcd(tmp_path)
    try:
        etcd.publish_converged("a", False)  # before etcd runs: kept for it
        etcd.publish_converged("a", True)
        assert not (tmp_path / "etcd").exists()
        host, port = etcd.target()  # the first tunnel connection starts it
        assert host == "127.0.0.1" and port > 0
        etcd.publish_converged("b", False)
        expected = {
            "/_mgmt/converged/a": "true",  # reported before etcd ran, written once it did
            "/_mgmt/converged/b": "false",
        }
        deadline = time.monotonic() + 10  # written by a thread of its own
        while _converged_keys(etcd) != expected:
            assert time.monotonic() < deadline, _converged_keys(etcd)
            time.sleep(0.02)
    finally:
        etcd.close()


def test_a_dial_after_the_end_is_refused(tmp_path):
    require_tools("etcd")
    etcd = RunEtcd(tmp_path)
    etcd.target()
    etcd.close()
    with pytest.raises(WorldError, match="ending"):
        etcd.target()


def test_no_dial_no_etcd_and_none_after_the_end(tmp_path):
    etcd = RunEtcd(tmp_path)
    etcd.publish_converged("a", True)
    etcd.close()  # nothing was started, so nothing to stop
    with pytest.raises(WorldError, match="ending"):
        etcd.target()
    assert not (tmp_path / "etcd").exists()


def test_an_etcd_that_cannot_start_is_reported_once(tmp_path):
    require_tools("etcd")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("the state dir cannot go here")
    reasons = []
    etcd = RunEtcd(blocked, on_failure=reasons.append)
    for _dial in range(2):
        with pytest.raises(WorldError, match="did not start"):
            etcd.target()
    with pytest.raises(WorldError, match="cannot run etcd"):
        etcd.close()  # and the caller is told why too (the run ends with it)
    assert len(reasons) == 1 and reasons[0].startswith("the run's etcd did not start")


def test_an_etcd_that_ends_before_the_run_ends_it(tmp_path):
    """Killed (or out of memory) mid-run: the run is told, and ends with why."""
    require_tools("etcd")
    reasons = []
    etcd = RunEtcd(tmp_path, on_failure=reasons.append)
    etcd.target()
    os.kill(etcd._server.pid, signal.SIGKILL)
    assert wait_for(lambda: reasons, 10), "the run was not told"
    assert reasons == ["the run's etcd ended (exit status -9) while the run needed it"]
    with pytest.raises(WorldError, match="ended"):
        etcd.close()


def test_an_etcd_stopped_by_the_run_is_no_failure(tmp_path):
    require_tools("etcd")
    reasons = []
    etcd = RunEtcd(tmp_path, on_failure=reasons.append)
    etcd.target()
    etcd.close()
    assert reasons == []
