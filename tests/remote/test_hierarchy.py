"""Hierarchical remote execution (via:): leaves reachable only from their secondary.

The pool: a direct host, two secondaries and two leaves behind each. A leaf's
only link goes into its secondary's namespace; on this machine its address
has an unreachable route, so the initiator cannot reach it even by mistake.
The initiator's key is in a throw-away ssh-agent, forwarded to the secondaries
(no key is copied to them).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from remote_helpers import (
    EXAMPLES,
    REPO,
    Initiator,
    assert_clean,
    file_graph,
    has_file,
    leftovers,
    mgmt_run,
    need_hosts,
    save_graph,
    sessions_frozen,
    summary,
    wait_until,
)

from support.hosts import ssh_hosts
from support.polling import wait_for
from support.sshagent import ssh_agent

LEAVES = {"l1": "s1", "l2": "s1", "l3": "s2", "l4": "s2"}
LOST_VIA_S1 = re.compile(r"(converged, then lost )?via s1: ")


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["d", "s1", "s2", *LEAVES], behind=LEAVES) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def agent_env(pool):
    with ssh_agent(pool.identity) as sock:
        yield {"SSH_AUTH_SOCK": sock}


def leaf_graph(pool, name: str, directory, content: str = "") -> object:
    """A one-file graph for a leaf, reached through its secondary (by ssh_config alias)."""
    leaf = pool[name]
    path = file_graph(name, f"ssh://root@{leaf.address}", directory, content)
    path.write_text(path.read_text() + f"via: {LEAVES[name]}\n")
    return path


def path_of(pool, name: str) -> str:
    """A leaf's name in the summary and in output prefixes: secondary/address."""
    return f"{LEAVES[name]}/{pool[name].address}"


def test_the_initiator_cannot_reach_a_leaf(pool):
    assert pool["d"].run(["true"]).returncode == 0  # the direct host is up ...
    for address in (pool["l1"].address, "10.254.254.1"):  # ... a leaf, or the range, not
        with pytest.raises(OSError) as caught:
            socket.create_connection((address, 22), timeout=2)
        assert caught.value.errno == errno.EHOSTUNREACH  # at once, never out of the machine


def test_depth_two_two_secondaries_two_leaves_each(pool, agent_env, bundle, tmp_path):
    graphs = [file_graph("d", "d", tmp_path)] + [leaf_graph(pool, n, tmp_path) for n in LEAVES]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=agent_env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    rows = summary(done.stdout)
    assert rows["d"][:2] == ("converged", "copied"), out
    for secondary in ("s1", "s2"):
        assert rows[secondary][0] == "converged", out
    for name in LEAVES:
        assert rows[path_of(pool, name)][:2] == ("converged", "copied"), out
        assert pool[name].read_file(f"/tmp/only-{name}") == f"i am {name}"
        # Live output came up with the full path in front.
        assert f"{path_of(pool, name)} | " in out
    running = r"s1: Running \(Python 3\.\d+, \S+\): \S+ as the secondary of 2 host\(s\): 10\.254"
    assert re.search(running, out), out
    for host in pool:
        assert_clean(host)
    # No key was ever written to a secondary.
    for secondary in ("s1", "s2"):
        assert pool[secondary].listdir("/root/.ssh") == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_every_level_and_leaves_nothing(
    pool, agent_env, bundle, tmp_path, sig
):
    graphs = [leaf_graph(pool, n, tmp_path, f"before {sig.name}") for n in ("l1", "l3")]
    with Initiator(pool, bundle, graphs, env=agent_env) as run:
        for name in ("l1", "l3"):
            wait_until(lambda n=name: has_file(pool[n], f"before {sig.name}"), 60, name)
        run.interrupt(sig)
        assert run.wait(30) == 0, run.output
    rows = summary(run.output)
    for name in ("l1", "l3"):
        assert rows[path_of(pool, name)][0] == "stopped", run.output
    for host in pool:
        assert_clean(host)


def test_a_leaf_whose_login_shell_is_slow_is_stopped_not_lost(pool, agent_env, bundle, tmp_path):
    """The secondary asked a stopped leaf for an answer with a command, which went
    through its ~/.bashrc: one slower than 3 s (conda, nvm, a home over NFS) made a
    live leaf "lost: no answer over SSH for 3 s after the stop", and ^C exit 1."""
    leaf = pool["l1"]
    leaf.run("echo 'sleep 5' > /root/.bashrc")
    try:
        graph = leaf_graph(pool, "l1", tmp_path, "slow shell")
        with Initiator(pool, bundle, [graph], env=agent_env) as run:
            wait_until(lambda: has_file(leaf, "slow shell"), 60, "l1")
            run.interrupt()
            assert run.wait(30) == 0, run.output
    finally:
        leaf.run("rm -f /root/.bashrc")
    rows = summary(run.output)
    assert rows[path_of(pool, "l1")][0] == "stopped", run.output
    assert rows["s1"][0] == "stopped", run.output
    for host in (leaf, pool["s1"]):
        assert_clean(host)


def exchange_graph(example: str, letter: str, remote: str, directory, via: str = "") -> object:
    """The write-up's graph for host ``letter`` (a, b, c...): file1<x> here, file2<x>
    exported, every /tmp/ file collected."""
    text = (EXAMPLES / example).read_text().replace("b\n", f"{letter}\n")
    text = text.replace("2b", f"2{letter}").replace("1b", f"1{letter}")
    text = re.sub(r"(?m)^remote:.*$", f"remote: {remote}", text)
    if via:
        text += f"via: {via}\n"
    path = directory / f"remote2{letter}.yaml"
    path.write_text(text)
    return path


def _tmp_files(host) -> dict:
    return {n: host.read_file(f"/tmp/{n}") for n in host.listdir("/tmp") if n.startswith("file")}


def _anonymous_range(host, port: int) -> str:
    body = {"key": base64.b64encode(b"/_mgmt/").decode()}
    body["range_end"] = base64.b64encode(b"/_mgmt0").decode()
    url = f"http://127.0.0.1:{port}/v3/kv/range"
    return host.run(["curl", "-s", "-m", "5", "-X", "POST", url, "-d", json.dumps(body)]).stdout


def test_writeup_exchange_between_a_direct_host_and_leaves_behind_two_secondaries(
    pool, agent_env, bundle, tmp_path
):
    d, l1, l3 = pool["d"], pool["l1"], pool["l3"]
    graphs = [
        exchange_graph("remote2a.yaml", "a", "d", tmp_path),
        exchange_graph("remote2b.yaml", "b", f"ssh://root@{l1.address}", tmp_path, "s1"),
        exchange_graph("remote2b.yaml", "c", f"ssh://root@{l3.address}", tmp_path, "s2"),
    ]
    with Initiator(pool, bundle, graphs, env=agent_env) as run:
        want = {f"file2{x}" for x in "abc"}
        for host in (d, l1, l3):
            wait_until(lambda h=host: want <= set(_tmp_files(h)), 60, f"{host.name} collected")
        # The etcd tunnels on a secondary and on a leaf lead to the run's etcd, which
        # refuses a local user without the run's credentials.
        for host in (pool["s1"], l1):
            ports = [x for x in host.listeners() if x.startswith("127.0.0.1:")]
            assert ports, host.listeners()
            for port in ports:
                answer = _anonymous_range(host, int(port.rsplit(":", 1)[1]))
                assert "kvs" not in answer and "user name is empty" in answer, answer
        run.interrupt()
        assert run.wait(30) == 0, run.output
    for host, mine in ((d, "a"), (l1, "b"), (l3, "c")):
        files = _tmp_files(host)
        assert files[f"file1{mine}"] == f"i am file1{mine}\n"
        for x in "abc":
            assert files[f"file2{x}"].startswith(f"i am file2{x}, exported from host {x}")
    for host in pool:
        assert_clean(host)
        host.run("rm -f /tmp/file*")


def test_a_killed_secondary_fails_its_leaves_and_the_rest_goes_on(
    pool, agent_env, bundle, tmp_path
):
    s1, d, l1, l3 = pool["s1"], pool["d"], pool["l1"], pool["l3"]
    graphs = [file_graph("d", "d", tmp_path, "killed")]
    graphs += [leaf_graph(pool, n, tmp_path, "killed") for n in ("l1", "l3")]
    with Initiator(pool, bundle, graphs, env=agent_env) as run:
        for host in (d, l1, l3):
            wait_until(lambda h=host: has_file(h, "killed"), 60, host.name)
        s1.kill_sessions()  # the secondary, its ssh clients, START: all gone at once
        run.wait_for_line(r"s1: failed", timeout=30)
        # Its leaf is not left running: its session ended with the secondary's ssh.
        assert_clean(l1, timeout=15)
        assert d.exists("/tmp/only-d") and run.proc.poll() is None
        run.interrupt()
        assert run.wait(30) == 1, run.output
    rows = summary(run.output)
    assert rows["s1"][0] == "failed", run.output
    assert rows[path_of(pool, "l1")][0] == "failed", run.output
    # Killed once it had applied its graph: converged by then, or about to be.
    assert LOST_VIA_S1.match(rows[path_of(pool, "l1")][2]), run.output
    assert rows[path_of(pool, "l3")][0] == "stopped", run.output
    assert rows["d"][0] == "stopped", run.output
    # What was killed could not clean up after itself: its run dir and ssh
    # control dir stay on s1 (nothing runs or listens there); every other host is clean.
    # (As assert_clean does, given a moment: sshd may not have reaped what was killed.)
    only_run_dirs = lambda: [k for k, v in leftovers(s1).items() if v] == ["run dirs"]  # noqa: E731
    if not wait_for(only_run_dirs, 5):
        raise AssertionError(f"s1 holds more than its run dir: {leftovers(s1)}")
    s1.run("rm -rf /tmp/mgmt-*")
    for host in pool:
        assert_clean(host)


def test_leaves_that_converged_before_their_secondary_died_say_so(
    pool, agent_env, bundle, tmp_path
):
    """Their rows said only "failed ... via s2", as if nothing had been applied."""
    s2, l3, l4 = pool["s2"], pool["l3"], pool["l4"]
    graphs = [leaf_graph(pool, n, tmp_path, "applied") for n in ("l3", "l4")]
    with Initiator(pool, bundle, graphs, "-v", env=agent_env) as run:
        for leaf in (l3, l4):
            wait_until(lambda h=leaf: has_file(h, "applied"), 60, leaf.name)
            # Said with -v as the secondary relays it (before the fix, never: hence no assert).
            seen = rf"s2/{re.escape(leaf.address)}: converged"
            wait_for(lambda s=seen: re.search(s, run.output), 30)
        s2.kill_sessions()  # the secondary, its ssh clients, START: all gone at once
        code = run.wait(60)  # nothing left running: the run ends by itself
    assert code == 1, run.output  # a lost host fails the run, whatever it had done
    rows = summary(run.output)
    assert rows["s2"][0] == "failed", run.output
    for name in ("l3", "l4"):
        result, _bundle, message = rows[path_of(pool, name)]
        assert result == "failed", run.output
        assert message.startswith("converged, then lost via s2: "), run.output
    assert_clean(l3, timeout=15)
    assert_clean(l4, timeout=15)
    s2.run("rm -rf /tmp/mgmt-*")  # killed, it could not remove its run dir


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_secondary_whose_start_is_killed_fails_its_leaves(pool, agent_env, bundle, tmp_path):
    """START's sh killed alone: the secondary sees its upstream go and stops its
    leaves in order, but they stopped because it failed, not because asked."""
    s1, l1 = pool["s1"], pool["l1"]
    with Initiator(pool, bundle, [leaf_graph(pool, "l1", tmp_path, "start")], env=agent_env) as run:
        wait_until(lambda: has_file(l1, "start"), 60, "l1")
        shells = [p for p, cmd in s1.processes().items() if cmd.startswith("/bin/sh -c # START")]
        # START, not its guard (a subshell: the same command line, START its parent).
        starts = [p for p in shells if _parent(p) not in shells]
        assert len(starts) == 1, shells
        os.kill(starts[0], signal.SIGKILL)
        assert run.wait(30) == 1, run.output
    rows = summary(run.output)
    assert rows["s1"][0] == "failed", run.output
    assert rows[path_of(pool, "l1")][:1] == ("failed",), run.output
    # Killed once it had applied its graph: converged by then, or about to be.
    assert LOST_VIA_S1.match(rows[path_of(pool, "l1")][2]), run.output
    assert_clean(l1)
    s1.run("rm -rf /tmp/mgmt-*")


def test_a_hop_that_is_also_a_host_with_a_graph_by_another_name_is_refused(
    pool, agent_env, bundle, tmp_path
):
    """s1 by its ssh_config alias as l1's via:, and by its address with a graph of its
    own: one host, run two ways. Whichever logs in second fails, naming the first."""
    s1 = pool["s1"]
    s1.run("rm -f /tmp/only-s1*")
    own = file_graph("s1", f"ssh://root@{s1.address}", tmp_path, "s1's own")
    graphs = [own, leaf_graph(pool, "l1", tmp_path, "through s1")]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=agent_env)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = summary(done.stdout)
    refused = [why for result, _bundle, why in rows.values() if result == "failed"]
    assert any(
        why.startswith("the same host as ")
        and f"(both reach {s1.address}:22)" in why
        and "runs its graph or is the via: of others, not both" in why
        for why in refused
    ), done.stdout
    for host in pool:
        assert_clean(host)
    s1.run("rm -f /tmp/only-s1*")
    pool["l1"].run("rm -f /tmp/only-l1*")


def test_a_host_reached_through_an_alias_of_itself_is_refused(pool, agent_env, bundle, tmp_path):
    """``via: s1`` for the host s1 by its address: the same address written out
    in both places was refused as its own hop, an alias of it was not."""
    s1 = pool["s1"]
    graph = file_graph("s1-by-address", f"ssh://root@{s1.address}", tmp_path)
    graph.write_text(graph.read_text() + "via: s1\n")
    done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1", env=agent_env)
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stderr.strip().splitlines()[-1]
    assert said == (
        f"mgmt: error: {graph}: via: the host {s1.address} is reached through s1, which is "
        f"the same host (both reach {s1.address}:22): a host cannot be its own hop"
    ), said
    for host in pool:
        assert_clean(host)


def test_one_leaf_under_two_names_behind_a_secondary_is_refused(pool, agent_env, bundle, tmp_path):
    """Its address and its ssh_config alias: the secondary would start two agents there."""
    l1 = pool["l1"]
    l1.run("rm -f /tmp/only-l1*")  # an earlier test's
    by_address = leaf_graph(pool, "l1", tmp_path, "by address")
    by_alias = tmp_path / "l1-by-alias.yaml"
    by_alias.write_text(
        by_address.read_text()
        .replace(f"ssh://root@{l1.address}", "l1")
        .replace("/tmp/only-l1", "/tmp/only-l1-alias")
    )
    done = mgmt_run(pool, bundle, [by_address, by_alias], "--converged-timeout=1", env=agent_env)
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stderr.strip().splitlines()[-1]
    assert said.startswith(f"mgmt: error: {by_alias}: l1 is the same host as {l1.address}"), said
    assert f"(both reach {l1.address}:22 through s1)" in said, said
    assert not l1.exists("/tmp/only-l1") and not l1.exists("/tmp/only-l1-alias")
    for host in pool:
        assert_clean(host)


def test_a_wrong_leaf_host_key_is_refused_by_the_secondary(pool, agent_env, bundle, tmp_path):
    l2 = pool["l2"]
    impostor = pool.known_hosts_line(pool["d"]).split()[1:]  # d's key, for l2's address
    pool.known_hosts.write_text(
        "".join(pool.known_hosts_line(h) for h in pool if h is not l2)
        + f"{l2.address} {' '.join(impostor)}\n"
    )
    try:
        graphs = [leaf_graph(pool, n, tmp_path, "key") for n in ("l1", "l2")]
        done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=agent_env)
    finally:
        pool.remember_all()
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    rows = summary(done.stdout)
    assert rows[path_of(pool, "l1")][0] == "converged", out
    assert rows[path_of(pool, "l2")][0] == "failed", out
    assert f"HOST KEY CHANGED: {l2.address} showed " in out
    assert not l2.exists("/tmp/only-l2") or l2.read_file("/tmp/only-l2") != "key"
    for host in pool:
        assert_clean(host)


def test_an_unknown_leaf_is_refused_then_accepted_with_ssh_accept_new(
    pool, agent_env, bundle, tmp_path
):
    pool.forget(pool["l4"])
    try:
        graphs = [leaf_graph(pool, "l4", tmp_path, "new")]
        done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=agent_env)
        assert done.returncode == 1, done.stdout + done.stderr
        assert summary(done.stdout)[path_of(pool, "l4")][0] == "failed"
        done = mgmt_run(
            pool, bundle, graphs, "--converged-timeout=1", "--ssh-accept-new", env=agent_env
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert pool["l4"].read_file("/tmp/only-l4") == "new"
        # As for a direct host, the key is now in the initiator's known_hosts, and
        # a run without --ssh-accept-new checks it.
        assert pool.known_hosts_line(pool["l4"]) in pool.known_hosts.read_text()
        assert "added new host key" in done.stderr + done.stdout
        done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", env=agent_env)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        pool.remember_all()
    for host in pool:
        assert_clean(host)


def test_saving_a_leaf_graph_on_the_initiator_reaches_the_leaf(pool, agent_env, bundle, tmp_path):
    l2 = pool["l2"]
    graph = leaf_graph(pool, "l2", tmp_path, "first")
    with Initiator(pool, bundle, [graph], env=agent_env) as run:
        wait_until(lambda: has_file(l2, "first"), 60, "the first graph applied")
        save_graph(graph, graph.read_text().replace("first", "edited"))
        wait_until(lambda: has_file(l2, "edited"), 30, "the edit applied on the leaf")
        run.wait_for_line(rf"^{re.escape(path_of(pool, 'l2'))} \| .*only-l2", timeout=10)
        run.wait_for_line(r"Copied over new graph definition: .*only-l2\.yaml", timeout=10)
        # The initiator names the user's file, not the plan it sends the secondary.
        mine = rf"remote: s1: Copied over new graph definition: {re.escape(str(graph))}$"
        run.wait_for_line(mine, timeout=10)
        run.interrupt()
        code = run.wait(30)
    assert code == 0, run.output
    for host in pool:
        assert_clean(host)


def test_a_leafs_edit_goes_down_while_a_sibling_below_the_same_secondary_is_broken(
    pool, agent_env, bundle, tmp_path
):
    """Both graphs travel in s1's plan: l1's bad file held l2's edit back."""
    l1, l2 = pool["l1"], pool["l2"]
    one, two = leaf_graph(pool, "l1", tmp_path, "first"), leaf_graph(pool, "l2", tmp_path, "first")
    with Initiator(pool, bundle, [one, two], env=agent_env) as run:
        wait_until(lambda: has_file(l1, "first") and has_file(l2, "first"), 60, "both applied")
        save_graph(one, one.read_text() + "  : : bad\n")
        run.wait_for_line(r"only-l1\.yaml:\d+: YAML syntax error", timeout=10)
        save_graph(two, two.read_text().replace("first", "edited"))
        wait_until(lambda: has_file(l2, "edited"), 30, "l2's edit applied")
        assert has_file(l1, "first")  # l1 keeps the graph it runs
        run.interrupt()
        code = run.wait(30)
    assert code == 0, run.output
    for host in pool:
        assert_clean(host)


def test_an_unreachable_secondary_fails_each_of_its_hosts(pool, agent_env, bundle, tmp_path):
    graphs = [file_graph("d", "d", tmp_path, "alone")]
    nowhere = file_graph("x", "ssh://root@10.254.254.7", tmp_path)  # behind no one
    nowhere.write_text(nowhere.read_text() + "via: ssh://root@10.254.254.8\n")
    done = mgmt_run(pool, bundle, [*graphs, nowhere], "--converged-timeout=1", env=agent_env)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    rows = summary(done.stdout)
    assert rows["d"][0] == "converged", out
    assert rows["10.254.254.8"][0] == "failed", out
    assert rows["10.254.254.8/10.254.254.7"][0] == "failed", out
    assert rows["10.254.254.8/10.254.254.7"][2].startswith("via 10.254.254.8: cannot connect")


def test_cconns_applies_per_secondary_and_converged_hosts_hand_over_their_slots(
    pool, agent_env, bundle, tmp_path
):
    graphs = [leaf_graph(pool, n, tmp_path, "one at a time") for n in ("l3", "l4")]
    flags = ("--cconns=1", "--converged-timeout=1")
    done = mgmt_run(pool, bundle, graphs, *flags, env=agent_env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    rows = summary(done.stdout)
    for name in ("l3", "l4"):
        assert rows[path_of(pool, name)][0] == "converged", out
        assert has_file(pool[name], "one at a time")
    # s2 ran one leaf at a time: the first converged and gave its slot to the second.
    assert re.search(r"(?m)^s2 \| .*converged; its slot goes to the next remote", out), out
    for host in pool:
        assert_clean(host)


def test_every_level_stops_by_itself_when_the_initiator_dies(pool, agent_env, bundle, tmp_path):
    graphs = [leaf_graph(pool, n, tmp_path, "orphan") for n in ("l2", "l4")]
    run = Initiator(pool, bundle, graphs, env=agent_env)
    try:
        for name in ("l2", "l4"):
            wait_until(lambda n=name: has_file(pool[n], "orphan"), 60, name)
    finally:
        run.kill()  # SIGKILL: nothing of ours runs; the connections to s1, s2 just drop
    # Each secondary's START sees its stdin close and stops it; it stops its hosts.
    for host in pool:
        assert_clean(host, timeout=30)


def test_json_has_an_entry_per_leaf_with_its_agents_report(pool, agent_env, bundle, tmp_path):
    graphs = [leaf_graph(pool, n, tmp_path, "json") for n in ("l1", "l3")]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1", "--json", env=agent_env)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # stdout is the document and nothing else
    hosts = {h["host"]: h for h in document["hosts"]}
    assert set(hosts) == {"s1", "s2", path_of(pool, "l1"), path_of(pool, "l3")}
    for name in ("l1", "l3"):
        entry = hosts[path_of(pool, name)]
        assert entry["result"] == "converged"
        report = entry["report"]
        assert report["host"] == pool[name].address and report["status"] == "ok"
        [only] = [r for r in report["resources"] if r["kind"] == "file"]
        assert only["name"] == f"only-{name}" and only["result"] == "changed"
    assert hosts["s1"]["report"] is None  # a secondary applies no graph of its own


def test_a_secondary_killed_alone_takes_its_ssh_clients_with_it(pool, agent_env, bundle, tmp_path):
    s1, l1 = pool["s1"], pool["l1"]
    with Initiator(pool, bundle, [leaf_graph(pool, "l1", tmp_path, "alone")], env=agent_env) as run:
        wait_until(lambda: has_file(l1, "alone"), 60, "l1 applied")
        [secondary] = [
            pid
            for pid, cmd in s1.processes().items()
            if " -S -c " in cmd and "via-s1.json" in cmd and not cmd.startswith("/bin/sh")
        ]
        assert [c for c in s1.processes().values() if c.startswith("ssh ") and " -M " in c]
        os.kill(secondary, signal.SIGKILL)  # its ssh masters and clients stay... not for long
        assert run.wait(60) == 1, run.output
    rows = summary(run.output)
    assert rows["s1"][0] == "failed", run.output
    # Killed once it had applied its graph: converged by then, or about to be.
    assert LOST_VIA_S1.match(rows[path_of(pool, "l1")][2]), run.output
    for host in pool:
        assert_clean(host, timeout=15)


def test_fab_deploy_runs_graphs_with_via(pool, agent_env, bundle, tmp_path):
    graph = leaf_graph(pool, "l3", tmp_path, "from fab")
    fab = str(REPO / ".venv" / "bin" / "fab")
    done = subprocess.run(
        [fab, "deploy", "--graph", str(graph), "--converged-timeout", "1"],
        env=pool.env(MGMT_BUNDLE=str(bundle), **agent_env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary(done.stdout)[path_of(pool, "l3")][0] == "converged", done.stdout
    assert has_file(pool["l3"], "from fab")
    for host in pool:
        assert_clean(host)


def test_without_an_ssh_agent_the_leaves_fail_saying_why(pool, bundle, tmp_path):
    done = mgmt_run(
        pool, bundle, [leaf_graph(pool, "l2", tmp_path, "no agent")], "--converged-timeout=1"
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "s1: no ssh-agent to forward (SSH_AUTH_SOCK is unset)" in out
    row = summary(done.stdout)[path_of(pool, "l2")]
    assert row[0] == "failed" and "Permission denied" in row[2], out
    for host in pool:
        assert_clean(host)


def test_a_leafs_python_key_reaches_it_through_its_secondary(pool, agent_env, bundle, tmp_path):
    chosen = leaf_graph(pool, "l1", tmp_path, "chosen python")
    chosen.write_text(chosen.read_text() + "python: /usr/bin/python3.11\n")
    missing = leaf_graph(pool, "l2", tmp_path, "missing python")
    missing.write_text(missing.read_text() + "python: /nonexistent/python3\n")
    done = mgmt_run(pool, bundle, [chosen, missing], "--converged-timeout=1", env=agent_env)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    rows = summary(done.stdout)
    assert rows[path_of(pool, "l1")][0] == "converged", out
    running = rf"{pool['l1'].address}: Running \(Python 3\.11, /usr/bin/python3\.11\):"
    assert re.search(running, out), out
    assert pool["l1"].read_file("/tmp/only-l1") == "chosen python"
    assert rows[path_of(pool, "l2")][0] == "failed", out
    assert "no Python at /nonexistent/python3" in rows[path_of(pool, "l2")][2], out
    # s1's row stands for its hosts: one of its two failed.
    assert (rows["s1"][0], rows["s1"][2]) == ("failed", "1 of 2 host(s) below failed"), out
    for host in pool:
        assert_clean(host)


@pytest.mark.parametrize("again", [False, True], ids=["interrupt", "interrupt-twice"])
def test_a_leaf_lost_before_a_stop_stays_lost(pool, agent_env, bundle, tmp_path, again):
    """Its result went up only at the secondary's end: a drop of the secondary (a
    second ^C) after the leaf was lost made it "converged, then lost via s1:
    dropped...", and a stop as the end's lines went, "stopped - never started"."""
    l1, l2 = pool["l1"], pool["l2"]
    graphs = [leaf_graph(pool, n, tmp_path, "applied") for n in ("l1", "l2")]
    with Initiator(pool, bundle, graphs, "-v", "--lost-timeout=6", env=agent_env) as run:
        wait_until(lambda: has_file(l1, "applied") and has_file(l2, "applied"), 60, "leaves")
        l1.kill_sessions()  # its agent and connection gone: the secondary finds it lost
        # Said with -v as the initiator gets it (before the fix, only at s1's end).
        run.wait_for_line(rf"s1/{re.escape(l1.address)}: result: failed", timeout=30)
        # Again: s1 frozen, then dropped, so l2's own result never comes.
        with sessions_frozen(pool["s1"]) if again else contextlib.nullcontext():
            run.interrupt()
            if again:
                run.wait_for_line(r"interrupted by SIGINT: stopping", timeout=10)
                run.interrupt()
            code = run.wait(30)
    assert code == 1, run.output
    rows = summary(run.output)
    result, _bundle, message = rows[path_of(pool, "l1")]
    assert result == "failed" and message.startswith("lost: "), run.output
    l2_row = rows[path_of(pool, "l2")]
    if again:
        assert l2_row[0] == "failed", run.output
        assert l2_row[2].startswith("converged, then lost via s1: dropped: "), run.output
    else:
        assert l2_row[0] == "stopped", run.output
    assert rows["s1"][0] == "failed", run.output
    for host in (pool["s1"], l1, l2):
        wait_until(lambda h=host: not leftovers(h)["processes"], 30, f"{host.name} clean")
    for host in (pool["s1"], l1, l2):
        host.run("rm -rf /tmp/mgmt-* /tmp/only-*")
