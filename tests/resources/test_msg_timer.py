"""msg read back from a real journal (systemd as PID 1 in a namespace host), and timer ticks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from private_host import SRC, PrivateHost

from mgmt.resources.base import FieldError, ResourceError, fill_params
from mgmt.resources.msg import MsgRes, journal_datagram
from support.polling import wait_until


def test_msg_reaches_the_journal_with_its_fields(systemd_host, tmp_path):
    graph = tmp_path / "msg.yaml"
    graph.write_text(
        "graph: msg\nresources:\n  msg:\n  - name: hello\n"
        '    body: "hello from mgmt\\nsecond line"\n    priority: warning\n    journal: true\n'
        "    fields: {MGMT_TEST: 'yes', MGMT_RUN: 7}\n"
    )
    args = ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")]
    proc = systemd_host.agent([*args, "--converged-timeout", "0"], tmp_path / "agent.log")
    proc.communicate(timeout=60)
    log = (tmp_path / "agent.log").read_text()
    assert proc.returncode == 0, log
    assert "msg: hello: message: hello from mgmt\\nsecond line\n" in log  # one line

    def entries():
        out = systemd_host.run(["journalctl", "--no-pager", "-o", "json", "MGMT_TEST=yes"]).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    wait_until(entries, what="the message in the journal")
    (entry,) = entries()
    assert entry["MESSAGE"] == "hello from mgmt\nsecond line"
    assert entry["PRIORITY"] == "4"
    assert entry["MGMT_RUN"] == "7"
    assert entry["SYSLOG_IDENTIFIER"] == "mgmt"
    assert entry["MGMT_RESOURCE"] == "msg[hello]"


def test_msg_reaches_syslog_and_fails_where_nothing_receives_it(systemd_host, tmp_path):
    """The syslog module dropped a message nothing received, and the run said "changed"."""
    graph = tmp_path / "msg.yaml"
    graph.write_text(
        "graph: msg\nresources:\n  msg:\n  - name: hello\n"
        "    body: to syslog\n    priority: err\n    syslog: true\n"
    )
    args = ["--file", str(graph), "--no-server", "--prefix", str(tmp_path / "state")]
    proc = systemd_host.agent([*args, "--converged-timeout", "0"], tmp_path / "agent.log")
    proc.communicate(timeout=60)
    assert proc.returncode == 0, (tmp_path / "agent.log").read_text()

    def entries():
        out = systemd_host.run(["journalctl", "--no-pager", "-o", "json", "SYSLOG_IDENTIFIER=mgmt"])
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    wait_until(entries, what="the message in the journal, through /dev/log")
    [entry] = entries()
    got = (entry["MESSAGE"], entry["PRIORITY"], entry["SYSLOG_FACILITY"])
    assert got == ("to syslog", "3", "3")
    # A host where nothing listens at /dev/log (its /run private and empty); it sees
    # only its own temp dir.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "msg.yaml").write_text(graph.read_text())
    args = ["--file", str(bare / "msg.yaml"), "--no-server", "--prefix", str(bare / "state")]
    host = PrivateHost(bare, private=["/run"])
    try:
        proc = host.agent([*args, "--converged-timeout", "0", "--json"], bare / "agent.log")
        out, _ = proc.communicate(timeout=60)
    finally:
        host.close()
    assert proc.returncode == 1, (bare / "agent.log").read_text()
    [row] = json.loads(out)["resources"]
    assert row["errors"] == ["cannot send to syslog at /dev/log: No such file or directory"]


def _msg(tmp_path, **params) -> MsgRes:
    import threading

    from mgmt.log import get_logger
    from mgmt.resources.base import Init

    res = MsgRes("m", fill_params(MsgRes, {"body": "hi", **params}))
    res.setup(Init(hostname="test", log=get_logger("test"), state_dir=tmp_path / "state",
                   watcher=None, event=lambda: None, world=None,
                   stopping=threading.Event()))  # fmt: skip
    return res


def _listener(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock


def test_a_listener_that_reads_nothing_fails_the_message_instead_of_hanging(tmp_path, monkeypatch):
    """A socket bound at /dev/log that nobody reads filled, and the agent waited for ever."""
    from mgmt.resources import msg

    monkeypatch.setattr(msg, "SYSLOG_SOCKET", str(tmp_path / "log"))
    monkeypatch.setattr(msg, "SEND_TIMEOUT", 0.2)
    deaf = _listener(tmp_path / "log")
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # full at once
    try:
        with pytest.raises(ResourceError, match=r"cannot send to syslog at \S+/log: timed out"):
            for _ in range(1000):  # the queue fills after a few
                _msg(tmp_path, syslog=True).check_apply(True)
    finally:
        deaf.close()


def test_a_retry_after_syslog_failed_does_not_send_to_the_journal_again(tmp_path, monkeypatch):
    from mgmt.resources import msg

    monkeypatch.setattr(msg, "JOURNAL_SOCKET", str(tmp_path / "journal"))
    monkeypatch.setattr(msg, "SYSLOG_SOCKET", str(tmp_path / "log"))
    journal = _listener(tmp_path / "journal")
    journal.setblocking(False)
    try:
        res = _msg(tmp_path, journal=True, syslog=True)
        with pytest.raises(ResourceError, match="No such file or directory"):
            res.check_apply(True)  # nothing at the syslog socket yet
        log = _listener(tmp_path / "log")
        assert res.check_apply(True) is False  # the retry: sent
        assert log.recv(4096).endswith(b"]: hi")
        log.close()
        assert b"MESSAGE=hi" in journal.recv(4096)
        with pytest.raises(BlockingIOError):
            journal.recv(4096)  # once, not twice
    finally:
        journal.close()


def test_journal_datagram_encodes_multiline_values_by_length():
    assert journal_datagram({"A": "x"}) == b"A=x\n"
    assert journal_datagram({"B": "1\n2"}) == b"B\n" + (3).to_bytes(8, "little") + b"1\n2\n"


@pytest.mark.parametrize("fields", [{"lower": "x"}, {"_PRIVATE": "x"}, {"9X": "x"}, {"A": [1]}])
def test_bad_journal_fields_are_refused(fields):
    with pytest.raises(FieldError, match="fields"):
        MsgRes("m", fill_params(MsgRes, {"fields": fields}))


@pytest.mark.parametrize("name", ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "MGMT_RESOURCE"])
def test_fields_cannot_override_what_the_message_sets(name):
    with pytest.raises(FieldError, match=f"fields: {name} is set by the message itself"):
        MsgRes("m", fill_params(MsgRes, {"fields": {name: "0"}}))


def test_timer_reruns_what_depends_on_it(tmp_path):
    out = tmp_path / "ticks"
    graph = tmp_path / "timer.yaml"
    graph.write_text(
        "graph: t\nresources:\n  timer:\n  - name: every\n    interval: 1\n"
        f"  exec:\n  - name: tick\n    cmd: sh -c 'echo tick >> {out}'\n"
        "edges:\n- name: e\n  from: {kind: timer, name: every}\n  to: {kind: exec, name: tick}\n"
    )
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    args = [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--no-server",
            "--prefix", str(tmp_path / "state")]  # fmt: skip
    agent = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        # The first run, then one per tick: three lines means two ticks fired it.
        wait_until(lambda: out.read_text().count("tick") >= 3, timeout=20, what="two ticks")
    finally:
        agent.terminate()
        agent.wait(timeout=30)
