"""SameHostGuard: one host, whatever the graphs call it, gets one agent."""

import pytest

from mgmt.errors import RemoteError
from mgmt.remote.transport.same_host import Endpoint, SameHostGuard


def test_the_second_name_for_an_endpoint_is_refused_naming_the_first():
    guard = SameHostGuard()
    guard.claim("web1", Endpoint.of("10.0.0.5", 22))
    guard.claim("web1", Endpoint.of("10.0.0.5", 22))  # the same host connecting again
    guard.claim("web2", Endpoint.of("10.0.0.5", 2222))  # another sshd: another host
    guard.claim("proxied", None)  # through a ProxyJump: not compared
    guard.claim("proxied-too", None)
    with pytest.raises(RemoteError) as caught:
        guard.claim("10.0.0.5", Endpoint.of("::ffff:10.0.0.5", 22))
    assert caught.value.host == "10.0.0.5"
    assert caught.value.message.startswith("the same host as web1 (both reach 10.0.0.5:22)")


def test_an_ipv6_endpoint_is_shown_in_brackets():
    assert str(Endpoint.of("fd00::5", 22)) == "[fd00::5]:22"
    assert Endpoint.of("fd00::5", 22) != Endpoint.of("fd00::6", 22)
