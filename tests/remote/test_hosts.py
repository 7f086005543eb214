"""The throw-away SSH hosts themselves: isolated, reachable by alias, gone afterwards."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from remote_helpers import need_hosts, wait_until

from support.hosts import ssh_hosts

SSH = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]


def _ssh(pool, alias: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SSH, "-F", str(pool.ssh_config), alias, command],
        env=pool.env(),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


# A veth of some pool's host (support.netns names them after their namespace).
OTHER_POOLS_VETH = re.compile(r"\bdev mh[0-9a-f]+-\d+a\b")


def _ours(netns_names, addresses) -> str:
    """What is left of these hosts: their namespaces and veths, and their addresses
    unless a pool made since (in another test process) took them over."""
    text = subprocess.run(
        "ip netns list; ip -o addr; ip route", shell=True, capture_output=True, text=True
    ).stdout

    def left(line: str) -> bool:
        if any(name in line for name in netns_names):
            return True
        mentions = any(re.search(rf"\b{re.escape(a)}\b", line) for a in addresses)
        return mentions and not OTHER_POOLS_VETH.search(line)

    return "\n".join(line for line in text.splitlines() if left(line))


def test_hosts_are_separate_machines_reachable_with_plain_ssh():
    need_hosts()
    with ssh_hosts(["x", "y"]) as pool:
        x, y = pool["x"], pool["y"]
        assert x.address != y.address
        done = _ssh(pool, "x", 'echo mine > /tmp/probe; echo "$HOME"; ls -A ~; id -u')
        assert done.returncode == 0, done.stderr
        home, *rest = done.stdout.split("\n")
        assert home == "/root" and rest[0] == "0"  # a clean home: no ~/.bashrc to run
        assert x.read_file("/tmp/probe") == "mine\n"
        assert not y.exists("/tmp/probe")  # each host has its own /tmp
        assert x.listeners() == [f"{x.address}:22"]
        assert _ssh(pool, "y", "true").returncode == 0


def test_everything_is_removed_even_when_the_test_fails():
    need_hosts()
    names = addresses = []
    with pytest.raises(RuntimeError, match="boom"), ssh_hosts(2) as pool:
        names = [h.netns for h in pool]
        addresses = [h.address for h in pool]
        pool[0].run("sleep 300 >/dev/null 2>&1 &")  # a process left running inside
        raise RuntimeError("boom")
    assert names and _ours(names, addresses) == ""
    assert not pool.root.exists()


def test_password_login_uses_a_private_shadow():
    need_hosts()
    with ssh_hosts(["p"], password="t0ps3cret") as pool:
        host = pool["p"]
        assert host.url == f"ssh://root:t0ps3cret@{host.address}:22"
        shadow = host.read_file("/etc/shadow")
        with open("/etc/shadow") as real:
            assert shadow != real.read()  # only the host sees the changed hash


def test_bridged_hosts_reach_each_other_and_nothing_else_of_the_range():
    need_hosts()
    with ssh_hosts(["ba", "bb", "bc"], bridge=True) as pool:
        a, b, c = pool["ba"], pool["bb"], pool["bc"]
        # A listener on b and c, dialled from a (bash's /dev/tcp: no extra tool).
        for host in (b, c):
            host.run(f"nohup python3 -m http.server -b {host.address} 8765 >/dev/null 2>&1 &")
        for host in (b, c):
            probe = f"exec 3<>/dev/tcp/{host.address}/8765 && echo reached"

            def reached(probe=probe):
                return "reached" in a.run(["bash", "-c", probe], check=False).stdout

            wait_until(reached, 10, f"{a.name} reaching {host.name}")
        # The rest of the test range is unreachable from inside: nothing leaves.
        route = a.run(["ip", "route", "get", "10.254.200.200"], check=False)
        assert route.returncode != 0 and "no route to host" in route.stderr.lower(), route
        assert "unreachable 10.254.0.0/16" in a.run(["ip", "route"]).stdout
        assert _ssh(pool, "bb", "true").returncode == 0  # and this machine still reaches them
        names = [h.netns for h in pool]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not any(n in links for n in names)
    assert not re.search(rf"\bmb{os.getpid():x}-\d+", links), links
