"""The runner on the system's OpenSSH client (ControlMaster): the same interface
as paramiko's, against a real sshd host."""

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from remote_helpers import need_hosts, wait_until

from mgmt.errors import RemoteError
from mgmt.remote.hostspec import parse_remote
from mgmt.remote.transport.openssh import FAST_KEX, OpenSshRunner, end_ssh, kex_for
from mgmt.remote.transport.runner import HURRY_SECONDS, upload
from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a"]) as hosts:
        yield hosts


@pytest.fixture()
def runner(pool, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    spec = parse_remote("a", Path("x.yaml"), 1)  # the alias: ssh_config says the rest
    made = OpenSshRunner(spec, lost_timeout=4, ssh_config=str(pool.ssh_config))
    yield made
    made.close()


def test_runs_commands_streams_stdin_and_uploads(pool, runner):
    done = runner.run("cat; echo err >&2; exit 3", stdin=b"hello\n")
    assert (done.status, done.stdout, done.stderr) == (3, "hello\n", "err\n")
    upload(runner, b"uploaded\n", "/tmp/uploaded", 0o640)
    assert pool["a"].read_file("/tmp/uploaded") == "uploaded\n"
    assert pool["a"].run("stat -c %a /tmp/uploaded").stdout.strip() == "640"
    pool["a"].run("rm -f /tmp/uploaded")
    assert runner.lost() is None


def _ssh_clients(runner) -> list:
    """This runner's ssh processes (each names its control socket)."""
    done = subprocess.run(["pgrep", "-f", runner.socket], stdout=subprocess.PIPE, text=True)
    return done.stdout.split()


def test_the_first_command_rides_on_the_master_and_later_ones_share_its_login(pool, runner):
    first = runner.start("echo started; read line; echo got $line")
    try:
        assert first.stdout.readline() == b"started\n"
        assert len(_ssh_clients(runner)) == 1  # the master carries it: no second ssh
        assert runner.run("echo beside").stdout == "beside\n"  # through the master's socket
        first.send(b"more\n")
        assert first.stdout.readline() == b"got more\n"
        assert first.wait(10) == 0
    finally:
        first.close()
    assert runner.lost() is None  # its command ended; the connection was not lost
    assert runner.run("echo again").stdout == "again\n"  # a new login


def test_under_a_pty_a_tilde_after_a_newline_is_data_not_an_escape(pool, runner):
    """sudo's requiretty runs the hosts' commands under a pty (ssh -tt): bytes such as
    a bundle's or a password that begins with "~" must arrive as they are."""
    data = b"start\n~#\n~?\n~.\nend\n"
    command = f"stty raw -echo; echo ready; head -c {len(data)} | od -An -c"
    process = runner._start_raw(command, pty=True)
    try:
        assert process.stdout.readline().strip() == b"ready"  # raw: nothing cooked or echoed
        process.send(data)
        assert process.wait(10) == 0
        out = process.stdout.read().decode().split()
    finally:
        process.close()
    newline = "\\n"
    assert out == [
        *"start",
        newline,
        *"~#",
        newline,
        *"~?",
        newline,
        *"~.",
        newline,
        *"end",
        newline,
    ]


def test_a_host_whose_link_goes_down_is_lost(pool, runner):
    process = runner.start("sleep 600")
    pool["a"].link_down()
    try:
        status = process.wait(30)  # ServerAlive gives up after about 4 s
    finally:
        pool["a"].link_up()
        process.close()
    assert status == -1
    assert runner.lost() == "lost: the ssh master connection ended"


def test_an_unknown_host_is_refused(pool, tmp_path):
    config = tmp_path / "config"
    known = tmp_path / "known_hosts"
    config.write_text(pool.ssh_config.read_text().replace(str(pool.known_hosts), str(known)))
    spec = parse_remote("a", Path("x.yaml"), 1)
    runner = OpenSshRunner(spec, ssh_config=str(config))  # logs in with its first command
    try:
        with pytest.raises(RemoteError, match=r"ssh failed: unknown host key: your known_"):
            runner.run("true")
    finally:
        runner.close()
    assert not known.exists()  # refused, not added


def _ssh_kex(config: Path) -> list:
    done = subprocess.run(
        ["ssh", "-G", "-F", str(config), "somehost"], stdout=subprocess.PIPE, text=True, check=True
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("kexalgorithms "))
    return line.split(" ", 1)[1].split(",")


def test_curve25519_is_asked_first_and_the_rest_of_ssh_list_follows(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host *\n    LogLevel ERROR\n")
    own = _ssh_kex(config)
    if "curve25519-sha256" not in own:
        pytest.skip("this ssh has no curve25519-sha256")
    asked = kex_for(str(config)).split(",")
    assert asked[0] == "curve25519-sha256"
    assert sorted(asked) == sorted(own)  # nothing dropped, nothing added
    rest = [name for name in asked if name not in FAST_KEX]
    assert rest == [name for name in own if name not in FAST_KEX]  # in ssh's order


def test_a_config_that_names_its_own_kex_keeps_it(tmp_path):
    config = tmp_path / "config"
    config.write_text("Host x\n    KexAlgorithms ecdh-sha2-nistp256,curve25519-sha256\n")
    assert kex_for(str(config)) is None  # ssh's own choice, the file's order
    assert kex_for(None) is None  # without -F the system's files apply


def test_an_ssh_that_ignores_sigterm_is_killed(tmp_path):
    # end_ssh sends SIGTERM again until the process is gone, then SIGKILL.
    script = "trap '' TERM; echo ready; while :; do sleep 0.05; done"
    popen = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE)
    assert popen.stdout.readline() == b"ready\n"  # the trap is in place
    end_ssh(popen)
    popen.stdout.close()
    assert popen.returncode == -signal.SIGKILL


def test_a_reverse_tunnel_asked_on_the_control_socket_reaches_us(runner):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        conn.sendall(b"hello through the tunnel\n")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    tunnel = runner.tunnel(lambda: server.getsockname())
    try:
        port = tunnel.open()  # openssh_mux: no ssh started for it
        probe = f"import socket; print(socket.create_connection(('127.0.0.1', {port})).recv(99))"
        done = runner.run(f'python3 -c "{probe}"')
    finally:
        tunnel.close()
        server.close()
    assert done.stdout.strip() == "b'hello through the tunnel\\n'", done


def test_a_target_that_looks_like_an_option_is_never_read_as_one(tmp_path):
    """hostspec refuses such names; the runner puts "--" before the target anyway,
    so that ssh takes "-oProxyCommand=..." as a (bad) host name and runs nothing."""
    made = tmp_path / "made"
    config = tmp_path / "config"
    config.write_text("")
    spec = parse_remote("h", Path("x.yaml"), 1)._replace(target=f"-oProxyCommand=touch {made}")
    runner = OpenSshRunner(spec, ssh_config=str(config), connect_timeout=2)
    try:
        with pytest.raises(RemoteError, match="ssh failed"):
            runner.run("true")
    finally:
        runner.close()
    assert not made.exists()


def _back_up(host) -> None:
    """link_up, and wait until this machine reaches the host again (its neighbour
    entry failed while the link was down)."""
    host.link_up()
    wait_until(lambda: socket.create_connection((host.address, 22), 1).close() or True, 30, "link")


def test_hurried_a_host_whose_link_is_down_is_lost_within_seconds(pool):
    """--lost-timeout (30 s here) is for a run going on; once it stops, hurry() gives
    a silent host HURRY_SECONDS, as the paramiko runner does (a secondary waited the
    whole 30 s for a dead leaf, past the initiator's patience)."""
    spec = parse_remote("a", Path("x.yaml"), 1)
    runner = OpenSshRunner(spec, lost_timeout=30, ssh_config=str(pool.ssh_config))
    process = runner.start("echo up; sleep 600")
    try:
        assert process.stdout.readline() == b"up\n"
        pool["a"].link_down()
        started = time.monotonic()
        runner.hurry()
        status = process.wait(HURRY_SECONDS + 5)
        took = time.monotonic() - started
    finally:
        _back_up(pool["a"])
        process.close()
        runner.close()
    assert status == -1 and took < HURRY_SECONDS + 3, (status, took)
    assert runner.lost() == "lost: no answer over SSH for 3 s after the stop"


def test_hurried_a_host_that_answers_is_not_lost(pool, runner):
    process = runner.start("echo up; sleep 600")
    try:
        assert process.stdout.readline() == b"up\n"
        runner.hurry()
        runner._probe.join(HURRY_SECONDS + 5)  # the host was asked and answered
        assert not runner._probe.is_alive()
        assert runner.lost() is None and process.wait(0) is None  # still running
    finally:
        process.close()


def _listening(host) -> set:
    """The TCP ports listening on the host's loopback."""
    out = host.run(["ss", "-Hltn", "src", "127.0.0.1"]).stdout
    return {line.split()[3] for line in out.splitlines()}


def test_hurried_a_host_whose_login_shell_is_slow_is_not_lost(pool):
    """The probe was a command (`true`), which sshd runs through the login shell:
    a ~/.bashrc slower than HURRY_SECONDS (conda, nvm, a home over NFS) made a live
    leaf "lost: no answer over SSH for 3 s after the stop", failing a ^C-ed via: run.
    sshd answers the probe itself now, as a keepalive, and it leaves nothing open."""
    a = pool["a"]
    spec = parse_remote("a", Path("x.yaml"), 1)
    runner = OpenSshRunner(spec, lost_timeout=30, ssh_config=str(pool.ssh_config))
    a.run(f"echo 'sleep {HURRY_SECONDS + 3:.0f}' > /root/.bashrc")
    process = None
    try:
        process = runner.start("echo up; sleep 600")
        assert process.stdout.readline() == b"up\n"
        before = _listening(a)
        runner.hurry()
        runner._probe.join(HURRY_SECONDS + 10)
        assert not runner._probe.is_alive()
        assert runner.lost() is None and process.wait(0) is None  # still running
        wait_until(lambda: _listening(a) == before, 10, "the probe's forward cancelled")
    finally:
        a.run("rm -f /root/.bashrc")
        if process is not None:
            process.close()
        runner.close()
