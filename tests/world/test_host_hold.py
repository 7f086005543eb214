"""One agent at a time writes under a hostname: its hold on /_mgmt/hosts/<name>,
a key on a lease, against a real etcd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mgmt.errors import WorldError
from mgmt.world.client import EtcdClient, decode, encode
from mgmt.world.exchange import EtcdWorld
from mgmt.world.hosthold import LEASE_TTL
from support.polling import wait_until

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def world(etcd, client):
    worlds = []

    def make(hostname: str, owner: str = "") -> EtcdWorld:
        made = EtcdWorld(EtcdClient([etcd.client_url]), hostname, owner or None)
        worlds.append(made)
        return made

    yield make
    for made in worlds:
        made.close()


def exported(client, hostname: str) -> dict:
    found = client.range(f"/_mgmt/exported/{hostname}/", prefix=True)[1]
    return {key.rsplit("/", 1)[1]: json.loads(value) for key, value, _ in found}


def hold(client, hostname: str):
    """The hold's record and its lease's id, None when nobody holds the name."""
    found = client.call("kv/range", {"key": encode("/_mgmt/hosts/" + hostname)}).get("kvs", [])
    return (json.loads(decode(found[0]["value"])), found[0].get("lease")) if found else None


def test_a_second_agent_of_the_same_name_is_told_and_overwrites_nothing(world, client):
    first, second = world("web"), world("web")
    first.export({("file", "f"): {"by": "first"}})
    record, lease = hold(client, "web")
    assert record["pid"] == os.getpid() and int(lease) > 0
    with pytest.raises(WorldError) as refused:
        second.export({("file", "f"): {"by": "second"}, ("file", "g"): {}})
    message = str(refused.value)
    assert f"hostname 'web' is held by another agent (pid {os.getpid()} on" in message
    assert "give each host a --hostname of its own" in message
    assert exported(client, "web") == {"f": {"by": "first"}}
    # The first one stops: its hold goes at once, and the second one publishes.
    first.close()
    assert hold(client, "web") is None
    second.export({("file", "f"): {"by": "second"}})
    assert exported(client, "web") == {"f": {"by": "second"}}
    # Nor does an export of nothing delete the holder's keys.
    third = world("web")
    with pytest.raises(WorldError, match="is held by another agent"):
        third.export({})
    assert exported(client, "web") == {"f": {"by": "second"}}


def test_other_names_hold_apart(world, client):
    world("a").export({("noop", "x"): {}})
    world("b").export({("noop", "y"): {}})
    assert set(exported(client, "a")) == {"x"} and set(exported(client, "b")) == {"y"}


def test_the_hold_is_kept_alive_past_its_lease(world, client, etcd):
    world("kept").export({("noop", "x"): {}})
    _, lease = hold(client, "kept")

    def remaining() -> int:
        return int(client.call("lease/timetolive", {"ID": lease}).get("TTL", -1))

    seen = [remaining()]

    def renewed() -> bool:  # left to itself a lease only counts down, then the key goes
        seen.append(remaining())
        return seen[-1] > min(seen)

    wait_until(renewed, timeout=LEASE_TTL, what=f"the lease renewed (TTLs seen: {seen})")
    assert hold(client, "kept") is not None


HOLDER = """
import os, sys
from mgmt.world.client import EtcdClient
from mgmt.world.exchange import EtcdWorld
world = EtcdWorld(EtcdClient([sys.argv[1]]), "gone", sys.argv[2])
world.export({("noop", "x"): {"by": sys.argv[2]}})
print("held", flush=True)
sys.stdin.read()
"""


def killed_holder(url: str, owner: str) -> None:
    """A holder that dies without a word (SIGKILL): its lease outlives it."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, owner],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout.readline() == "held\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_dead_holders_name_is_free_once_its_lease_runs_out(world, client, etcd):
    killed_holder(etcd.client_url, "dead-agent")
    assert hold(client, "gone")[0]["owner"] == "dead-agent"
    other = world("gone", owner="another-agent")
    with pytest.raises(
        WorldError,
        match=r"If that agent is gone \(this host rebooted, say\), its hold ends within 10 s\.",
    ):
        other.export({("noop", "x"): {"by": "another"}})

    def takes_over() -> bool:
        try:
            other.export({("noop", "x"): {"by": "another"}})
        except WorldError:
            return False
        return True

    wait_until(takes_over, timeout=LEASE_TTL + 5, what="the dead holder's lease to run out")
    assert exported(client, "gone") == {"x": {"by": "another"}}
    assert hold(client, "gone")[0]["owner"] == "another-agent"


def test_the_same_agent_started_again_takes_its_hold_over_at_once(world, client, etcd):
    killed_holder(etcd.client_url, "same-agent")
    again = world("gone", owner="same-agent")
    again.export({("noop", "x"): {"by": "again"}})
    record, _lease = hold(client, "gone")
    assert record["pid"] == os.getpid()
    assert exported(client, "gone") == {"x": {"by": "again"}}


def test_an_agent_whose_lease_ran_out_takes_its_name_back_and_publishes_again(
    world, client, mgmt_log
):
    first = world("lapsed")
    first.export({("noop", "x"): {"by": "first"}})
    # Its lease ends (an etcd outage longer than the lease), another agent of the
    # name takes over and writes its own exports.
    _, lease = hold(client, "lapsed")
    client.call("lease/revoke", {"ID": lease})
    second = world("lapsed")
    second.export({("noop", "x"): {"by": "second"}})
    wait_until(lambda: "is held by another agent" in mgmt_log.getvalue(), what="the first told")
    with pytest.raises(WorldError, match="is held by another agent"):
        first.export({("noop", "x"): {"by": "first"}, ("noop", "y"): {}})
    assert exported(client, "lapsed") == {"x": {"by": "second"}}
    # The second one stops: the first takes its name back by itself (no new graph
    # comes to make it publish) and its newest exports are there again.
    second.close()
    wait_until(
        lambda: exported(client, "lapsed") == {"x": {"by": "first"}, "y": {}},
        timeout=LEASE_TTL,
        what="the first's exports published again",
    )
    assert hold(client, "lapsed")[0]["owner"] == first._hold.owner


def test_a_second_agent_of_the_same_owner_still_running_is_refused(world, client):
    world("twice", owner="one-machine").export({("noop", "x"): {}})
    with pytest.raises(WorldError, match="is held by another agent"):
        world("twice", owner="one-machine").export({("noop", "x"): {}})


def test_clones_with_the_same_exports_are_told_too(world, client):
    world("clone").export({("noop", "x"): {}})
    with pytest.raises(WorldError, match="is held by another agent"):
        world("clone").export({("noop", "x"): {}})


def test_a_hold_written_by_hand_says_it_never_ends_by_itself(world, client):
    client.put("/_mgmt/hosts/manual", json.dumps({"owner": "someone", "pid": 1}))
    with pytest.raises(WorldError) as refused:
        world("manual").export({("noop", "x"): {}})
    assert "It has no lease and never ends by itself: etcdctl del /_mgmt/hosts/manual" in str(
        refused.value
    )
