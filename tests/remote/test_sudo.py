"""`mgmt run --remote --sudo` as normal users: NOPASSWD, a password, requiretty, no rights.

Real users (useradd, a sudoers drop-in each: support.users) log in to real
throw-away hosts; sudo is the system's. Files are checked for content and
owner, the password for never showing in any process's command line or
environment, errors for being one line naming the host while the other host
goes on, and ^C / SIGTERM / a vanished initiator for leaving nothing behind.
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import List, Optional

import pytest
from remote_helpers import (
    MGMT,
    Initiator,
    assert_clean,
    big_bundle,
    file_graph,
    graph_for,
    need_hosts,
    password_seen,
    summary,
    wait_until,
)

from mgmt.remote.transport.sudo import NEEDS_PASSWORD, NOT_TRIED, WRONG_PASSWORD
from support import require_tools
from support.hosts import ssh_hosts
from support.users import sudo_users

FILES = {
    "file1a": "i am file1a\n",
    "file1b": "i am file1b\n",
    "file2a": "i am file2a, exported from host a\n",
    "file2b": "i am file2b, exported from host b\n",
}


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    require_tools("sudo", "useradd", "visudo")
    with ssh_hosts(["a", "b"]) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def users(pool):
    kinds = {k: k for k in ("nopasswd", "exact", "password", "requiretty", "none", "some")}
    kinds["targetpw"] = "targetpw"
    kinds["target"] = "none"  # --sudo-user's: a plain user
    with sudo_users(kinds, Path(str(pool.identity) + ".pub")) as made:
        yield made


@pytest.fixture(autouse=True)
def _clean_tmp(pool):
    yield
    for host in pool:
        host.run("rm -rf /tmp/file* /tmp/only-*", check=False)


def run_as(pool, bundle, graphs: List[Path], *flags: str, password: Optional[str] = None):
    """`mgmt run --remote` to its end, ``password`` typed at the prompt (on stdin:
    a new session has no terminal, so getpass reads stdin)."""
    argv = [*MGMT, "run", "--tmp-prefix", *flags]
    for graph in graphs:
        argv += ["--remote", str(graph)]
    return subprocess.run(
        argv,
        env=pool.env(MGMT_BUNDLE=str(bundle)),
        input=(password + "\n") if password is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        start_new_session=True,
    )


def owner_and_content(host, path: str):
    return host.run(["stat", "-c", "%U", path]).stdout.strip(), host.read_file(path)


def writeup_graphs(pool, user, tmp_path) -> List[Path]:
    a, b = pool["a"], pool["b"]
    return [
        graph_for("remote2a.yaml", f"ssh://{user.name}@{a.address}:22", tmp_path),
        graph_for("remote2b.yaml", f"ssh://{user.name}@{b.address}:22", tmp_path),
    ]


# -- the write-up's example, as each kind of user ---------------------------------


@pytest.mark.parametrize("kind", ["nopasswd", "exact", "password", "requiretty"])
def test_writeup_example_through_sudo_writes_root_owned_files(kind, pool, users, bundle, tmp_path):
    user = users[kind]
    if kind == "requiretty":  # it is in effect: without a tty, sudo refuses
        no_tty = ["setsid", "runuser", "-u", user.name, "--", "sudo", "-S", "-p", "", "true"]
        assert pool["a"].run(no_tty, check=False, input=user.password + "\n").returncode != 0
    graphs = writeup_graphs(pool, user, tmp_path)
    flags = ["--sudo", "--converged-timeout=2"]
    password = None
    if kind in ("password", "requiretty"):
        flags.append("--ask-sudo-password")
        password = user.password
    done = run_as(pool, bundle, graphs, *flags, password=password)
    assert done.returncode == 0, done.stdout + done.stderr
    a, b = pool["a"], pool["b"]
    for host, names in ((a, ("file1a", "file2a", "file2b")), (b, ("file1b", "file2a", "file2b"))):
        for name in names:
            assert owner_and_content(host, f"/tmp/{name}") == ("root", FILES[name])
        # The run dir was root's, and went; the bundle is cached in root's home, root's only.
        assert_clean(host)
        mode = host.run("stat -c '%U %a' /root/.cache/mgmt/bundles/*.pyz").stdout.split()
        assert mode == ["root", "700"]
    assert re.search(r"Running \(Python 3\.\d+, /\S+\): sudo -H -u root -- ", done.stderr)
    assert [row[0] for row in summary(done.stdout).values()] == ["converged"] * 2


def test_sudo_user_runs_the_agent_as_that_user(pool, users, bundle, tmp_path):
    login, target = users["nopasswd"], users["target"]
    a = pool["a"]
    graph = file_graph("a", f"{login.name}@{a.address}", tmp_path)
    done = run_as(pool, bundle, [graph], "--sudo-user", target.name, "--converged-timeout=1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert owner_and_content(a, "/tmp/only-a") == (target.name, "i am a")
    # Its cache is in its own home, readable by it alone.
    cached = a.run(f"stat -c '%U %a' {target.home}/.cache/mgmt/bundles/*.pyz").stdout.split()
    assert cached == [target.name, "700"]
    assert_clean(a)


def test_a_sudo_user_without_a_home_is_told_to_give_no_caching(pool, users, bundle, tmp_path):
    """nobody's home is /nonexistent (a service user's is often not its own): the bundle
    cannot be cached there, and mkdir's "Permission denied" did not say what to do."""
    login, a = users["nopasswd"], pool["a"]
    graph = file_graph("a", f"{login.name}@{a.address}", tmp_path)
    graph.write_text(graph.read_text() + "sudo: nobody\n")
    done = run_as(pool, bundle, [graph], "--converged-timeout=1")
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if f"{a.address}: failed:" in line]
    assert len(errors) == 1, done.stderr
    home = pwd.getpwnam("nobody").pw_dir  # the hosts share this machine's users
    assert errors[0].endswith(
        f"mgmt-remote: no cache in {home}/.cache/mgmt for nobody; give --no-caching"
    ), errors[0]
    assert_clean(a)
    done = run_as(pool, bundle, [graph], "--converged-timeout=1", "--no-caching")
    assert done.returncode == 0, done.stdout + done.stderr
    assert owner_and_content(a, "/tmp/only-a") == ("nobody", "i am a")
    assert_clean(a)


def test_graph_sudo_key_asks_for_sudo_per_host(pool, users, bundle, tmp_path):
    login = users["nopasswd"]
    a = pool["a"]
    graph = file_graph("a", f"{login.name}@{a.address}", tmp_path)
    graph.write_text(graph.read_text() + "sudo: true\n")
    done = run_as(pool, bundle, [graph], "--converged-timeout=1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert owner_and_content(a, "/tmp/only-a") == ("root", "i am a")


def test_the_password_is_asked_once_also_for_hosts_started_later(pool, users, bundle, tmp_path):
    user = users["password"]
    a, b = pool["a"], pool["b"]
    graphs = [file_graph(h.name, f"{user.name}@{h.address}", tmp_path) for h in (a, b)]
    flags = ["--sudo", "--ask-sudo-password", "--cconns=1", "--converged-timeout=1"]
    done = run_as(pool, bundle, graphs, *flags, password=user.password)  # one line, once
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("its slot goes to the next remote") == 1
    for host in (a, b):
        assert owner_and_content(host, f"/tmp/only-{host.name}") == ("root", f"i am {host.name}")


# -- the password stays a secret --------------------------------------------------


def test_the_password_is_in_no_command_line_or_environment(pool, users, bundle, tmp_path):
    user = users["password"]
    graphs = writeup_graphs(pool, user, tmp_path)
    argv = [*MGMT, "run", "--tmp-prefix", "--sudo", "--ask-sudo-password"]
    argv += ["--converged-timeout=2", "--remote", str(graphs[0]), "--remote", str(graphs[1])]
    proc = subprocess.Popen(
        argv,
        env=pool.env(MGMT_BUNDLE=str(bundle)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output: List[bytes] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    proc.stdin.write(user.password.encode() + b"\n")
    proc.stdin.close()
    seen, looks = [], 0
    while proc.poll() is None:  # look as often as we can for the whole run
        seen += password_seen(user.password.encode())
        looks += 1
    reader.join(5)
    text = b"".join(output).decode()
    assert proc.returncode == 0, text
    assert looks > 10 and seen == []
    assert user.password not in text


def test_a_ctrl_c_at_the_password_prompt_stops_the_run_exit_130(tmp_path):
    """getpass reads the terminal: ^C there is an interruption, not a missing password."""
    import pty

    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources: {}\nremote: ssh://root@10.254.255.1\n")
    argv = [*MGMT, "run", "--tmp-prefix", "--sudo", "--ask-sudo-password", "--remote", str(graph)]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, as a user's is
        os.execvp(argv[0], argv)
    output = b""
    while b"sudo password" not in output:
        output += os.read(terminal, 1024)
    os.write(terminal, b"\x03")
    try:
        while True:
            output += os.read(terminal, 1024)
    except OSError:  # EIO: the child has gone
        pass
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 130, output
    assert b"no password given" not in output and b"Traceback" not in output


# -- errors: one line naming the host, the other host goes on ---------------------


@pytest.mark.parametrize(
    "kind, password, expected",
    [
        ("password", "wrong-" + "x" * 8, WRONG_PASSWORD),
        ("password", None, NEEDS_PASSWORD),
        ("none", "given", "sudo refused to run commands as root for {login}: "),
        # sudo quotes the refused command (START, hundreds of lines): it is left out.
        (
            "some",
            "given",
            "sudo refused to run commands as root for {login}: Sorry, user {login} is not "
            "allowed to execute '/bin/sh -c ...' as root on ",
        ),
        # sudo's reason is not its last line there (an audit plugin's follows it).
        (
            "nopasswd",
            None,
            "sudo refused to run commands as nosuchuser for {login}: sudo: unknown user nosuchuser",
        ),
    ],
    ids=[
        "wrong-password",
        "no-password-given",
        "not-in-sudoers",
        "only-other-commands",
        "unknown-user",
    ],
)
def test_sudo_failures_are_one_line_and_the_other_host_goes_on(
    kind, password, expected, pool, users, bundle, tmp_path
):
    failing, fine = users[kind], users["nopasswd"]
    a, b = pool["a"], pool["b"]
    graphs = [
        file_graph("a", f"{failing.name}@{a.address}", tmp_path),
        file_graph("b", f"{fine.name}@{b.address}", tmp_path),
    ]
    flags = ["--sudo", "--converged-timeout=1"]
    if "nosuchuser" in expected:
        graphs[0].write_text(graphs[0].read_text() + "sudo: nosuchuser\n")
    typed = None
    if password is not None:
        flags.append("--ask-sudo-password")
        typed = failing.password if password == "given" else password
    done = run_as(pool, bundle, graphs, *flags, password=typed)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = summary(done.stdout)
    assert rows[b.address][0] == "converged"
    assert b.read_file("/tmp/only-b") == "i am b"
    assert rows[a.address][0] == "failed"
    message = expected.format(login=failing.name)
    errors = [line for line in done.stderr.splitlines() if f"{a.address}: failed:" in line]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert len(errors[0]) < 400, errors[0]  # one line a person reads, not START quoted
    assert not a.exists("/tmp/only-a")
    assert "Traceback" not in done.stderr
    assert_clean(a)
    assert_clean(b)


def test_a_wrong_password_is_tried_on_one_host_only(pool, users, bundle, tmp_path):
    """One login on every host (a directory's, as often): sudo on each counted a
    failure for a typo, and a directory locks an account after a few (IPA: 6)
    wherever they happened. The first host tries it; the others are not given it."""
    user, a, b = users["password"], pool["a"], pool["b"]
    graphs = [file_graph(h.name, f"{user.name}@{h.address}", tmp_path) for h in (a, b)]
    flags = ["--sudo", "--ask-sudo-password", "--converged-timeout=1"]
    done = run_as(pool, bundle, graphs, *flags, password="typo-" + user.password)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = {
        host.address: line.split(f"{host.address}: failed: ", 1)[1]
        for line in done.stderr.splitlines()
        for host in (a, b)
        if f"{host.address}: failed: " in line
    }
    wrong = WRONG_PASSWORD.format(login=user.name)
    tried = [address for address, error in errors.items() if error == wrong]
    assert len(errors) == 2 and len(tried) == 1, done.stderr
    other = (set(errors) - set(tried)).pop()
    assert errors[other] == NOT_TRIED.format(login=user.name, other=tried[0]), done.stderr
    for host in (a, b):
        assert not host.exists(f"/tmp/only-{host.name}")
        assert_clean(host)
    # Right, it is used everywhere, the hosts asked while the first tried it included.
    done = run_as(pool, bundle, graphs, *flags, password=user.password)
    assert done.returncode == 0, done.stdout + done.stderr
    for host in (a, b):
        assert owner_and_content(host, f"/tmp/only-{host.name}") == ("root", f"i am {host.name}")


def test_targetpw_wants_the_targets_password_and_a_wrong_one_says_whose(
    pool, users, bundle, tmp_path
):
    """Under targetpw (or rootpw, runaspw) sudo asks for another user's password
    than the login's: typing the login's was "wrong password for <login>", for
    the password the login had right. sudo's %p in the prompt names whose."""
    login, target, a = users["targetpw"], users["target"], pool["a"]
    graph = file_graph("a", f"{login.name}@{a.address}", tmp_path)
    flags = ["--sudo-user", target.name, "--ask-sudo-password", "--converged-timeout=1"]
    done = run_as(pool, bundle, [graph], *flags, password=login.password)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if f"{a.address}: failed:" in line]
    assert len(errors) == 1, done.stderr
    assert errors[0].endswith(
        f"{a.address}: failed: sudo: wrong password for {target.name} (asked again after the "
        f"one given); sudoers asks for {target.name}'s password, not {login.name}'s "
        "(targetpw, rootpw, runaspw)"
    ), errors[0]
    assert not a.exists("/tmp/only-a")
    assert_clean(a)
    done = run_as(pool, bundle, [graph], *flags, password=target.password)
    assert done.returncode == 0, done.stdout + done.stderr
    assert owner_and_content(a, "/tmp/only-a") == (target.name, "i am a")
    assert_clean(a)


def test_a_domain_login_with_an_at_in_its_name_runs_through_sudo(pool, bundle, tmp_path):
    """SSSD's fully qualified names (alice@corp.example.com: a realmd-joined RHEL's
    default) were refused as "invalid user name", in both forms ssh takes."""
    a = pool["a"]
    with sudo_users(["nopasswd"], Path(str(pool.identity) + ".pub"), realm="corp") as made:
        user = made["nopasswd"]
        login, realm = user.name.split("@")
        for remote in (f"ssh://{login}%40{realm}@{a.address}:22", f"{user.name}@{a.address}"):
            graph = file_graph("a", remote, tmp_path)
            done = run_as(pool, bundle, [graph], "--sudo", "--converged-timeout=1")
            assert done.returncode == 0, remote + "\n" + done.stdout + done.stderr
            assert owner_and_content(a, "/tmp/only-a") == ("root", "i am a")
            a.run("rm -f /tmp/only-a")
            assert_clean(a)


def _failed_with_login_shell(shell, flags, pool, users, bundle, tmp_path) -> str:
    """The one line that fails host a when its login's shell is ``shell``; the host
    is left clean and the shell put back."""
    user, a = users["nopasswd"], pool["a"]
    graph = file_graph("a", f"{user.name}@{a.address}", tmp_path)
    subprocess.run(["usermod", "-s", shell, user.name], check=True)  # the hosts share users
    try:
        done = run_as(pool, bundle, [graph], *flags, "--converged-timeout=1")
    finally:
        subprocess.run(["usermod", "-s", "/bin/sh", user.name], check=True)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if f"{a.address}: failed:" in line]
    assert len(errors) == 1, done.stderr
    assert "sudo refused" not in errors[0], errors
    assert_clean(a)
    return errors[0]


@pytest.mark.parametrize("shell", ["/usr/sbin/nologin", "/bin/false"])
@pytest.mark.parametrize("flags", [["--sudo"], []], ids=["sudo", "login"])
def test_a_login_shell_that_runs_nothing_is_said_so_not_a_sudo_refusal(
    shell, flags, pool, users, bundle, tmp_path
):
    error = _failed_with_login_shell(shell, flags, pool, users, bundle, tmp_path)
    assert "the login's shell ran nothing (is it nologin or /bin/false?)" in error, error


def test_a_restricted_login_shell_is_said_so_not_a_sudo_refusal(pool, users, bundle, tmp_path):
    """rbash refuses sudo's /bin/sh: that was worded "sudo refused to run commands"."""
    error = _failed_with_login_shell("/bin/rbash", ["--sudo"], pool, users, bundle, tmp_path)
    assert "the login's shell is restricted (rbash)" in error, error


# -- stopping: the root agent itself goes, and everything of the run --------------


def _root_agents(host) -> List[int]:
    """Agents of the run inside the host that run as root (not just sudo in front)."""
    found = []
    for pid, command in host.processes().items():
        if "mgmt-remote" in command or "run_remote_agent" in command:
            try:
                uid = Path(f"/proc/{pid}/status").read_text().split("\nUid:")[1].split()[0]
            except (OSError, IndexError):
                continue
            if uid == "0" and not command.startswith("sudo"):
                found.append(pid)
    return found


@pytest.mark.parametrize(
    "kind, how",
    [
        ("nopasswd", signal.SIGINT),
        ("nopasswd", signal.SIGTERM),
        ("nopasswd", signal.SIGKILL),
        ("requiretty", signal.SIGINT),
        ("requiretty", signal.SIGKILL),
    ],
    ids=["sigint", "sigterm", "initiator-killed", "pty-sigint", "pty-initiator-killed"],
)
def test_stopping_a_sudo_run_stops_the_root_agent_and_leaves_nothing(
    kind, how, pool, users, bundle, tmp_path
):
    user = users[kind]
    a = pool["a"]
    graph = file_graph("a", f"{user.name}@{a.address}", tmp_path)
    flags = ["--sudo"] + (["--ask-sudo-password"] if kind != "nopasswd" else [])
    with Initiator(pool, bundle, [graph], *flags, stdin=user.password + "\n") as run:
        wait_until(lambda: a.exists("/tmp/only-a"), timeout=60, what="the agent to apply")
        agents = _root_agents(a)
        assert agents, a.processes()
        run.interrupt(how)
        # The root agent itself is gone within 10 s (not only sudo in front of it).
        wait_until(lambda: not _root_agents(a), timeout=10, what="the root agent to end")
        if how != signal.SIGKILL:
            assert run.wait(30) == 0, run.output
    assert_clean(a, timeout=10)


# -- fab deploy: Fabric's own sudo conventions, the same code path -----------------

FAB = [str(Path(MGMT[0]).parent / "fab")]


def _fab(pool, bundle, *args: str, typed: str = "") -> subprocess.CompletedProcess:
    from remote_helpers import REPO

    return subprocess.run(
        [*FAB, *args],
        env=pool.env(MGMT_BUNDLE=str(bundle)),
        cwd=REPO,
        input=typed,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        start_new_session=True,  # no terminal: Invoke's getpass reads stdin
    )


def _site(tmp_path: Path) -> Path:
    graph = tmp_path / "site.yaml"
    graph.write_text(
        "graph: site\nresources:\n  file:\n  - name: motd\n    path: /tmp/motd\n"
        "    content: from fab\n"
    )
    return graph


def test_fab_deploy_takes_prompt_for_sudo_password(pool, users, bundle, tmp_path):
    user, a = users["password"], pool["a"]
    args = ["-H", f"{user.name}@{a.address}", "--prompt-for-sudo-password", "deploy", "--sudo"]
    args += ["--graph", str(_site(tmp_path)), "--converged-timeout", "1"]
    done = _fab(pool, bundle, *args, typed=user.password + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert owner_and_content(a, "/tmp/motd") == ("root", "from fab")
    assert re.search(r"Running \(Python 3\.\d+, /\S+\): sudo -H -u root -- ", done.stderr)
    a.run("rm -f /tmp/motd")
    assert_clean(a)


def test_fab_deploy_takes_sudo_password_and_user_from_its_config(pool, users, bundle, tmp_path):
    user, target, a = users["password"], users["target"], pool["a"]
    config = tmp_path / "fabric.yaml"
    config.write_text(f"sudo:\n  password: {user.password}\n  user: {target.name}\n")
    config.chmod(0o600)
    args = ["-f", str(config), "-H", f"{user.name}@{a.address}", "deploy", "--sudo"]
    args += ["--graph", str(_site(tmp_path)), "--converged-timeout", "1"]
    done = _fab(pool, bundle, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert owner_and_content(a, "/tmp/motd") == (target.name, "from fab")
    a.run("rm -f /tmp/motd")
    assert_clean(a)


# -- the OpenSSH runner (secondaries) goes through the same seam -------------------


@pytest.mark.parametrize("kind", ["nopasswd", "requiretty"])
def test_openssh_runner_runs_commands_through_sudo(kind, pool, users, monkeypatch):
    from mgmt.remote.hostspec import HostSpec
    from mgmt.remote.transport.openssh import OpenSshRunner
    from mgmt.remote.transport.runner import upload
    from mgmt.remote.transport.sudo import Sudo

    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    user, a = users[kind], pool["a"]
    spec = HostSpec(target="a", graph=Path("x.yaml"), user=user.name)  # -l beats ssh_config
    become = Sudo("a", user.name, password=user.password)
    runner = OpenSshRunner(
        spec, become=become, identity=str(pool.identity), ssh_config=str(pool.ssh_config)
    )
    try:
        done = runner.run("id -un; head -c 13", stdin=b"through sudo\n")  # a pty never says EOF
        assert (done.status, done.stdout.replace("\r\n", "\n")) == (0, "root\nthrough sudo\n")
        assert become.pty is (kind == "requiretty")
        data = bytes(range(256)) * 64  # every byte, past a pty's line discipline
        upload(runner, data, "/root/sudo-upload")
        assert a.run("sha256sum < /root/sudo-upload").stdout.split()[0] == (
            __import__("hashlib").sha256(data).hexdigest()
        )
    finally:
        a.run("rm -f /root/sudo-upload", check=False)
        runner.close()


@pytest.mark.parametrize("kind", ["nopasswd", "requiretty"])
def test_interrupting_a_bundle_copy_under_sudo_leaves_no_root_owned_state(
    kind, pool, users, tmp_path
):
    # Still being copied when ^C comes (under a pty the rest is sent as zeros: at most
    # 64 MiB of it); not all zeros: the padding must not complete it.
    size = (200 if kind == "nopasswd" else 48) * 1024 * 1024
    big = big_bundle(tmp_path / "big.pyz", size, os.urandom(4096))
    user, a = users[kind], pool["a"]
    graph = file_graph("a", f"{user.name}@{a.address}", tmp_path)
    flags = ["--sudo"] + (["--ask-sudo-password"] if kind != "nopasswd" else [])
    with Initiator(pool, big, [graph], *flags, stdin=user.password + "\n") as run:
        run.wait_for_line(r"Copying bundle", timeout=30)
        wait_until(
            lambda: any(f.startswith(".") for f in a.listdir("/root/.cache/mgmt/bundles")),
            timeout=30,
            what="a partial bundle in root's cache",
        )
        run.interrupt(signal.SIGTERM)
        assert run.wait(15) == 0, run.output
    assert summary(run.output)[a.address][0] == "stopped"
    assert_clean(a, timeout=10)  # no run dir, no partial bundle (both root's), no process
