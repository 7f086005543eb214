"""mgmt.remote.cluster: etcd started on the first dial, converged states mirrored to it."""

from __future__ import annotations

import threading
import time

import pytest

from mgmt.errors import WorldError
from mgmt.remote.cluster import RunCluster
from mgmt.world.client import EtcdClient
from support import require_tools


def _converged_keys(etcd: RunCluster) -> dict:
    client = EtcdClient([etcd.client_url], etcd._server.root_credentials)
    try:
        _, items = client.range("/_mgmt/converged/", prefix=True)
        return {key: value for key, value, _rev in items}
    finally:
        client.close()


def test_etcd_starts_on_the_first_dial_and_mirrors_every_state(tmp_path):
    require_tools("etcd")
    etcd = RunCluster(tmp_path)
    changes = threading.Semaphore(0)
    etcd.watch_converged(changes.release)
    try:
        etcd.report_converged("a", False)  # before etcd runs: kept in memory only
        etcd.report_converged("a", True)
        assert changes.acquire(timeout=1) and changes.acquire(timeout=1)
        assert etcd.converged_hosts() == {"a": True}
        assert not (tmp_path / "etcd").exists()
        host, port = etcd.target()  # the first tunnel connection starts it
        assert host == "127.0.0.1" and port > 0
        etcd.report_converged("b", False)
        assert changes.acquire(timeout=1)
        expected = {
            "/_mgmt/converged/a": "true",  # reported before etcd ran, written once it did
            "/_mgmt/converged/b": "false",
        }
        deadline = time.monotonic() + 10  # written by a thread of its own
        while _converged_keys(etcd) != expected:
            assert time.monotonic() < deadline, _converged_keys(etcd)
            time.sleep(0.02)
        etcd.report_converged("a", True)  # no change: nobody is told
        assert not changes.acquire(timeout=0.2)
    finally:
        etcd.close()


def test_a_dial_after_the_end_is_refused(tmp_path):
    require_tools("etcd")
    etcd = RunCluster(tmp_path)
    etcd.target()
    etcd.close()
    with pytest.raises(WorldError, match="ending"):
        etcd.target()


def test_no_dial_no_etcd_and_none_after_the_end(tmp_path):
    etcd = RunCluster(tmp_path)
    etcd.report_converged("a", True)
    etcd.close()  # nothing was started, so nothing to stop
    with pytest.raises(WorldError, match="ending"):
        etcd.target()
    assert not (tmp_path / "etcd").exists()


def test_an_etcd_that_cannot_start_is_reported_once(tmp_path):
    require_tools("etcd")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("the state dir cannot go here")
    reasons = []
    etcd = RunCluster(blocked, on_failure=reasons.append)
    for _dial in range(2):
        with pytest.raises(WorldError, match="did not start"):
            etcd.target()
    with pytest.raises(WorldError, match="cannot run etcd"):
        etcd.close()  # and the caller is told why too (the run ends with it)
    assert len(reasons) == 1 and reasons[0].startswith("the run's etcd did not start")
