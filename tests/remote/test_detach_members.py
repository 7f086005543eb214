"""``mgmt stop`` of some of a detached cluster's hosts: their etcd members leave the
cluster's membership before they stop, so the members that stay keep a quorum of
their own. Three hosts on one bridge, three members (the default for three hosts).
"""

import base64
import json

import pytest
from remote_helpers import (
    assert_clean,
    cluster_command,
    file_graph,
    graph_for,
    mgmt_run,
    need_hosts,
)

from support.hosts import ssh_hosts
from support.polling import wait_for

STATE = "/root/.local/state/mgmt/detached"


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "b", "c"], bridge=True) as hosts:
        yield hosts


def _graphs(tmp_path):
    return [
        graph_for("remote2a.yaml", "a", tmp_path),
        graph_for("remote2b.yaml", "b", tmp_path),
        file_graph("c", "c", tmp_path),
    ]


def _gateway(host, path: str, payload: dict, token: str = "") -> dict:
    """etcd's JSON gateway at ``host``'s member, asked from ``host`` itself (curl)."""
    header = f"-H 'Authorization: {token}'" if token else ""
    done = host.run(
        f"curl -s -m 10 {header} -X POST -d @- http://{host.address}:2379/v3/{path}",
        input=json.dumps(payload),
        check=False,
    )
    assert done.returncode == 0, (path, done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def _write(host, key: str, value: str) -> dict:
    """A put of ``key`` (under /_mgmt/) through ``host``'s member, as the cluster's
    agents' account (readwrite on /_mgmt/, from agent.in): etcd's answer."""
    settings = json.loads(host.read_file(f"{STATE}/agent.in").splitlines()[1])
    name, password = settings["credentials"]
    answer = _gateway(host, "auth/authenticate", {"name": name, "password": password})
    if "token" not in answer:
        return answer
    put = {"key": _b64(key), "value": _b64(value)}
    return _gateway(host, "kv/put", put, answer["token"])


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_stopping_two_of_three_hosts_leaves_the_third_a_member_alone_that_takes_writes(
    pool, bundle, tmp_path
):
    """b's and c's members stayed in the membership: a, left alone of three, had no
    quorum (a write timed out, and `mgmt status` said its member UNHEALTHY)."""
    graphs = _graphs(tmp_path)
    a, b, c = pool["a"], pool["b"], pool["c"]
    try:
        done = mgmt_run(pool, bundle, graphs, "--detach", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"c (http://{c.address}:2379)" in done.stdout, done.stdout  # three members

        stop = cluster_command(pool, bundle, "stop", graphs[1:])
        for host in (b, c):
            assert_clean(host)
            assert not host.exists("/root/.local/state/mgmt"), host.name
        _assert_alone_taking_writes(a)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "b: stopped agent, etcd; its member left the cluster" in stop.stdout, stop.stdout
        assert "c: stopped agent, etcd; its member left the cluster" in stop.stdout, stop.stdout
        assert "lacks" not in stop.stdout, stop.stdout  # a's cluster lacks none
        status = cluster_command(pool, bundle, "status", graphs[:1])
        assert status.returncode == 0, status.stdout + status.stderr
        assert "etcd member healthy" in status.stdout, status.stdout

        # Then a, alone: the cluster it is all of is stopped, its record's b and c are
        # not said to run on (they left it), and there is no member to remove.
        last = cluster_command(pool, bundle, "stop", graphs[:1])
        assert last.returncode == 0, last.stdout + last.stderr
        assert last.stdout == "a: stopped agent, etcd\n", last.stdout
        assert_clean(a)
    finally:
        stop = cluster_command(pool, bundle, "stop", graphs)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    for host in (a, b, c):
        assert_clean(host)


def test_a_stop_of_a_running_host_and_a_dead_one_removes_the_dead_member_first(
    pool, bundle, tmp_path
):
    """b and c stopped while c is down (its link cut: no one reaches it): c's member,
    dead, leaves first, while a and b still make a quorum of three; then b's, a
    quorum of two. b's first would have left a and a dead c, two members with one
    running: no quorum to remove c, nor to write."""
    graphs = _graphs(tmp_path)
    a, b, c = pool["a"], pool["b"], pool["c"]
    try:
        done = mgmt_run(pool, bundle, graphs, "--detach", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        c.link_down()
        stop = cluster_command(pool, bundle, "stop", graphs[1:], "--lost-timeout=2")
        _assert_alone_taking_writes(a)
        assert stop.returncode == 1, stop.stdout + stop.stderr  # c was not reached
        assert "b: stopped agent, etcd; its member left the cluster" in stop.stdout, stop.stdout
        said = "c: UNREACHABLE, nothing stopped; its member left the cluster: "
        assert said in stop.stdout, stop.stdout
        assert_clean(b)
    finally:
        c.link_up()
        stop = cluster_command(pool, bundle, "stop", graphs)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "c: stopped agent, etcd\n" in stop.stdout, stop.stdout  # c's member was gone already
    for host in (a, b, c):
        assert_clean(host)


def _assert_alone_taking_writes(a) -> None:
    """a's member is the cluster's only one, and takes writes (once it has elected
    itself, if a member that left led the cluster)."""
    members = _gateway(a, "cluster/member/list", {})["members"]
    assert [m["clientURLs"] for m in members] == [[f"http://{a.address}:2379"]], members
    answers = []

    def accepted() -> bool:
        answers.append(_write(a, "/_mgmt/test", "ok"))
        return "revision" in answers[-1].get("header", {})

    assert wait_for(accepted, 15), f"no write accepted by a's member: {answers[-1]}"
