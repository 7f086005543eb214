"""Exports against a stock etcd (--seeds): at most 128 operations per transaction.

The embedded etcd raises that cap, but a cluster given with --seeds keeps
etcd's default, and a host may export more than 128 resources.
"""

from __future__ import annotations

import json

import pytest

from mgmt.world.client import EtcdClient
from mgmt.world.exchange import EtcdWorld
from mgmt.world.server import EmbeddedEtcd
from support import require_tools

PREFIX = "/_mgmt/exported/big/resources/"


@pytest.fixture(scope="module")
def stock_etcd(tmp_path_factory):
    require_tools("etcd")
    # Later flags win: this puts back etcd's default cap.
    data = tmp_path_factory.mktemp("stock") / "etcd"
    with EmbeddedEtcd(data, extra_args=("--max-txn-ops", "128")) as server:
        yield server


def test_a_stock_etcd_refuses_big_transactions(stock_etcd):
    # The premise: with the cap in place, 129 puts in one transaction fail.
    from mgmt.errors import WorldError
    from mgmt.world.client import encode

    client = EtcdClient([stock_etcd.client_url])
    ops = [{"request_put": {"key": encode(f"/cap/{i}"), "value": encode("x")}} for i in range(129)]
    try:
        with pytest.raises(WorldError, match="too many operations"):
            client.txn([], ops)
    finally:
        client.close()


def test_more_than_128_exports_publish_and_unchanged_ones_write_nothing(stock_etcd):
    client = EtcdClient([stock_etcd.client_url])
    world = EtcdWorld(EtcdClient([stock_etcd.client_url]), "big")
    try:
        many = {("noop", f"r{i:03}"): {"n": i} for i in range(300)}
        world.export(many)
        revision, items = client.range(PREFIX, prefix=True)
        assert len(items) == 300

        world.export(many)  # nothing changed: no write, no watch event
        assert client.range(PREFIX, prefix=True, count_only=True)[0] == revision

        fewer = {key: value for key, value in many.items() if key[1] < "r100"}
        fewer[("noop", "r000")] = {"n": "changed"}
        world.export(fewer)
        _, items = client.range(PREFIX, prefix=True)
        stored = {key[len(PREFIX) :]: value for key, value, _ in items}
        assert len(stored) == 100
        assert json.loads(stored["noop/r000"]) == {"n": "changed"}
        assert json.loads(stored["noop/r099"]) == {"n": 99}
        assert "noop/r299" not in stored
    finally:
        world.close()
        client.close()


def test_exports_larger_together_than_one_request_publish(stock_etcd):
    # 100 files of 30 KB: each fits, but one transaction of 3 MB is over etcd's
    # --max-request-bytes (1.5 MiB by default), which refused the whole export.
    client = EtcdClient([stock_etcd.client_url])
    world = EtcdWorld(EtcdClient([stock_etcd.client_url]), "big")
    try:
        client.delete(PREFIX, prefix=True)
        files = {("file", f"f{i:03}"): {"content": f"{i}" + "y" * 30000} for i in range(100)}
        world.export(files)
        _, items = client.range(PREFIX, prefix=True)
        assert {key[len(PREFIX) :]: json.loads(value) for key, value, _ in items} == {
            f"file/{name}": params for (_kind, name), params in files.items()
        }
    finally:
        world.close()
        client.close()


def test_one_export_larger_than_a_request_is_named(stock_etcd):
    from mgmt.errors import WorldError

    client = EtcdClient([stock_etcd.client_url])
    world = EtcdWorld(EtcdClient([stock_etcd.client_url]), "big")
    try:
        client.delete(PREFIX, prefix=True)
        small = {("file", "small"): {"content": "ok"}}
        huge = {("file", "huge"): {"content": "y" * 2_000_000}}
        with pytest.raises(WorldError) as raised:
            world.export({**huge, **small})  # the large one first: the small one still goes
        message = str(raised.value)
        assert message.startswith("big: exported file[huge] is 1.9 MiB of JSON, more than etcd")
        assert "--max-request-bytes" in message and stock_etcd.client_url in message
        # What fits is published all the same.
        assert [key for key, _, _ in client.range(PREFIX, prefix=True)[1]] == [
            PREFIX + "file/small"
        ]
    finally:
        world.close()
        client.close()


def test_a_run_whose_export_never_reaches_etcd_fails_and_says_so_once(stock_etcd, tmp_path):
    # It said so every second, converged "ok" and exited 0: a fleet's check of
    # the exit code or of --json took a host whose exports nobody got for fine.
    import subprocess
    import sys

    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: '@@huge', path: /tmp/huge, content: '{'y' * 2_000_000}'}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--seeds",
         stock_etcd.client_url, "--hostname", "huge", "--tmp-prefix", "--no-watch",
         "--converged-timeout", "3", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    said = "cannot publish exported resources: huge: exported file[huge] is 1.9 MiB of JSON"
    assert done.stderr.count(said) == 2, done.stderr  # once while it runs, once at the end
    assert f"converged, but {said}" in done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "failed" and report["converged"] is True
    assert [error[: len(said)] for error in report["errors"]] == [said]
    # And a detached cluster's mgmt status, which reads etcd, says so too.
    client = EtcdClient([stock_etcd.client_url])
    try:
        failed = json.loads(client.range("/_mgmt/failed/huge")[1][0][1])
    finally:
        client.close()
    assert [(f["kind"], f["name"], f["error"][: len(said)]) for f in failed] == [
        ("graph", "g", said)
    ]


def test_exports_with_long_names_count_them_twice_in_a_request(stock_etcd):
    # 120 names of 7,000 characters: 0.85 MB of keys and values, but each key is
    # sent twice (its compare, its put), 1.7 MB: etcd refused the transaction.
    client = EtcdClient([stock_etcd.client_url])
    world = EtcdWorld(EtcdClient([stock_etcd.client_url]), "big")
    try:
        client.delete(PREFIX, prefix=True)
        world.export({("noop", f"{i:03}" + "n" * 7000): {} for i in range(120)})
        assert len(client.range(PREFIX, prefix=True)[1]) == 120
    finally:
        world.close()
        client.close()
