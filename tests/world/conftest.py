"""Real etcd processes for the world tests: one per test module, keys wiped per test."""

from __future__ import annotations

import pytest

from mgmt.world.client import EtcdClient
from mgmt.world.server import EmbeddedEtcd
from support import require_tools


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    """A running embedded etcd shared by the tests of one module."""
    require_tools("etcd")
    with EmbeddedEtcd(tmp_path_factory.mktemp("etcd") / "etcd") as server:
        yield server


@pytest.fixture
def client(etcd):
    """A client of the module's etcd, with the /_mgmt/ tree empty."""
    client = EtcdClient([etcd.client_url])
    client.call("kv/deleterange", {"key": "Lw==", "range_end": "MA=="})  # "/" .. "0"
    yield client
    client.close()
