"""The runner on the system's OpenSSH client (ControlMaster): the same interface
as paramiko's, against a real sshd host."""

from pathlib import Path

import pytest
from remote_helpers import need_hosts

from mgmt.errors import RemoteError
from mgmt.remote.hostspec import parse_remote
from mgmt.remote.transport.openssh import OpenSshRunner
from mgmt.remote.transport.runner import upload
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
    with pytest.raises(RemoteError, match=r"(?s)ssh failed: .*Host key verification failed"):
        OpenSshRunner(spec, ssh_config=str(config))
    assert not known.exists()  # refused, not added
