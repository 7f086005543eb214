"""Logging in: password in the URL, the interactive prompts (ours and fab's), ssh-agent,
and nothing to offer."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from remote_helpers import MGMT, REPO, need_hosts, summary

from mgmt.errors import RemoteError
from mgmt.remote.hostspec import parse_remote
from mgmt.remote.transport.connect import ConnectOptions, connect, run_command
from support import require_tools
from support.hosts import ssh_hosts

PASSWORD = "c0rrect horse"


@pytest.fixture(scope="module")
def host():
    need_hosts()
    with ssh_hosts(["pw"], password=PASSWORD) as pool:
        yield pool


@pytest.fixture
def keyless_home(host, tmp_path, monkeypatch):
    """A HOME that knows the host key but holds no private key (and no ssh-agent)."""
    (tmp_path / ".ssh").mkdir()
    shutil.copy(host.known_hosts, tmp_path / ".ssh" / "known_hosts")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return tmp_path


def _url(pool, password=None) -> str:
    auth = f"root:{password}" if password else "root"
    return f"ssh://{auth}@{pool['pw'].address}:22"


def test_password_from_the_url_logs_in(host, keyless_home):
    spec = parse_remote(_url(host, PASSWORD.replace(" ", "%20")), Path("g.yaml"))
    conn = connect(spec, ConnectOptions())
    try:
        assert run_command(conn, "id -u").stdout.strip() == "0"
    finally:
        conn.close()


def test_interactive_prompt_retries_until_the_password_is_right(host, keyless_home):
    asked = []

    def prompt(question: str) -> str:
        asked.append(question)
        return "wrong" if len(asked) == 1 else PASSWORD

    spec = parse_remote(_url(host), Path("g.yaml"))
    conn = connect(spec, ConnectOptions(allow_interactive=True, prompt=prompt))
    conn.close()
    assert asked == [f"Password for root@{host['pw'].address}: "] * 2


def test_without_a_prompt_a_login_with_nothing_to_offer_fails(host, keyless_home):
    spec = parse_remote(_url(host), Path("g.yaml"))
    with pytest.raises(RemoteError, match="login failed as root"):
        connect(spec, ConnectOptions())


def test_the_prompt_gives_up_after_three_tries(host, keyless_home):
    asked = []
    spec = parse_remote(_url(host), Path("g.yaml"))
    with pytest.raises(RemoteError, match="login failed"):
        connect(
            spec, ConnectOptions(allow_interactive=True, prompt=lambda q: asked.append(q) or "no")
        )
    assert len(asked) == 3


def test_a_key_held_by_ssh_agent_logs_in(host, keyless_home, tmp_path, monkeypatch):
    require_tools("ssh-agent", "ssh-add")
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        spec = parse_remote(_url(host), Path("g.yaml"))
        with pytest.raises(RemoteError, match="login failed"):
            connect(spec, ConnectOptions())  # the agent holds no key yet
        subprocess.run(["ssh-add", "-q", str(host.identity)], check=True, capture_output=True)
        conn = connect(spec, ConnectOptions())
        try:
            assert run_command(conn, "id -u").stdout.strip() == "0"
        finally:
            conn.close()
    finally:
        agent.terminate()
        agent.wait(5)


def _read_until(fd: int, text: bytes, timeout: float) -> bytes:
    """What the terminal shows until ``text`` (or its end); never blocks past ``timeout``."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, seen.decode(errors="replace")
        if not select.select([fd], [], [], left)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_fab_asks_for_the_login_password_on_the_terminal(host, keyless_home, bundle, tmp_path):
    (keyless_home / ".ssh" / "config").write_text(
        f"Host pw\n  HostName {host['pw'].address}\n  User root\n"
    )
    graph = tmp_path / "site.yaml"
    graph.write_text(
        "graph: site\nresources:\n  file:\n  - name: motd\n    path: /tmp/motd\n"
        "    content: typed\n"
    )
    argv = [str(REPO / ".venv" / "bin" / "fab"), "--prompt-for-login-password", "-H", "pw"]
    argv += ["deploy", "--graph", str(graph), "--converged-timeout", "1"]
    env = dict(os.environ, MGMT_BUNDLE=str(bundle))
    pid, terminal = pty.fork()  # fab reads the password from its controlling terminal
    if pid == 0:
        os.chdir(REPO)
        os.execve(argv[0], argv, env)
    try:
        _read_until(terminal, b"password", 30)
        os.write(terminal, PASSWORD.encode() + b"\n")
        output = _read_until(terminal, b"\x00never", 90).decode(errors="replace")
    finally:
        deadline = time.monotonic() + 30
        ended, status = os.waitpid(pid, os.WNOHANG)
        while not ended and time.monotonic() < deadline:
            time.sleep(0.05)
            ended, status = os.waitpid(pid, os.WNOHANG)
        if not ended:  # hung: never let it hang the suite
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert summary(output.replace("\r\n", "\n"))["pw"][0] == "converged", output
    assert host["pw"].read_file("/tmp/motd") == "typed"
    host["pw"].run("rm -f /tmp/motd")


# Said of a port that takes the connection and ends it before SSH's greeting.
NOT_SSH = "before SSH began (no SSH server there, or a firewall or proxy cut the connection)"


@pytest.fixture
def not_ssh(tmp_path):
    """A port that accepts and closes at once (not SSH), and a graph naming it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    closing = threading.Event()

    def serve() -> None:
        while not closing.is_set():
            with contextlib.suppress(OSError):
                server.accept()[0].close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"graph: g\nresources:\n  noop:\n  - name: n\nremote: ssh://root@127.0.0.1:{port}\n"
    )
    yield graph, port
    closing.set()
    server.close()  # accept() fails: the thread ends


@pytest.mark.parametrize("verbose", [False, True])
def test_a_port_that_is_not_ssh_fails_in_one_line_and_paramiko_speaks_only_at_v(
    not_ssh, bundle, tmp_path, verbose
):
    graph, port = not_ssh
    argv = [*MGMT, "run", "--tmp-prefix", "--remote", str(graph), "--converged-timeout=1"]
    env = dict(os.environ, MGMT_BUNDLE=str(bundle), HOME=str(tmp_path))
    done = subprocess.run(
        argv + ["-v"] * verbose, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    # paramiko's "Error reading SSH protocol banner" said neither that nor why.
    ours = f"127.0.0.1: failed: cannot connect to 127.0.0.1:{port}: "
    said = [line for line in done.stderr.splitlines() if ours in line]
    assert said and NOT_SSH in said[0], done.stderr
    assert "banner" not in summary(done.stdout)["127.0.0.1"][2], done.stdout
    # paramiko's own report of it (and its traceback): only at -v, in our format.
    banner = [line for line in done.stderr.splitlines() if "Exception (client)" in line]
    if verbose:
        assert banner and all(re.match(r"\d\d:\d\d:\d\d paramiko: ", x) for x in banner)
    else:
        assert banner == [] and "Traceback" not in done.stderr, done.stderr


def test_fab_deploy_to_a_port_that_is_not_ssh_says_it_cannot_connect(not_ssh, bundle, tmp_path):
    """The same words as mgmt run --remote: fab deploy takes the same path to the host."""
    graph, port = not_ssh
    fab = str(REPO / ".venv" / "bin" / "fab")
    argv = [
        fab,
        "-H",
        f"127.0.0.1:{port}",
        "deploy",
        "--graph",
        str(graph),
        "--converged-timeout=1",
    ]
    env = dict(os.environ, MGMT_BUNDLE=str(bundle), HOME=str(tmp_path))
    done = subprocess.run(
        argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    result, _, message = summary(done.stdout)["127.0.0.1"]
    assert result == "failed"
    assert message.startswith(f"cannot connect to 127.0.0.1:{port}: ") and NOT_SSH in message
    assert "Traceback" not in done.stderr
