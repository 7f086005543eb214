"""SameHostGuard: one host, whatever the graphs call it, gets one agent."""

import pytest

from mgmt.errors import RemoteError
from mgmt.remote.transport.same_host import Endpoint, Login, SameHostGuard, later_names


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


@pytest.mark.parametrize(
    ("first_hop", "hop", "why"),
    [
        (False, False, "two agents there would fight over its resources"),
        (True, False, "a host runs its graph or is the via: of others, not both"),
        (False, True, "a host runs its graph or is the via: of others, not both"),
        (True, True, "one via: host under two names"),
    ],
)
def test_the_refusal_says_how_the_two_names_were_used(first_hop, hop, why):
    guard = SameHostGuard()
    guard.claim("bastion", Endpoint.of("10.0.0.5", 22), hop=first_hop)
    with pytest.raises(RemoteError) as caught:
        guard.claim("10.0.0.5", Endpoint.of("10.0.0.5", 22), hop=hop)
    assert why in caught.value.message


def test_an_ipv6_endpoint_is_shown_in_brackets():
    assert str(Endpoint.of("fd00::5", 22)) == "[fd00::5]:22"
    assert Endpoint.of("fd00::5", 22) != Endpoint.of("fd00::6", 22)


def test_later_names_of_one_login_are_told_by_the_first_in_the_graphs_order():
    here = Endpoint.of("10.0.0.5", 22)
    logins = [
        ("web1", Login("root", here)),
        ("proxied", None),  # cannot be told: never set aside
        ("10.0.0.5", Login("root", Endpoint.of("::ffff:10.0.0.5", 22))),
        ("bob-on-web1", Login("bob", here)),  # another user: a cluster of its own
        ("proxied-too", None),
        ("web1-again", Login("root", here)),
    ]
    assert later_names(logins) == {
        "10.0.0.5": "the same login as web1 (root@10.0.0.5:22)",
        "web1-again": "the same login as web1 (root@10.0.0.5:22)",
    }
