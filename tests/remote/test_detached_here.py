"""A detached cluster as attached agents and `mgmt status` see it (mgmt.remote.protocol)."""

import os
import socket
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from mgmt.remote import protocol
from mgmt.remote.orchestration.hosts import DETACHED_MODULES, detached_args
from support.polling import wait_for


@pytest.fixture
def detached(monkeypatch):
    """detached.py's commands, its modules loaded as its main loads them on a host
    (and gone again after the test); ``here`` is detached_dir, whose DIR and CACHE
    every command reads."""
    from mgmt.remote.protocol import detached

    for name in DETACHED_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    detached.load_modules(detached_args("")[:-1])
    return types.SimpleNamespace(here=sys.modules["detached_dir"], **detached.commands())


@pytest.mark.parametrize(
    "sup, runs", [(None, False), ("stale", False), ("other", False), ("supervisor", True)]
)
def test_an_attached_agent_sees_a_detached_cluster_only_while_its_agent_is_supervised(
    tmp_path, monkeypatch, sup, runs
):
    """protocol.detached_cluster_here: a cluster left by a reboot (a pid file whose
    process is gone, or is another program now) does not keep attached runs out."""
    monkeypatch.setenv("HOME", str(tmp_path))
    state = tmp_path / ".local/state/mgmt/detached"
    state.mkdir(parents=True)
    (state / "cluster.json").write_text("{}")
    argv = [sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"]
    if sup == "supervisor":
        argv.append(str(state / "supervise.py"))  # as the cluster runs it: supervise.py agent
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert process.stdout.readline() == b"up\n"  # its command line is its own now
        if sup is not None:
            pid = process.pid if sup != "stale" else 2**22 + 1  # above pid_max: no process
            (state / "agent.sup").write_text(f"{pid}\n")
        assert protocol.detached_cluster_here() is runs
    finally:
        process.communicate(b"")


@pytest.mark.parametrize(
    "text, failures",
    [
        (None, []),
        (
            '[{"kind": "exec", "name": "e", "error": "x"}]',
            [{"kind": "exec", "name": "e", "error": "x"}],
        ),
        ("{}", "unreadable"),
        ("[1]", "unreadable"),
        ("not json", "unreadable"),
    ],
)
def test_the_failed_key_is_read_as_a_list_of_objects_or_said_unreadable(text, failures):
    from mgmt.world.exchange import failures_in

    found = failures_in(text, "/_mgmt/failed/h")
    if failures == "unreadable":
        assert found == [{"kind": "?", "name": "?", "error": "unreadable /_mgmt/failed/h"}]
    else:
        assert found == failures


def test_a_failures_text_from_the_host_reaches_the_terminal_escaped():
    from mgmt.remote.orchestration.results import describe_failures

    shown = describe_failures(
        "a", [{"kind": "exec", "name": "e\x1b", "error": "\x1b]0;pwn\x07évil\nline2"}, {}]
    )
    assert shown == (
        "a: 2 resource(s) FAILED\n  exec[e\\x1b]: \\x1b]0;pwn\\x07évil\\nline2\n  ?[?]: failed\n"
    )


def test_status_shows_a_cluster_whose_cluster_json_was_removed_while_it_runs(
    tmp_path, monkeypatch, detached
):
    """detached.py status, then the initiator's description of it: the agent's
    supervisor runs, cluster.json and agent.in are gone (removed by hand)."""
    from mgmt.remote.orchestration.detach import SUPERVISOR
    from mgmt.remote.orchestration.status import _describe

    state = tmp_path / "detached"
    state.mkdir()
    (state / "supervise.py").write_text(SUPERVISOR)
    monkeypatch.setattr(detached.here, "DIR", str(state))
    monkeypatch.syspath_prepend(str(state))
    assert detached.status({}) == {"exists": False}
    code = "import sys; print('up', flush=True); sys.stdin.read()"
    argv = [sys.executable, "-c", code, str(state / "supervise.py"), "agent"]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert process.stdout.readline() == b"up\n"
        (state / "agent.sup").write_text(f"{process.pid}\n")
        found = detached.status({})
        assert found["exists"] and found["cluster"] == {} and found["agent"]["supervised"]
        assert (found["converged"], found["failed"]) == (None, [])
        shown = _describe("a", found)
        assert shown.startswith("a: agent NOT RUNNING (pid None), unknown, mgmt ? (bundle ?)")
        assert "cluster.json is missing or unreadable; `mgmt stop` ends it" in shown
    finally:
        process.communicate(b"")


def test_a_host_finds_its_etcd_as_the_initiator_finds_its_own(tmp_path, monkeypatch):
    """On PATH first (an etcd under /opt is not replaced by a copy of the
    initiator's), then the usual places, the same as mgmt.world.server's."""
    from mgmt.remote.protocol import detached_etcd
    from mgmt.world import server

    assert detached_etcd.ETCD_PATHS == server.SEARCH_PATHS
    etcd = tmp_path / "bin" / "etcd"
    etcd.parent.mkdir()
    etcd.write_text("#!/bin/sh\n")
    etcd.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'nothing'}:{etcd.parent}")
    assert detached_etcd.find_etcd() == server.find_etcd() == str(etcd)
    # A relative entry would name another file in DIR, where the member runs.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"bin:{etcd.parent}")
    assert detached_etcd.find_etcd() == str(etcd)


def test_the_members_certificates_hold_by_the_clock_of_a_host_behind(
    tmp_path, monkeypatch, detached
):
    """A host whose clock is 5 h behind the initiator's (an RTC kept in local time, no
    NTP): its member must take its peers' certificates as valid, or the cluster never
    gets a quorum. `prepare` says the host's clock; the certificates hold by the
    earliest one (checked by openssl, at that time)."""
    import time

    from mgmt.remote.orchestration.cluster import HostsEtcd
    from support import require_tools

    require_tools("openssl")
    monkeypatch.setattr(detached.here, "CACHE", str(tmp_path / "cache"))
    said = detached.prepare({"sha256": "0" * 64})
    assert abs(said["time"] - time.time()) < 5
    behind = said["time"] - 5 * 3600
    cluster = HostsEtcd(["a", "b"], {"a": "10.0.0.1", "b": "10.0.0.2"}, 2,
                        clocks=[said["time"], behind])  # fmt: skip
    for member in cluster.members:
        tls = cluster.tls(member)
        (tmp_path / "ca.pem").write_text(tls.ca)
        (tmp_path / "cert.pem").write_text(tls.cert)
        for when in (behind, time.time()):
            checked = subprocess.run(
                ["openssl", "verify", "-attime", str(int(when)), "-CAfile",
                 str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem")],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert checked.returncode == 0, (member, when, checked.stdout + checked.stderr)


def test_stop_ends_a_supervisor_whose_state_dir_was_removed_by_hand(
    tmp_path, monkeypatch, detached
):
    """rm -rf of the state dir while the cluster runs (outside systemd): its pid files
    are gone, yet `stop` finds the supervisor and it stops its process."""
    import shutil

    from remote_helpers import supervised_dir

    from support.polling import wait_until

    state = tmp_path / "detached"
    script = supervised_dir(state, ["sleep", "3600"])
    supervisor = subprocess.Popen([sys.executable, "-S", str(script), "agent"],
                                  start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: (state / "agent.pid").read_text().strip(), what="the agent started")
        child = int((state / "agent.pid").read_text())
        shutil.rmtree(state)
        monkeypatch.setattr(detached.here, "DIR", str(state))
        assert detached.stop({"what": ["agent"]}) == {"stopped": ["agent"]}
        assert supervisor.wait(5) == 0
        wait_until(lambda: not os.path.exists(f"/proc/{child}"), what="the agent ended")
        assert detached.stop({"what": ["agent"]}) == {"stopped": []}  # nothing left
    finally:
        if supervisor.poll() is None:  # it stops its agent
            supervisor.terminate()
            supervisor.wait(30)


def test_status_shows_the_last_lines_also_just_after_the_log_was_emptied(tmp_path, detached):
    """The supervisor moves a long log to agent.log.1 and empties agent.log: status's
    last lines come from both, and only the end of a big log is read."""
    (tmp_path / "agent.log.1").write_text("x" * (1 << 20) + "\n" + "".join(
        f"older {i}\n" for i in range(20)))  # fmt: skip
    (tmp_path / "agent.log").write_text("newer 0\nnewer 1\nnewer 2\n")
    shown = detached.here.tail(str(tmp_path / "agent.log")).splitlines()
    assert shown == [f"older {i}" for i in range(13, 20)] + ["newer 0", "newer 1", "newer 2"]
    (tmp_path / "agent.log").write_text("".join(f"newer {i}\n" for i in range(30)))
    assert detached.here.tail(str(tmp_path / "agent.log")) == "\n".join(
        f"newer {i}" for i in range(20, 30)
    )
    (tmp_path / "agent.log").write_text("")
    (tmp_path / "agent.log.1").unlink()
    assert detached.here.tail(str(tmp_path / "agent.log")) == ""


def test_stop_leaves_alone_a_supervisor_of_the_same_dir_in_another_mount_namespace(
    tmp_path, monkeypatch, detached
):
    """A container sharing our pids but not our mounts (the test hosts are such) may
    run a cluster whose DIR has the same path: it is not ours to stop."""
    import shutil

    from remote_helpers import supervised_dir

    from support import require_root, require_tools
    from support.polling import wait_until

    require_root()
    require_tools("unshare")
    state = tmp_path / "detached"
    supervised_dir(state, ["sleep", "3600"])
    # In a mount namespace of its own, where DIR stays (a private copy of tmp_path's view).
    supervisor = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f'mount -t tmpfs tmpfs "$1" && cp -a "$2"/. "$1" && exec {sys.executable} -S '
         '"$1/supervise.py" agent', "sh", str(state), str(tmp_path / "copy")],
        start_new_session=True,
    )  # fmt: skip
    shutil.copytree(state, tmp_path / "copy")
    try:
        inside = Path(f"/proc/{supervisor.pid}/root") / str(state).lstrip("/")
        wait_until(lambda: (inside / "agent.pid").read_text().strip(), what="the agent started")
        shutil.rmtree(state)  # ours is gone; theirs is not
        monkeypatch.setattr(detached.here, "DIR", str(state))
        assert detached.stop({"what": ["agent"]}) == {"stopped": []}
        assert supervisor.poll() is None
    finally:
        if supervisor.poll() is None:  # it stops its agent
            supervisor.terminate()
            supervisor.wait(30)


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _connect(source: str, target: tuple) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.connect(target)
    return s


def test_a_probe_waits_for_the_other_members_not_for_any_connection(detached):
    """Before the members start, each one listens until the others have reached it. A
    stray connection to its peer port (the member of an earlier cluster that still
    dials this address) was taken for the other member's: the probe stopped
    listening, and the other member, still on its way, failed with "cannot reach
    the cluster's other member(s)", telling the user of a network that was fine."""
    probe_peers = sys.modules["detached_etcd"].probe_peers
    mine, other = "127.0.0.2", "127.0.0.3"
    client, peer = _free_port(mine), _free_port(mine)
    other_peer = socket.socket()
    other_peer.bind((other, 0))
    other_peer.listen(4)  # the other member's peer port: reached at once
    errors = []

    def probe():
        try:
            probe_peers(mine, [client, peer], [(other, other_peer.getsockname()[1])], 10.0)
        except Exception as err:
            errors.append(err)

    thread = threading.Thread(target=probe)
    thread.start()
    strays = []  # connected once the probe listens
    assert wait_for(lambda: strays.append(_try_connect("127.0.0.9", (mine, peer))) or strays[-1])
    try:
        thread.join(1.0)
        assert thread.is_alive(), "the probe took a stray connection for the other member's"
        _connect(other, (mine, peer)).close()  # the other member reaches this one
        thread.join(10)
        assert not thread.is_alive() and errors == []
    finally:
        for stray in filter(None, strays):
            stray.close()
        other_peer.close()
        thread.join(15)


def _try_connect(source: str, target: tuple):
    try:
        return _connect(source, target)
    except OSError:
        return None


def test_status_says_a_member_whose_process_is_gone_is_not_running(detached, tmp_path):
    """Its etcd and supervisor killed (a reboot without systemd): status said "etcd
    member UNHEALTHY (URL, pid N)", N a process long gone, as if it ran and
    were only out of quorum."""
    from mgmt.remote.orchestration.status import _describe

    dead = subprocess.Popen(["true"])
    dead.wait()
    state = {
        "exists": True, "dir": str(tmp_path), "converged": None, "failed": [], "log": "",
        "cluster": {"member_url": "http://10.0.0.1:2379", "version": "0", "bundle_sha256": "0"},
        "agent": {"supervised": True, "pid": os.getpid(), "running": True, "exit": None},
        "etcd": {"supervised": False, "pid": dead.pid, "running": False, "exit": "-9",
                 "health": False},
    }  # fmt: skip
    shown = _describe("b", state).splitlines()[0]
    assert shown.endswith(
        f"etcd member NOT RUNNING (http://10.0.0.1:2379, pid {dead.pid}, last exit -9)"
    ), shown
    state["etcd"].update(supervised=True, running=True, exit=None)  # up, but no quorum
    shown = _describe("b", state).splitlines()[0]
    assert shown.endswith(f"etcd member UNHEALTHY (http://10.0.0.1:2379, pid {dead.pid})"), shown


def test_a_member_on_an_ipv6_address_is_given_urls_etcd_takes(tmp_path, monkeypatch, detached):
    """SSH_CONNECTION gives an IPv6 address bare: etcd refused http://fd00::2:2379
    ("URL address does not have the form host:port")."""
    from mgmt.remote.orchestration.detach import SUPERVISOR

    monkeypatch.setattr(detached.here, "DIR", str(tmp_path / "detached"))
    start = sys.modules["detached_start"]
    started = []
    monkeypatch.setattr(start, "start_supervised", lambda name, argv: started.append(argv) or 1)
    said = detached.etcd({
        "address": "fd00::2", "client_port": 2379, "peer_port": 2380, "binary": "etcd",
        "name": "m", "peers": {"m": "http://[fd00::2]:2380"}, "token": "t",
        "supervisor": SUPERVISOR,
    })  # fmt: skip
    assert said["client_url"] == "http://[fd00::2]:2379"
    (argv,) = started
    assert "--listen-client-urls=http://[fd00::2]:2379" in argv
    assert "--initial-advertise-peer-urls=http://[fd00::2]:2380" in argv


def test_two_runs_that_start_a_member_here_at_once_start_one(tmp_path, monkeypatch, detached):
    """Two `mgmt run --detach` to one host at once: both found no etcd running and
    both started one, the second's supervisor taking the first's files (its own
    then named by none, never stopped). One starts now; the other is refused."""
    from mgmt.remote.orchestration.detach import SUPERVISOR

    monkeypatch.setattr(detached.here, "DIR", str(tmp_path / "detached"))
    monkeypatch.setattr(detached.here, "CACHE", str(tmp_path / "cache"))
    etcd = tmp_path / "etcd"  # a stand-in member: the supervisor is what counts here
    etcd.write_text("#!/bin/sh\nexec sleep 60\n")
    etcd.chmod(0o755)
    gate, answers = threading.Barrier(2), {}

    def start(owner: str) -> None:
        request = {
            "address": "127.0.0.1", "client_port": 1, "peer_port": 2, "binary": str(etcd),
            "name": "m", "peers": {"m": "http://127.0.0.1:2"}, "token": "t",
            "supervisor": SUPERVISOR, "owner": owner,
        }  # fmt: skip
        gate.wait()
        try:
            answers[owner] = detached.etcd(request)
        except Exception as err:  # the refusal is the answer
            answers[owner] = err

    threads = [threading.Thread(target=start, args=(o,)) for o in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        refused = [o for o, a in answers.items() if isinstance(a, Exception)]
        assert len(refused) == 1, answers
        assert "etcd already runs here" in str(answers[refused[0]])
        (started,) = set(answers) - set(refused)
        assert (tmp_path / "detached" / "etcd.owner").read_text() == started
    finally:
        detached.stop({"what": ["etcd"], "clean": True})
        _kill_sessions_started_from(tmp_path)  # one that no file names (the race) too


def _kill_sessions_started_from(folder: Path) -> None:
    """SIGKILL the sessions of the processes whose command line names ``folder`` (the
    supervisors started from it lead sessions of their own, their children in them)."""
    import signal

    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(folder).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.killpg(os.getsid(int(pid)), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def test_removing_remains_leaves_a_cluster_another_run_started_since(
    tmp_path, monkeypatch, detached
):
    """A host whose old cluster died, prepared by two runs at once: the one that came
    second removed "the remains" it had seen, which were by then the other run's
    new cluster (stopped, its DIR removed). Remains are removed only if none runs."""
    from remote_helpers import supervised_dir

    from support.polling import wait_until

    state = tmp_path / "detached"
    monkeypatch.setattr(detached.here, "DIR", str(state))
    monkeypatch.setattr(detached.here, "CACHE", str(tmp_path / "cache"))
    script = supervised_dir(state, ["sleep", "3600"])
    supervisor = subprocess.Popen([sys.executable, "-S", str(script), "agent"],
                                  start_new_session=True)  # fmt: skip
    try:
        (state / "agent.sup").write_text(f"{supervisor.pid}\n")
        wait_until(lambda: (state / "agent.pid").read_text().strip(), what="the agent started")
        remains = {"what": ["agent", "etcd"], "clean": True, "caching": True, "remains": True}
        with pytest.raises(Exception, match="a detached cluster started here meanwhile"):
            detached.stop(remains)
        assert supervisor.poll() is None and state.is_dir()
    finally:
        supervisor.terminate()
        supervisor.wait(30)


def test_status_describes_a_cluster_record_whose_bundle_hash_is_null():
    """A cluster.json holding `"bundle_sha256": null` (written by hand, or cut) made
    `mgmt status` an internal error (None[:12])."""
    from mgmt.remote.orchestration.status import _describe

    process = {"running": True, "supervised": True, "pid": 7, "exit": None, "health": True}
    state = {"agent": process, "etcd": dict(process), "converged": True, "failed": [],
             "cluster": {"bundle_sha256": None, "version": "0.1.0"}, "log": ""}  # fmt: skip
    assert "mgmt 0.1.0 (bundle ?)" in _describe("a", state)
