"""Detached clusters (issue 14): ``mgmt run --remote ... --detach``, then the cluster
lives on without the initiator; ``mgmt status`` and ``mgmt stop``.

Three throw-away hosts on one bridge (they reach each other, as a cluster's
hosts must), the write-up's graphs on a and b and a third like them on c.
Everything is asserted after the initiator has exited.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from remote_helpers import (
    MGMT,
    Initiator,
    assert_clean,
    cluster_command,
    file_graph,
    graph_for,
    login_umask,
    mgmt_run,
    need_hosts,
    save_graph,
    slow_etcd,
    slow_python,
    summary,
    wait_until,
)

from support.hosts import ssh_hosts

STATE = "/root/.local/state/mgmt/detached"
DETACHED_GRAPH = f"{STATE}/graphs/remote2a.yaml"  # the graph host a's cluster agent runs
GRAPH_C = """\
graph: mygraph
comment: remote example, host c
resources:
  file:
  - name: file1c
    path: "/tmp/file1c"
    content: |
      i am file1c
    state: exists
  - name: "@@file2c"
    path: "/tmp/file2c"
    content: |
      i am file2c, exported from host c
    state: exists
collect:
- kind: file
  pattern: "/tmp/"
edges: []
remote: c
"""
EXPORTED = {
    "file2a": "i am file2a, exported from host a\n",
    "file2b": "i am file2b, exported from host b\n",
    "file2c": "i am file2c, exported from host c\n",
}


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "b", "c"], bridge=True) as hosts:
        yield hosts


def _graphs(tmp_path):
    c = tmp_path / "remote2c.yaml"
    c.write_text(GRAPH_C)
    return [
        graph_for("remote2a.yaml", "a", tmp_path),
        graph_for("remote2b.yaml", "b", tmp_path),
        c,
    ]


def _edit_graph(host, graph_name: str, old: str, new: str) -> None:
    """Edit the graph ``host``'s detached agent runs (as JSON, as it was sent), in place."""
    path = f"{STATE}/graphs/{graph_name}"
    text = host.read_file(path).replace(old, new)
    assert new in text
    host.run(f"cat > {path}.edit && mv {path}.edit {path}", input=text)


def _running(host, command: str) -> bool:
    """Whether the hosts' program (detached.py) runs ``command`` on ``host`` now."""
    return any(cmd.endswith(" " + command) for cmd in host.processes().values())


def _content(host, path: str) -> str:
    return host.read_file(path) if host.exists(path) else ""


def test_detached_cluster_lives_on_after_the_initiator(pool, bundle, tmp_path):
    graphs = _graphs(tmp_path)
    a, b, c = pool["a"], pool["b"], pool["c"]
    try:
        done = mgmt_run(pool, bundle, graphs, "--detach", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "cluster handed over: 3 host(s)" in done.stdout
        assert "mgmt stop --remote" in done.stdout
        # The agents' output was shown live until the hand-over, as in an attached run.
        assert re.search(r"^b \| .*This is: mgmt", done.stdout, re.M), done.stdout
        # The launcher's protocol line (its Python) is shown in words.
        assert re.search(r"^b \| running on Python 3\.\d+\.\d+ \(/", done.stdout, re.M)
        assert "@@mgmt" not in done.stdout, done.stdout
        # What holds the cluster's credentials is the login user's alone.
        modes = a.run(f"stat -c %a {STATE} {STATE}/agent.in {STATE}/root.json").stdout.split()
        assert modes == ["700", "600", "600"]
        # Members talk TLS and take only peers with a certificate of the cluster's CA.
        peers = f"https://{b.address}:2380/members"
        curl = f"curl --http1.1 -s -m 5 -o /dev/null -w %{{http_code}} --cacert {STATE}/peer-ca.pem"
        mine = f"--cert {STATE}/peer-cert.pem --key {STATE}/peer-key.pem"
        assert a.run(f"{curl} {mine} {peers}").stdout == "200"
        assert a.run(f"{curl} {peers}", check=False).returncode != 0  # no certificate: refused
        plain = a.run(f"curl -s -m 5 http://{b.address}:2380/members", check=False)
        assert '"peerURLs"' not in plain.stdout
        # Converged before the hand-over: every host holds everyone's exports.
        for host in (a, b, c):
            own = f"file1{host.name}"
            assert host.read_file(f"/tmp/{own}") == f"i am {own}\n"
            for name, text in EXPORTED.items():
                assert host.read_file(f"/tmp/{name}") == text, (host.name, name)

        # The initiator is gone: drift is still undone...
        a.run("echo tampered > /tmp/file1a")
        wait_until(lambda: a.read_file("/tmp/file1a") == "i am file1a\n", 20, "file1a restored")
        # ...and a changed export on a reaches b and c through the hosts' own etcd.
        _edit_graph(a, "remote2a.yaml", "exported from host a", "edited on host a")
        for host in (b, c):
            wait_until(
                lambda host=host: "edited on host a" in _content(host, "/tmp/file2a"),
                20,
                f"the edited export of a on {host.name}",
            )

        # An agent that dies is started again by its supervisor, and works on.
        first = int(b.read_file(f"{STATE}/agent.pid"))
        b.run(["kill", "-KILL", str(first)])
        wait_until(
            lambda: int(b.read_file(f"{STATE}/agent.pid")) != first, 20, "b's agent restarted"
        )
        b.run("echo tampered > /tmp/file1b")
        wait_until(lambda: b.read_file("/tmp/file1b") == "i am file1b\n", 30, "file1b restored")
        assert b.read_file(f"{STATE}/agent.exit").strip() == "-9"

        status = cluster_command(pool, bundle, "status", graphs)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "@@mgmt" not in status.stdout, status.stdout
        rows = [line for line in status.stdout.splitlines() if not line.startswith(" ")]
        lines = {line.split(":")[0]: line for line in rows}
        assert set(lines) == {"a", "b", "c"}, status.stdout
        for line in lines.values():
            assert "agent running" in line and "converged" in line, line
            assert "etcd member healthy" in line, line  # three hosts: three members

        # One member killed (its supervisor first, so it is not restarted): the
        # exchange goes on with the other two.
        pids = c.run(f"cat {STATE}/etcd.sup {STATE}/etcd.pid").stdout.split()
        # A member lives on for months: it compacts its history as the initiator's does.
        argv = c.run(f"tr '\\0' '\\n' < /proc/{pids[1]}/cmdline").stdout.splitlines()
        assert "--auto-compaction-retention=1h" in argv, argv
        c.run(["kill", "-KILL", *pids])
        _edit_graph(a, "remote2a.yaml", "edited on host a", "edited again on host a")
        for host in (b, c):
            wait_until(
                lambda host=host: "edited again on host a" in _content(host, "/tmp/file2a"),
                30,
                f"the second edit of a's export on {host.name}, with a member down",
            )
        status = cluster_command(pool, bundle, "status", graphs)
        assert "etcd member NOT RUNNING" in status.stdout.split("\nc: ")[1], status.stdout
        # The agents all run, yet the cluster has lost a member: a check must see it.
        assert status.returncode == 1, status.stdout
    finally:
        stop = cluster_command(pool, bundle, "stop", graphs)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "a: stopped agent, etcd" in stop.stdout, stop.stdout
    for host in (a, b, c):
        assert_clean(host)
        assert not host.exists("/root/.local/state/mgmt"), host.name
        assert host.listdir("/root/.cache/mgmt/bundles") == [f"{_sha(bundle)}.pyz"]
    # Nothing left to stop, and status says there is no cluster.
    again = cluster_command(pool, bundle, "status", graphs)
    assert again.returncode == 1 and "a: no detached cluster" in again.stdout, again.stdout


def _sha(bundle) -> str:
    return _sha_of(bundle)


def test_attach_pushes_an_edited_graph_then_detaches_again_or_stops(pool, bundle, tmp_path):
    a, b = pool["a"], pool["b"]
    graphs = _graphs(tmp_path)[:2]
    try:
        # --converged-timeout 0: handed over at once, without waiting for convergence.
        done = mgmt_run(pool, bundle, graphs, "--detach", "--converged-timeout", "0")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "etcd on a (" in done.stdout and "b (" not in done.stdout  # two hosts: one member
        wait_until(lambda: _content(b, "/tmp/file2a") == EXPORTED["file2a"], 20, "a's export on b")
        again = mgmt_run(pool, bundle, graphs, "--detach")
        assert again.returncode == 1, again.stdout + again.stderr
        assert "a detached cluster already runs on a, b" in again.stderr

        graphs[0].write_text(graphs[0].read_text().replace("i am file1a", "i am file1a, edited"))
        with Initiator(pool, bundle, graphs, "--attach", "--detach") as attached:
            attached.wait_for_line(r"^a \| .*graph file .*remote2a.yaml changed", 60)
            wait_until(
                lambda: a.read_file("/tmp/file1a") == "i am file1a, edited\n", 20, "the edit on a"
            )
            # A bad edit is said and not copied: the cluster would restart its agent on it.
            attached.wait_for_line(r"attached to 2 host\(s\)", 30)  # graphs watched from here
            kept = a.read_file(DETACHED_GRAPH)
            save_graph(graphs[0], graphs[0].read_text().replace("resources:", "resources: [oops"))
            attached.wait_for_line(r"not copied: the hosts keep the graph they run", 30)
            assert a.read_file(DETACHED_GRAPH) == kept
            attached.interrupt()
            assert attached.wait(30) == 0, attached.output
        assert "detached again" in attached.output
        graphs[0].write_text(graphs[0].read_text().replace("resources: [oops", "resources:"))
        status = cluster_command(pool, bundle, "status", graphs)
        assert status.returncode == 0, status.stdout + status.stderr  # it runs on

        # Attached without --detach, ^C stops the cluster.
        with Initiator(pool, bundle, graphs, "--attach") as attached:
            attached.wait_for_line(r"attached to 2 host\(s\)", 60)
            attached.interrupt()
            assert attached.wait(60) == 0, attached.output
        assert "cluster stopped and removed" in attached.output
    finally:
        cluster_command(pool, bundle, "stop", graphs)
    for host in (a, b):
        assert_clean(host)
        assert not host.exists("/root/.local/state/mgmt"), host.name


def test_attached_to_a_cluster_with_a_rebooted_host_says_so_and_ctrl_c_stops_the_rest(
    pool, bundle, tmp_path
):
    """A host rebooted (its processes gone, its attach session too): attaching said
    nothing of it, and ^C then ended in an internal error with the others half-stopped."""
    a, b = pool["a"], pool["b"]
    graphs = _graphs(tmp_path)[:2]
    try:
        done = mgmt_run(pool, bundle, graphs, "--detach", "--converged-timeout", "0")
        assert done.returncode == 0, done.stdout + done.stderr

        def b_converged() -> bool:
            shown = cluster_command(pool, bundle, "status", graphs).stdout
            return any(x.startswith("b: agent running") and ", converged," in x
                       for x in shown.splitlines())  # fmt: skip

        wait_until(b_converged, 30, "b converged")
        b.kill_sessions()  # as a reboot would: the supervisor and its agent are gone
        status = cluster_command(pool, bundle, "status", graphs)
        assert status.returncode == 1, status.stdout
        [line] = [x for x in status.stdout.splitlines() if x.startswith("b: agent")]
        assert "NOT RUNNING" in line and ", converged," not in line, line  # its key outlived it
        with Initiator(pool, bundle, graphs, "--attach", "--detach") as again:
            again.wait_for_line(r"attached to 2 host\(s\)", 60)
            again.interrupt()
            assert again.wait(30) == 1, again.output  # it runs on, but not on b
        assert "b: the cluster's agent does not run here (the host rebooted?)" in again.output
        with Initiator(pool, bundle, graphs, "--attach") as attached:
            attached.wait_for_line(r"attached to 2 host\(s\)", 60)
            attached.interrupt()
            code = attached.wait(60)
        assert "internal error" not in attached.output, attached.output
        assert code == 0 and "cluster stopped and removed" in attached.output, attached.output
    finally:
        cluster_command(pool, bundle, "stop", graphs)
    for host in (a, b):
        assert_clean(host)
        assert not host.exists("/root/.local/state/mgmt"), host.name


def test_a_host_whose_connection_drops_while_attached_is_said_at_once(pool, bundle, tmp_path):
    """It was said only after --lost-timeout (a quiet host's deadline), if at all."""
    a, b = pool["a"], pool["b"]
    graphs = _graphs(tmp_path)[:2]
    try:
        done = mgmt_run(pool, bundle, graphs, "--detach", "--converged-timeout", "0")
        assert done.returncode == 0, done.stdout + done.stderr
        with Initiator(pool, bundle, graphs, "--attach", "--lost-timeout=300") as attached:
            attached.wait_for_line(r"attached to 2 host\(s\)", 60)
            cluster = [
                pid
                for pid, command in b.processes().items()
                if STATE in command and "agent.log" not in command  # not the attach's tail
            ]
            assert len(cluster) == 2, b.processes()  # the agent and its supervisor
            for pid, command in b.processes().items():  # the attach's sessions, not the cluster
                if command.startswith("sshd:"):
                    os.kill(pid, 9)
            line = attached.wait_for_line(r"error: b: ", 20)
            code = attached.wait(30)
        assert "b: connection lost while attached; the cluster runs on" in line, attached.output
        assert code == 1 and "Traceback" not in attached.output, attached.output
        # It runs on indeed: the cluster's processes on b, untouched.
        assert all(pid in b.processes() for pid in cluster), b.processes()
    finally:
        cluster_command(pool, bundle, "stop", graphs)
    for host in (a, b):
        assert_clean(host)


def test_a_cluster_started_beside_an_attached_run_waits_for_it_to_end(pool, bundle, tmp_path):
    """Its agent is refused while the attached run's runs (two would fight), says so
    in its log, and starts once that run has ended."""
    c = pool["c"]
    c.run("rm -f /tmp/file1c")  # made by the clusters of the tests before
    (tmp_path / "attached").mkdir()
    attached = Initiator(pool, bundle, [file_graph("c", "c", tmp_path / "attached")])
    detached = None
    try:
        wait_until(lambda: c.exists("/tmp/only-c"), 60, "the attached run's file")
        detached = Initiator(pool, bundle, [_graphs(tmp_path)[2]], "--detach")
        line = detached.wait_for_line(r"^c \| the agent did not start: ", 60)
        assert "an attached run's agent runs on this host as root (pid " in line, line
        assert not c.exists("/tmp/file1c")
        attached.interrupt()
        assert attached.wait(30) == 0, attached.output
        detached.wait_for_line(r"cluster handed over: 1 host\(s\)", 60)  # its supervisor retried
        assert detached.wait(30) == 0, detached.output
        assert c.read_file("/tmp/file1c") == "i am file1c\n"
    finally:
        attached.kill()
        if detached is not None:
            detached.kill()
        cluster_command(pool, bundle, "stop", [_graphs(tmp_path)[2]])
        c.run("rm -f /tmp/only-c")  # the next tests' attached runs make it anew
    assert_clean(c)


def test_hosts_that_cannot_reach_each_other_are_told_so_and_nothing_is_left(bundle, tmp_path):
    need_hosts()
    with ssh_hosts(["na", "nb"]) as hosts:  # no bridge: each reaches only this machine
        graphs = [
            graph_for("remote2a.yaml", "na", tmp_path),
            graph_for("remote2b.yaml", "nb", tmp_path),
        ]
        done = mgmt_run(hosts, bundle, graphs, "--detach")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "nb: agent: cannot reach the cluster's etcd at http://" in done.stderr
        assert "--cluster-address" in done.stderr
        assert "Traceback" not in done.stderr
        for host in hosts:
            assert_clean(host)
            assert not host.exists("/root/.local/state/mgmt"), host.name
        # Two members that cannot reach each other: said at once, before any etcd runs.
        done = mgmt_run(hosts, bundle, graphs, "--detach", "--cluster-size", "2")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "probe: cannot reach the cluster's other member(s) at " in done.stderr
        # An address that is not the host's own.
        done = mgmt_run(hosts, bundle, graphs, "--detach", "--cluster-address", "na=10.254.200.9")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "na: probe: cannot listen on 10.254.200.9:2379 here" in done.stderr
        for host in hosts:
            assert_clean(host)
            assert not host.exists("/root/.local/state/mgmt"), host.name


@pytest.mark.parametrize(
    ("address", "client", "peer"),
    [
        ("10.0.0.1", "http://10.0.0.1:2379", "https://10.0.0.1:2380"),
        ("fd00::1", "http://[fd00::1]:2379", "https://[fd00::1]:2380"),  # as SSH_CONNECTION has it
        ("[fd00::1]", "http://[fd00::1]:2379", "https://[fd00::1]:2380"),
    ],
)
def test_a_members_urls_hold_an_ipv6_address_in_brackets(address, client, peer):
    from mgmt.remote.orchestration.cluster import Member
    from mgmt.world.client import normalize_url

    member = Member("h", "m", address)
    assert (member.client_url, member.peer_url) == (client, peer)
    normalize_url(member.client_url)  # what the agents are given: no "bad etcd URL"


def test_bad_cluster_flags_are_input_errors(bundle, tmp_path):
    graph = graph_for("remote2a.yaml", "nowhere", tmp_path)
    for flags, message in (
        (["--cluster-address", "other=10.0.0.1"], "'other' is not a host of this run"),
        (["--cluster-address", "nowhere"], "expected HOST=ADDRESS"),
        (["--cluster-size", "2"], "--cluster-size 2: between 1 and the 1 host(s)"),
        # Its agents would never reload a graph `--attach` gives them, said copied.
        (["--no-watch"], "--no-watch cannot be used with --detach: the cluster's agents"),
    ):
        done = subprocess.run(
            [*MGMT, "run", "--tmp-prefix", "--detach", *flags, "--remote", str(graph)],
            env={**os.environ, "MGMT_BUNDLE": str(bundle)}, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr


def test_two_members_are_taken_but_said_to_survive_no_failure(tmp_path, capsys):
    from mgmt.remote.hostspec import HostSpec
    from mgmt.remote.orchestration.detach import TWO_MEMBERS, check_flags
    from mgmt.settings import Settings

    specs = [HostSpec(target=n, graph=tmp_path / f"{n}.yaml") for n in "abc"]
    check_flags(Settings(detach=True, cluster_size=2), specs)
    assert TWO_MEMBERS in capsys.readouterr().err
    check_flags(Settings(detach=True, cluster_size=3), specs)
    assert TWO_MEMBERS not in capsys.readouterr().err


def test_one_host_and_stop_without_caching_removes_the_bundle_too(pool, bundle, tmp_path):
    c = pool["c"]
    graph = _graphs(tmp_path)[2]
    try:
        done = mgmt_run(pool, bundle, [graph], "--detach")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "etcd on c (" in done.stdout
        c.run("rm -f /tmp/file1c")
        wait_until(lambda: c.exists("/tmp/file1c"), 20, "file1c made again")
        # An attached run's agent does not start beside the cluster's on c.
        attached = mgmt_run(pool, bundle, [file_graph("c", "c", tmp_path)], "--converged-timeout=1")
        assert attached.returncode == 1, attached.stdout + attached.stderr
        row = summary(attached.stdout)["c"]
        assert row[0] == "failed" and row[2].startswith(
            "a detached cluster's agent runs on this host"
        )
        assert not c.exists("/tmp/only-c")
    finally:
        stop = cluster_command(pool, bundle, "stop", [graph], "--no-caching")
    assert stop.returncode == 0 and "c: stopped agent, etcd" in stop.stdout, stop.stdout
    assert_clean(c)
    assert not c.exists("/root/.local/state/mgmt")
    assert c.listdir("/root/.cache/mgmt/bundles") == []
    assert not [d for d in c.listdir("/root/.cache/mgmt/shiv") if d.startswith(_sha(bundle))]


def test_detach_again_after_every_process_of_a_hosts_cluster_died_starts_anew(
    pool, bundle, tmp_path
):
    """All of a cluster's processes gone without a stop (a reboot without systemd)
    left its state: the next --detach started etcd on the dead cluster's data (its
    own auth on), failed with etcd's "requires authentication", and showed the dead
    agent's log again as the new one's."""
    c = pool["c"]
    graph = _graphs(tmp_path)[2]
    try:
        first = mgmt_run(pool, bundle, [graph], "--detach")
        assert first.returncode == 0, first.stdout + first.stderr
        c.kill_sessions()
        assert not [cmd for cmd in c.processes().values() if "etcd" in cmd or "-S" in cmd]
        c.run(f"echo 'a line of the dead agent' >> {STATE}/agent.log; rm -f /tmp/file1c")
        again = mgmt_run(pool, bundle, [graph], "--detach")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "c: a detached cluster that no longer runs left its state here" in again.stderr
        assert "a line of the dead agent" not in again.stdout, again.stdout
        assert c.read_file("/tmp/file1c") == "i am file1c\n"
        status = cluster_command(pool, bundle, "status", [graph])
        assert status.returncode == 0 and "c: agent running" in status.stdout, status.stdout
    finally:
        cluster_command(pool, bundle, "stop", [graph])
    assert_clean(c)
    assert not c.exists("/root/.local/state/mgmt")


def test_a_detached_agent_makes_folders_with_the_logins_umask(pool, bundle, tmp_path):
    """detached.py runs with 0077 for its own files; the agent it starts does not."""
    c = pool["c"]
    graph = tmp_path / "modes-c.yaml"
    graph.write_text(
        "graph: modes\nresources:\n  file:\n"
        "  - {name: deep, path: /tmp/only-modes/a/f, content: x}\nremote: c\n"
    )
    try:
        done = mgmt_run(pool, bundle, [graph], "--detach")
        assert done.returncode == 0, done.stdout + done.stderr
        for folder in ("/tmp/only-modes", "/tmp/only-modes/a"):
            mode = int(c.run(["stat", "-c", "%a", folder]).stdout, 8)
            assert mode == 0o777 & ~login_umask(c), (folder, oct(mode))
        assert int(c.run(["stat", "-c", "%a", STATE]).stdout, 8) == 0o700  # its own: private
    finally:
        stop = cluster_command(pool, bundle, "stop", [graph])
    assert stop.returncode == 0, stop.stdout + stop.stderr
    c.run("rm -rf /tmp/only-modes")
    assert_clean(c)


def test_a_failed_resource_fails_the_hand_over_and_status_until_an_edit_fixes_it(
    pool, bundle, tmp_path
):
    c = pool["c"]
    graph = tmp_path / "c-broken.yaml"
    graph.write_text(
        GRAPH_C.replace("resources:\n", "resources:\n  exec:\n  - {name: broken, cmd: 'false'}\n")
    )
    try:
        done = mgmt_run(pool, bundle, [graph], "--detach")
        # As an attached run: exit 1, the host and the resource named; the cluster runs on.
        assert done.returncode == 1, done.stdout + done.stderr
        assert "cluster handed over: 1 host(s)" in done.stdout
        assert "c: 1 resource(s) FAILED\n  exec[broken]: " in done.stdout, done.stdout
        assert c.read_file("/tmp/file1c") == "i am file1c\n"
        status = cluster_command(pool, bundle, "status", [graph])
        assert status.returncode == 1, status.stdout + status.stderr
        assert "agent running" in status.stdout and "  exec[broken]: " in status.stdout

        # Fixed by a graph edit on the host: the agent converges clean and says so.
        _edit_graph(c, graph.name, '"cmd": "false"', '"cmd": "true"')
        wait_until(
            lambda: cluster_command(pool, bundle, "status", [graph]).returncode == 0, 30, "status 0"
        )
        assert "FAILED" not in cluster_command(pool, bundle, "status", [graph]).stdout
    finally:
        cluster_command(pool, bundle, "stop", [graph])
    assert_clean(c)


def test_a_hand_over_interrupted_while_hosts_prepare_leaves_no_cluster_behind(
    pool, bundle, tmp_path
):
    """^C once a has prepared and while b still does: b's prepare ends first, and
    neither host is left with a cluster directory (prepare used to make one, with
    only the supervisor in it, which nothing removed). b's Python is made slow to
    start ``prepare``."""
    a, b = pool["a"], pool["b"]
    a.run("rm -rf /root/.cache/mgmt")  # made again by a's prepare
    graphs = _graphs(tmp_path)[:2]
    slow_python(b, graphs[1], "prepare) sleep 2")

    with Initiator(pool, bundle, graphs, "--detach") as run:
        wait_until(
            lambda: (
                _running(b, "prepare")
                and a.exists("/root/.cache/mgmt/bundles")
                and not _running(a, "prepare")
            ),
            30,
            "a prepared, b preparing",
        )
        run.interrupt()
        assert run.wait(60) == 130, run.output
    assert re.search(r"letting [12] host command\(s\) under way end first", run.output)
    for host in (a, b):
        assert_clean(host)
        assert not host.exists("/root/.local/state/mgmt"), (host.name, run.output)


def test_one_host_under_two_names_is_refused_before_anything_starts(pool, bundle, tmp_path):
    c = pool["c"]
    by_name = _graphs(tmp_path)[2]
    by_address = tmp_path / "c-by-address.yaml"
    by_address.write_text(GRAPH_C.replace("remote: c", f"remote: ssh://root@{c.address}"))
    done = mgmt_run(pool, bundle, [by_name, by_address], "--detach")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the same host as " in done.stderr and "fight over its resources" in done.stderr
    assert_clean(c)
    assert not c.exists("/root/.local/state/mgmt")


def test_status_and_stop_see_one_login_under_two_names_once(pool, bundle, tmp_path):
    c = pool["c"]
    by_name = _graphs(tmp_path)[2]
    by_address = tmp_path / "c-by-address.yaml"
    by_address.write_text(GRAPH_C.replace("remote: c", f"remote: ssh://root@{c.address}"))
    done = mgmt_run(pool, bundle, [by_name], "--detach")
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        status = cluster_command(pool, bundle, "status", [by_name, by_address])
        assert status.returncode == 0, status.stdout + status.stderr
        rows = [line for line in status.stdout.splitlines() if not line.startswith(" ")]
        assert rows[0].startswith("c: agent running"), status.stdout
        assert rows[1] == (
            f"{c.address}: the same login as c (root@{c.address}:22): shown under that name"
        ), status.stdout
        assert len(rows) == 2, status.stdout
    finally:
        stop = cluster_command(pool, bundle, "stop", [by_address, by_name])
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert stop.stdout.splitlines() == [
        f"{c.address}: stopped agent, etcd",
        f"c: the same login as {c.address} (root@{c.address}:22): stopped under that name",
    ], stop.stdout
    assert_clean(c)
    assert not c.exists(STATE)


def test_a_hand_over_interrupted_while_auth_waits_for_the_member_leaves_nothing(
    pool, bundle, tmp_path
):
    """^C while ``auth`` waits for the member to answer: it is let end (not cut off
    with its connection), then the member is stopped, and nothing stays. a's etcd
    is made slow to start, so that ``auth`` is still waiting at the ^C."""
    a = pool["a"]
    with slow_etcd(a):
        with Initiator(pool, bundle, _graphs(tmp_path)[:2], "--detach") as run:
            # The command running on the host, not the line logged just before it.
            wait_until(lambda: _running(a, "auth"), 30, "auth under way on a")
            run.interrupt()
            assert run.wait(60) == 130, run.output
        assert "letting 1 host command(s) under way end first" in run.output, run.output
        assert "interrupted before the hand-over; stopping what was started" in run.output
        for host in (a, pool["b"]):
            assert_clean(host)
            assert not host.exists("/root/.local/state/mgmt"), (host.name, run.output)


def test_the_graphs_python_runs_the_detached_agent_as_it_runs_an_attached_one(
    pool, bundle, tmp_path
):
    c = pool["c"]
    c.run("rm -f /tmp/file1c")  # an earlier test's
    graph = tmp_path / "c-python.yaml"
    graph.write_text("python: /nonexistent/python3\n" + GRAPH_C)
    try:
        done = mgmt_run(pool, bundle, [graph], "--detach")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "no Python at /nonexistent/python3 (python: / --python)" in done.stderr
    finally:
        cluster_command(pool, bundle, "stop", [graph])
    assert_clean(c)
    assert not c.exists("/tmp/file1c")


def test_a_member_without_etcd_gets_the_initiators_copy_cached_by_sha256(bundle, tmp_path):
    need_hosts()
    with ssh_hosts(["bare"]) as hosts:
        bare = hosts["bare"]
        # This host has no etcd: the machine's binary is masked in its mount namespace.
        bare.run("mount --bind /dev/null /usr/bin/etcd")
        assert bare.run("test -x /usr/bin/etcd", check=False).returncode != 0
        graph = graph_for("remote2a.yaml", "bare", tmp_path)
        done = mgmt_run(hosts, bundle, [graph], "--detach")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "bare: no etcd on the host; copying this one" in done.stderr
        etcd_sha = _sha_of(Path(shutil.which("etcd")).resolve())
        copy = f"/root/.cache/mgmt/etcd/{etcd_sha}"
        assert bare.exists(copy)
        assert any(copy in cmd for cmd in bare.processes().values())  # the member runs it
        status = cluster_command(hosts, bundle, "status", [graph])
        assert "etcd member healthy" in status.stdout and "mgmt 0." in status.stdout, status.stdout
        stop = cluster_command(hosts, bundle, "stop", [graph], "--no-caching")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not bare.exists(copy)  # --no-caching: the copy goes with the bundle
        assert_clean(bare)


def _sha_of(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_status_and_stop_go_on_when_a_host_cannot_be_reached(bundle, tmp_path):
    need_hosts()
    with ssh_hosts(["ua", "ub"], bridge=True) as hosts:
        ua, ub = hosts["ua"], hosts["ub"]
        graphs = [
            graph_for("remote2a.yaml", "ua", tmp_path),
            graph_for("remote2b.yaml", "ub", tmp_path),
        ]
        done = mgmt_run(hosts, bundle, graphs, "--detach")
        assert done.returncode == 0, done.stdout + done.stderr
        ub.stop_sshd()  # ub goes on running its agent, but SSH is refused
        status = cluster_command(hosts, bundle, "status", graphs)
        assert status.returncode == 1, status.stdout + status.stderr
        assert "ub: UNREACHABLE: cannot connect to" in status.stdout
        assert "ua: agent running" in status.stdout
        stop = cluster_command(hosts, bundle, "stop", graphs)
        assert stop.returncode == 1, stop.stdout + stop.stderr
        assert "ua: stopped agent, etcd" in stop.stdout
        assert "ub: UNREACHABLE, nothing stopped" in stop.stdout
        assert "Traceback" not in stop.stderr
        assert_clean(ua)


def test_one_member_for_three_hosts_restarted_when_killed_keeps_the_exchange(
    pool, bundle, tmp_path
):
    """--cluster-size 1 with three hosts: etcd runs on a alone, b and c dial it. Its
    etcd killed, the supervisor starts it again on its data, and b's edited export
    still reaches c (auth and keys kept)."""
    graphs = _graphs(tmp_path)
    a, b, c = pool["a"], pool["b"], pool["c"]
    try:
        done = mgmt_run(pool, bundle, graphs, "--detach", "--cluster-size", "1", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"etcd on a (http://{a.address}:2379)" in done.stdout, done.stdout
        assert not b.exists(f"{STATE}/etcd") and not c.exists(f"{STATE}/etcd.pid")
        for host in (a, b, c):
            for name, text in EXPORTED.items():
                assert host.read_file(f"/tmp/{name}") == text, (host.name, name)
        status = cluster_command(pool, bundle, "status", graphs)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "etcd no member here" in status.stdout.split("\nb: ")[1], status.stdout

        first = int(a.read_file(f"{STATE}/etcd.pid"))
        a.run(["kill", "-KILL", str(first)])
        wait_until(lambda: int(a.read_file(f"{STATE}/etcd.pid")) != first, 20, "etcd restarted")
        _edit_graph(b, "remote2b.yaml", "exported from host b", "edited on host b")
        wait_until(lambda: "edited on host b" in _content(c, "/tmp/file2b"), 40,
                   "b's edited export on c, through the restarted member")  # fmt: skip
        status = cluster_command(pool, bundle, "status", graphs)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "etcd member healthy" in status.stdout.split("\nb: ")[0], status.stdout
    finally:
        stop = cluster_command(pool, bundle, "stop", graphs)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    for host in (a, b, c):
        assert_clean(host)
        assert not host.exists("/root/.local/state/mgmt"), host.name
