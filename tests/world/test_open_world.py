"""open_world: the embedded server by default, a client of --seeds otherwise."""

from __future__ import annotations

import socket

import pytest

from mgmt.errors import InputError, WorldError
from mgmt.settings import Settings
from mgmt.world import open_world
from mgmt.world.client import EtcdClient
from support import require_tools


def test_embedded_server_for_the_run(tmp_path):
    require_tools("etcd")
    with open_world(Settings(hostname="a"), tmp_path) as world:
        world.export({("file", "f"): {"content": "x"}})
        world.set_converged(True)
        url = world.client.url
        assert url.startswith("http://127.0.0.1:")
        assert [r.name for r in world.collect(["file"])] == ["f"]
        assert world.converged_hosts() == {"a": True}
        assert (tmp_path / "etcd" / "member").is_dir()
    with pytest.raises(WorldError, match="cannot reach etcd"):
        EtcdClient([url], connect_timeout=1, read_timeout=1).check()


def test_hostname_defaults_to_the_machine_name(tmp_path):
    require_tools("etcd")
    with open_world(Settings(), tmp_path) as world:
        assert world.hostname == socket.gethostname()


def test_seeds_make_a_client_of_an_existing_cluster(etcd, client, tmp_path):
    settings = Settings(hostname="b", seeds=[etcd.client_url], no_server=True)
    with open_world(settings, tmp_path) as world:
        world.export({("noop", "n"): {}})
    assert not (tmp_path / "etcd").exists()
    assert client.range("/_mgmt/exported/b/resources/noop/n")[1][0][1] == "{}"


def test_no_server_without_seeds_is_an_input_error(tmp_path):
    with (
        pytest.raises(InputError, match="--no-server needs --seeds"),
        open_world(Settings(hostname="a", no_server=True), tmp_path),
    ):
        pass


def test_unreachable_seeds_are_a_clear_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with (
        pytest.raises(WorldError, match=f"cannot reach etcd at {url}"),
        open_world(Settings(hostname="a", seeds=[url]), tmp_path),
    ):
        pass
