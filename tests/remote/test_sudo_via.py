"""sudo for hosts behind a secondary (via:): the user in the secondary's plan, the
token and password on its stdin only, and sudo run there as for a direct host.

The pool: two secondaries, two leaves reachable only through s1 and one through
s2; real users (support.users: NOPASSWD, and one whose sudo asks a password)
log in to the leaves through the initiator's forwarded ssh-agent.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List

import pytest
from remote_helpers import (
    MGMT,
    assert_clean,
    file_graph,
    need_hosts,
    password_seen,
    summary,
    wait_until,
)

from mgmt.remote.transport.sudo import NOT_TRIED, WRONG_PASSWORD
from support import require_tools
from support.hosts import ssh_hosts
from support.sshagent import ssh_agent
from support.users import sudo_users

LEAVES = {"l1": "s1", "l2": "s1"}
BEHIND = {**LEAVES, "l3": "s2"}


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    require_tools("sudo", "useradd", "visudo")
    with ssh_hosts(["s1", "s2", *BEHIND], behind=BEHIND) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def agent_env(pool):
    with ssh_agent(pool.identity) as sock:
        yield {"SSH_AUTH_SOCK": sock}


@pytest.fixture(scope="module")
def users(pool):
    with sudo_users(["nopasswd", "password"], Path(str(pool.identity) + ".pub")) as made:
        yield made


@pytest.fixture(autouse=True)
def _clean_tmp(pool):
    yield
    for host in pool:
        host.run("rm -rf /tmp/only-*", check=False)


def leaf_graphs(pool, users, tmp_path, content: str) -> List[Path]:
    """l1 as the NOPASSWD user, l2 as the one whose sudo asks; both behind s1."""
    graphs = []
    for leaf, kind in (("l1", "nopasswd"), ("l2", "password")):
        remote = f"ssh://{users[kind].name}@{pool[leaf].address}"
        path = file_graph(leaf, remote, tmp_path, content)
        path.write_text(path.read_text() + "via: s1\nsudo: true\n")
        graphs.append(path)
    return graphs


def start(pool, bundle, agent_env, graphs: List[Path], password: str) -> subprocess.Popen:
    argv = [*MGMT, "run", "--tmp-prefix", "--ask-sudo-password", "--converged-timeout=2"]
    for graph in graphs:
        argv += ["--remote", str(graph)]
    proc = subprocess.Popen(
        argv,
        env=pool.env(MGMT_BUNDLE=str(bundle), **agent_env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # no terminal: getpass reads stdin
    )
    proc.stdin.write(password + "\n")
    proc.stdin.close()
    return proc


def finish(proc: subprocess.Popen, timeout: float = 90) -> str:
    """The run's output once it ended by itself (killed after ``timeout``)."""
    try:
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.stdout.read()


def test_leaves_behind_a_secondary_run_through_sudo(pool, agent_env, users, bundle, tmp_path):
    password = users["password"].password
    proc = start(pool, bundle, agent_env, leaf_graphs(pool, users, tmp_path, "as root"), password)
    try:
        for leaf in LEAVES:
            wait_until(lambda n=leaf: pool[n].exists(f"/tmp/only-{n}"), 60, leaf)
        # While every level runs: the password is on no command line and in no
        # environment, on any host (they share this machine's /proc).
        assert password_seen(password.encode()) == []
    finally:
        out = finish(proc)
    assert proc.returncode == 0, out
    rows = summary(out)
    for leaf in LEAVES:
        assert rows[f"s1/{pool[leaf].address}"][0] == "converged", out
        path = f"/tmp/only-{leaf}"
        owner = pool[leaf].run(["stat", "-c", "%U", path]).stdout.strip()
        assert (owner, pool[leaf].read_file(path)) == ("root", "as root"), out
    assert "Running (Python 3." in out and "sudo -H -u root -- " in out, out
    for host in pool:
        assert_clean(host)


def test_a_wrong_password_fails_that_leaf_in_one_line_and_the_other_goes_on(
    pool, agent_env, users, bundle, tmp_path
):
    proc = start(pool, bundle, agent_env, leaf_graphs(pool, users, tmp_path, "wrong"), "nope")
    out = finish(proc)
    assert proc.returncode == 1, out
    rows = summary(out)
    assert rows[f"s1/{pool['l1'].address}"][0] == "converged", out  # NOPASSWD: no password
    failed = rows[f"s1/{pool['l2'].address}"]
    login = users["password"].name
    assert failed[0] == "failed" and WRONG_PASSWORD.format(login=login) in failed[2], out
    assert not pool["l2"].exists("/tmp/only-l2")
    for host in pool:
        assert_clean(host)


def password_graphs(pool, users, tmp_path, content: str, kind: str = "password") -> List[Path]:
    """Every leaf, behind either secondary, as one login (by default, whose sudo asks)."""
    graphs = []
    for leaf, secondary in BEHIND.items():
        remote = f"ssh://{users[kind].name}@{pool[leaf].address}"
        path = file_graph(leaf, remote, tmp_path, content)
        path.write_text(path.read_text() + f"via: {secondary}\nsudo: true\n")
        graphs.append(path)
    return graphs


def test_a_wrong_password_is_tried_once_for_the_run_not_once_per_secondary(
    pool, agent_env, users, bundle, tmp_path
):
    # One login (a directory account, say) on three leaves behind two secondaries:
    # each secondary tried the typo on one of its hosts, two failures counted
    # against the account where one is all the README allows.
    graphs = password_graphs(pool, users, tmp_path, "typo")
    out = finish(start(pool, bundle, agent_env, graphs, "nope"))
    rows = summary(out)
    leaves = {
        f"{s}/{pool[leaf].address}": rows[f"{s}/{pool[leaf].address}"] for leaf, s in BEHIND.items()
    }
    login = users["password"].name
    tried = [path for path, row in leaves.items() if WRONG_PASSWORD.format(login=login) in row[2]]
    assert len(tried) == 1, out
    assert all(row[0] == "failed" for row in leaves.values()), out
    for path, row in leaves.items():
        if path != tried[0]:  # named as the secondary of each names it: a sibling by address
            secondary, where = path.split("/")[0], tried[0]
            other = where.split("/", 1)[1] if where.startswith(secondary + "/") else where
            assert NOT_TRIED.format(login=login, other=other) in row[2], out
    for host in pool:
        assert not host.exists(f"/tmp/only-{host.name}")
        assert_clean(host)


def test_the_right_password_found_below_one_secondary_is_used_below_the_other(
    pool, agent_env, users, bundle, tmp_path
):
    graphs = password_graphs(pool, users, tmp_path, "right")
    proc = start(pool, bundle, agent_env, graphs, users["password"].password)
    out = finish(proc)
    assert proc.returncode == 0, out
    rows = summary(out)
    for leaf, secondary in BEHIND.items():
        assert rows[f"{secondary}/{pool[leaf].address}"][0] == "converged", out
        owner = pool[leaf].run(["stat", "-c", "%U", f"/tmp/only-{leaf}"]).stdout.strip()
        assert owner == "root", out
    for host in pool:
        assert_clean(host)


def test_a_secondary_whose_hosts_sudo_never_asks_lets_the_other_go_on(
    pool, agent_env, users, bundle, tmp_path
):
    # NOPASSWD below both: the secondary given the password to try first is never
    # asked for it, says so once its hosts run, and the other starts its own.
    graphs = password_graphs(pool, users, tmp_path, "no password asked", kind="nopasswd")
    proc = start(pool, bundle, agent_env, graphs, users["password"].password)
    out = finish(proc, timeout=60)
    assert proc.returncode == 0, out
    rows = summary(out)
    for leaf, secondary in BEHIND.items():
        assert rows[f"{secondary}/{pool[leaf].address}"][0] == "converged", out
    for host in pool:
        assert_clean(host)
