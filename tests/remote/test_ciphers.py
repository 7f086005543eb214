"""The cipher of the initiator's SSH connections: AES-GCM when the host offers it.

paramiko prefers AES-CTR with an HMAC, whose tag it computes and compares in
Python for each packet; GCM's is checked in one call to the cryptography library,
and is asked for first (mgmt.remote.transport.connect.aead_first_transport). A host whose sshd
offers no GCM is still reached, with the cipher both know.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from remote_helpers import need_hosts

from mgmt.errors import RemoteError
from mgmt.remote.hostspec import parse_remote
from mgmt.remote.transport.connect import ConnectOptions, connect, run_command
from support.hosts import ssh_hosts
from support.polling import wait_until


@pytest.fixture
def pool(monkeypatch):
    need_hosts()
    with ssh_hosts(["gcm"]) as pool:
        monkeypatch.setenv("HOME", str(pool.home))
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
        yield pool


def _cipher_and_answer(name: str):
    conn = connect(parse_remote(name, Path("g.yaml")), ConnectOptions())
    try:
        transport = conn.client.get_transport()
        return (
            transport.local_cipher,
            transport.remote_cipher,
            run_command(conn, "echo $((6 * 7))").stdout,
        )
    finally:
        conn.close()


def test_a_host_that_offers_gcm_is_spoken_to_with_it(pool):
    assert _cipher_and_answer("gcm") == ("aes128-gcm@openssh.com",) * 2 + ("42\n",)


def test_a_host_without_gcm_is_reached_with_a_cipher_both_know(pool):
    host = pool["gcm"]
    config = host.state_dir / "sshd_config"
    config.write_text("Ciphers aes128-ctr,aes256-ctr\n" + config.read_text())
    host.sshd.send_signal(signal.SIGHUP)  # sshd -D starts itself again, reading its config
    seen = []

    def serving_new_config() -> bool:
        try:
            seen.append(_cipher_and_answer("gcm"))
        except RemoteError:  # between the old sshd's end and the new one listening
            return False
        return seen[-1][0] != "aes128-gcm@openssh.com"

    wait_until(serving_new_config, what="the host's sshd serving its new config")
    assert seen[-1] == ("aes128-ctr",) * 2 + ("42\n",)
