"""Hierarchical remote execution beyond the common case: a chain three levels deep,
and a secondary whose python3 is RHEL 8's 3.6 (each in a pool of its own)."""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import pytest
from remote_helpers import (
    HIDE_PYTHONS,
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
from support.sshagent import ssh_agent


@pytest.fixture(scope="module")
def chain():
    """Three levels: s1 (reachable), m behind it, z and y behind m."""
    need_hosts()
    with ssh_hosts(["s1", "m", "z", "y"], behind={"m": "s1", "z": "m", "y": "m"}) as hosts:
        yield hosts


def test_depth_three_on_one_chain_by_ssh_config_aliases(chain, bundle, tmp_path):
    # m and z are aliases of this machine's ~/.ssh/config (HostName, Port, User):
    # the secondaries are told what they mean, nothing of its keys or ProxyJumps.
    z = chain["z"]
    graph = file_graph("z", "z", tmp_path, "deep")
    graph.write_text(graph.read_text() + "via: [s1, m]\n")
    with ssh_agent(chain.identity) as sock:
        env = {"SSH_AUTH_SOCK": sock}
        with Initiator(chain, bundle, [graph], env=env) as run:
            wait_until(lambda: has_file(z, "deep"), 60, "z applied")
            run.wait_for_line(r"^s1/m/z \| ", timeout=10)
            # Each level gets less time to stop its hosts than the level above
            # gives it: a stop reaches every level within the initiator's 10 s.
            for host, name, grace in (("s1", "via-s1.json", 7.0), ("m", "via-m.json", 4.0)):
                plan = json.loads(chain[host].run(f"cat /tmp/mgmt-*/{name}").stdout)
                assert plan["options"]["stop_grace"] == grace
            # A live edit goes down both levels.
            save_graph(graph, graph.read_text().replace("deep", "edited"))
            wait_until(lambda: has_file(z, "edited"), 30, "the edit applied on z")
            run.interrupt()
            assert run.wait(30) == 0, run.output
    rows = summary(run.output)
    assert rows["s1"][0] == rows["s1/m"][0] == rows["s1/m/z"][0] == "stopped", run.output
    assert rows["s1/m/z"][1] == "copied"
    for host in chain:
        assert_clean(host)


def test_a_result_from_two_levels_down_goes_up_at_once(chain, bundle, tmp_path):
    """m says z's result to s1 as z ends; s1 kept it until m ended, so when the
    initiator then dropped s1 (a second ^C), z, lost long before, became
    "converged, then lost via s1: dropped"."""
    z, y = chain["z"], chain["y"]
    graphs = [file_graph(name, name, tmp_path, "deep") for name in ("z", "y")]
    for graph in graphs:
        graph.write_text(graph.read_text() + "via: [s1, m]\n")
    with ssh_agent(chain.identity) as sock:
        env = {"SSH_AUTH_SOCK": sock}
        with Initiator(chain, bundle, graphs, "-v", "--lost-timeout=6", env=env) as run:
            wait_until(lambda: has_file(z, "deep") and has_file(y, "deep"), 60, "z and y")
            z.kill_sessions()  # its agent and connection gone: m finds it lost
            run.wait_for_line(r"s1/m/z: result: failed", timeout=30)  # said at once
            with sessions_frozen(chain["s1"]):  # then dropped: nothing more comes from it
                run.interrupt()
                run.wait_for_line(r"interrupted by SIGINT: stopping", timeout=10)
                run.interrupt()
                code = run.wait(30)
    assert code == 1, run.output
    rows = summary(run.output)
    assert rows["s1/m/z"][0] == "failed", run.output
    assert rows["s1/m/z"][2].startswith("lost: "), run.output
    assert rows["s1/m/y"][0] == "failed", run.output
    assert re.match(r"converged, then lost via s1: dropped", rows["s1/m/y"][2]), run.output
    for host in chain:
        wait_until(lambda h=host: not leftovers(h)["processes"], 30, f"{host.name} clean")
        host.run("rm -rf /tmp/mgmt-* /tmp/only-*")


def test_a_secondary_whose_python3_is_3_6(bundle, tmp_path):
    """RHEL 8's platform-python: the secondary mode (the fan-out, its OpenSSH runner)
    runs on it; the leaf behind it keeps this machine's python3."""
    need_hosts()
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6.*/bin/python3.6")))
    assert found, "pyenv's Python 3.6 is missing (pyenv install 3.6): secondaries run on it"
    with ssh_hosts(["r8", "leaf"], behind={"leaf": "r8"}, python3={"r8": found[-1]}) as pool:
        r8, leaf = pool["r8"], pool["leaf"]
        version = r8.run(["/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2])"])
        assert version.stdout == "(3, 6)\n"
        graph = file_graph("leaf", f"ssh://root@{leaf.address}", tmp_path, "under 3.6")
        graph.write_text(graph.read_text() + "via: r8\n")
        with ssh_agent(pool.identity) as sock:
            env = {"SSH_AUTH_SOCK": sock}
            # Cold (the secondary runs from the zip) and warm (from its unpacked copy).
            for bundle_state in ("copied", "cached"):
                done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1", env=env)
                out = done.stdout + done.stderr
                assert done.returncode == 0, out
                rows = summary(done.stdout)
                assert rows["r8"][:2] == ("converged", bundle_state), out
                assert rows[f"r8/{leaf.address}"][:2] == ("converged", bundle_state), out
        assert has_file(leaf, "under 3.6")
        # The warm start compiled the secondary's own modules with 3.6, on r8.
        cache = "/root/.cache/mgmt/shiv/*/site-packages/mgmt/remote/hierarchy/__pycache__/"
        compiled = r8.run(f"ls {cache}").stdout
        assert "secondary.cpython-36.pyc" in compiled, compiled
        for host in pool:
            assert_clean(host)


def test_a_secondary_without_a_usable_python_is_not_told_to_give_python(bundle, tmp_path):
    """--python and python: name the Python of the hosts with graphs: a secondary
    finds its own, so its failure says to install one there, not "give --python"
    (which the user then gave, and the secondary failed the same)."""
    from mgmt.remote.hierarchy.upstream import NO_PYTHON_HERE, OLD_PYTHON_HERE

    need_hosts()
    old = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7.*/bin/python2.7")))
    assert old, "pyenv's Python 2.7 is missing (pyenv install 2.7): the too-old python3"
    behind = {"l1": "nopy", "l2": "old"}
    with ssh_hosts(["nopy", "old", *behind], behind=behind, python3={"old": old[-1]}) as pool:
        pool["nopy"].run(HIDE_PYTHONS)
        graphs = []
        for leaf, secondary in behind.items():
            graph = file_graph(leaf, f"ssh://root@{pool[leaf].address}", tmp_path)
            graph.write_text(graph.read_text() + f"via: {secondary}\n")
            graphs.append(graph)
        with ssh_agent(pool.identity) as sock:
            env = {"SSH_AUTH_SOCK": sock}
            done = mgmt_run(pool, bundle, graphs, "--python=/usr/bin/python3", env=env)
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        rows = summary(done.stdout)
        assert rows["nopy"][0] == "failed" and rows["nopy"][2] == NO_PYTHON_HERE, out
        too_old = OLD_PYTHON_HERE.format(python="/usr/bin/python3 2.7.18")
        assert rows["old"][0] == "failed" and rows["old"][2] == too_old, out
        assert "give --python" not in out, out
        for leaf, secondary in behind.items():
            assert rows[f"{secondary}/{pool[leaf].address}"][2].startswith(f"via {secondary}: ")
        for host in pool:
            assert_clean(host)


def test_sudo_with_a_password_reaches_the_bottom_of_the_chain(chain, bundle, tmp_path):
    # The run's sudo token and password go down two secondaries' stdin; z's
    # agent runs as root for a login whose sudo asks.
    from support.users import sudo_users

    z = chain["z"]
    with sudo_users(["password"], Path(str(chain.identity) + ".pub")) as users:
        user = users["password"]
        graph = file_graph("z", f"ssh://{user.name}@{z.address}", tmp_path, "root at depth 3")
        graph.write_text(graph.read_text() + "via: [s1, m]\nsudo: true\n")
        with ssh_agent(chain.identity) as sock:
            env = {"SSH_AUTH_SOCK": sock}
            flags = ("--ask-sudo-password", "--converged-timeout=1")
            done = mgmt_run(chain, bundle, [graph], *flags, env=env, stdin=user.password + "\n")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert summary(done.stdout)[f"s1/m/{z.address}"][0] == "converged", out
    owner = z.run(["stat", "-c", "%U", "/tmp/only-z"]).stdout.strip()
    assert (owner, z.read_file("/tmp/only-z")) == ("root", "root at depth 3"), out
    z.run(["rm", "-f", "/tmp/only-z"])
    for host in chain:
        assert_clean(host)
