"""open_world: the embedded server by default, a client of --seeds otherwise."""

from __future__ import annotations

import os
import signal
import socket
import threading

import pytest

from mgmt.errors import InputError, WorldError
from mgmt.settings import Settings
from mgmt.world import open_world
from mgmt.world.client import EtcdClient
from support import require_tools
from support.polling import wait_for


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


def _etcd_child(data_dir) -> int:
    """The pid of this process's etcd child serving ``data_dir``."""
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == os.getpid() and f"--data-dir={data_dir}".encode() in argv:
            return int(entry)
    raise AssertionError(f"no etcd child serving {data_dir}")


def test_the_embedded_etcd_killed_while_the_agent_runs_is_started_again(tmp_path, mgmt_log):
    # It stayed dead: the agent exchanged nothing for the rest of its run.
    require_tools("etcd")
    with open_world(Settings(hostname="a"), tmp_path) as world:
        world.export({("file", "f"): {"content": "before"}})
        changed = threading.Event()
        world.collect(["file"])
        world.watch_exported(changed.set)
        os.kill(_etcd_child(tmp_path / "etcd"), signal.SIGKILL)
        assert wait_for(lambda: "embedded etcd serving again" in mgmt_log.getvalue(), 20)
        assert "embedded etcd was killed by SIGKILL; starting it again" in mgmt_log.getvalue()
        # Its data is kept, and the watch carries on.
        assert [r.params for r in world.collect(["file"])] == [{"content": "before"}]
        changed.clear()
        world.export({("file", "f"): {"content": "after"}})
        assert changed.wait(10)
        assert [r.params for r in world.collect(["file"])] == [{"content": "after"}]
