"""A detached cluster's checks on IPv6 addresses (mgmt.remote.protocol.detached_etcd).

Its members are given their addresses bare (fd00::2, from --cluster-address or
SSH_CONNECTION) and the agents their seeds as URLs, in brackets
(http://[fd00::2]:2379). The probe listened with an IPv4 socket, which cannot
bind an IPv6 address, and reachable() dialled "[fd00::2]", brackets and all:
both said the network was at fault on a network that was fine.
"""

from __future__ import annotations

import socket
import threading

import pytest

from mgmt.remote.protocol import detached_etcd
from support.polling import wait_for


def _listener(address: str = "::1") -> socket.socket:
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        listener.bind((address, 0))
    except OSError:
        listener.close()
        pytest.skip("no IPv6 loopback here")
    listener.listen(4)
    return listener


def _free_port() -> int:
    with _listener() as probe:
        return probe.getsockname()[1]


def _reached(target: tuple) -> bool:
    try:
        socket.create_connection(target, 0.5).close()
    except OSError:
        return False
    return True


def test_a_seed_on_an_ipv6_address_is_reachable():
    with _listener() as member:
        url = f"http://[::1]:{member.getsockname()[1]}"
        assert detached_etcd.reachable([url], timeout=2.0) == url


def test_an_ipv6_seed_that_nothing_listens_on_is_not_reachable():
    url = f"http://[::1]:{_free_port()}"
    assert detached_etcd.reachable([url], timeout=0.3) is None


def test_a_member_on_an_ipv6_address_probes_its_peers():
    other = _listener()  # the other member's peer port, reached at once
    client, peer = _free_port(), _free_port()
    errors = []
    done = threading.Event()

    def probe():
        try:
            # The other member as the user may spell it: 0:0::1 is ::1.
            others = [("0:0::1", other.getsockname()[1])]
            detached_etcd.probe_peers("::1", [client, peer], others, 10.0)
        except Exception as err:
            errors.append(err)
        done.set()

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        # The other member reaches this one's peer port, once it listens (or the
        # probe ended: it could not listen).
        assert wait_for(lambda: done.is_set() or _reached(("::1", peer)), 10)
        assert done.wait(10), "the probe waited for a member that had reached it"
        assert errors == []
    finally:
        other.close()
        thread.join(15)
