"""A runner on the system's OpenSSH client, for hosts with only python3 and
openssh-clients (a secondary of a hierarchical run has no paramiko).

One master connection per host (ControlMaster) carries every command. It logs
in with the first command and carries that one itself (START, in a run): a
master of its own (``ssh -M -N``) with a ``ssh -S socket`` client for each
command made two ssh processes per host, and the client's start (exec, the
dynamic linker, ssh_config) and its relaying every byte of the session cost a
secondary about a quarter of its ssh CPU (perf, 60 hosts behind 3 secondaries).
Later commands (uploads, a clean-up) are ``ssh -S socket`` clients that cost
no new login; a command once the master is gone logs in again. The master's
ServerAliveInterval/ServerAliveCountMax are the keepalives: a host silent for
--lost-timeout makes the master exit, and the host is lost. Reverse tunnels
are asked of the master on its control socket (what ``ssh -O forward -R
127.0.0.1:0:...`` sends, see :mod:`.openssh_mux`), which answers with the port
sshd picked; unlike the paramiko runner, the target is resolved when
the tunnel opens (an etcd that starts on the first dial starts then).

Host keys are OpenSSH's business here: StrictHostKeyChecking=yes (or
accept-new), known_hosts as ssh_config says.

Key exchange: curve25519-sha256 is asked for first, as paramiko (which logs
in to the hosts an initiator reaches directly) does. OpenSSH 9's own first
choice, sntrup761x25519, costs the client about 50 ms of CPU per login (its
key generation; curve25519: about 5 ms, measured with OpenSSH 9.2): a
secondary logging in to 20 hosts at once spent a second of CPU on it alone.
The rest of ssh's list follows, in its order (a host that has no curve25519
still gets the others); an ssh_config that sets KexAlgorithms, includes other
files, or is not given (the system's files apply) keeps ssh's own choice.
"""

__all__ = ["FAST_KEX", "OpenSshRunner", "end_ssh", "kex_for"]

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
import time
from typing import Callable, List, Optional

from mgmt.errors import RemoteError
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.transport.openssh_kex import FAST_KEX, kex_for
from mgmt.remote.transport.openssh_mux import MuxError, remote_forward
from mgmt.remote.transport.openssh_words import login_failure
from mgmt.remote.transport.runner import (
    HURRY_SECONDS,
    Address,
    Become,
    Process,
    Runner,
    Tunnel,
)

# How often a login is looked at: the master's socket appearing, or the master ending.
LOGIN_POLL = 0.01
# How long the master may take to have sshd open a forward (a round trip).
FORWARD_TIMEOUT = 30.0
# What hurry()'s probe forwards to: nothing connects to it, the forward is
# cancelled once sshd has answered; port 9 (discard) if something did.
PROBE_TARGET = ("127.0.0.1", 9)
# SIGTERM again this often until ssh is gone (see end_ssh), SIGKILL after END_TRIES.
END_RETRY = 0.1
END_TRIES = 20


def end_ssh(popen: "subprocess.Popen") -> None:
    """End an ssh client: SIGTERM, and again every END_RETRY until it is gone.

    OpenSSH (9.2 here) notes a SIGTERM in a flag that its loop reads before it
    polls: one that lands between that look and the poll is seen only when the
    poll times out, at the next ServerAliveInterval (up to 5 s). That was one
    master in a few dozen at the end of a run, under load, holding its
    secondary (and the whole run) for seconds. A SIGTERM sent while ssh polls
    ends it at once.
    """
    for _ in range(END_TRIES):
        if popen.poll() is not None:
            return
        popen.terminate()
        try:
            popen.wait(END_RETRY)
            return
        except subprocess.TimeoutExpired:
            continue
    popen.kill()
    popen.wait()


class SshProcess(Process):
    """An ssh client, reaped by a thread of its own: a wait with a timeout then
    sleeps until ssh ends or the timeout does, where Popen.wait(timeout) polls
    (ten times or so per call: a secondary waiting on 20 hosts woke hundreds of
    times a second for nothing)."""

    def __init__(self, argv: List[str]):
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.stdout = self.popen.stdout
        self.stderr = self.popen.stderr
        self.closed = False
        self._ended = threading.Event()
        reaper = threading.Thread(target=self._reap, daemon=True)
        reaper.start()

    def _reap(self) -> None:
        self.popen.wait()
        self._ended.set()

    def send(self, data: bytes) -> None:
        self.popen.stdin.write(data)
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        self.popen.stdin.close()

    def wait(self, timeout: Optional[float]) -> Optional[int]:
        if not self._ended.wait(timeout):
            return None
        status = self.popen.returncode
        return -1 if status == 255 else status  # 255: ssh's own failure, the link

    def close(self) -> None:
        # Ended by us (still running now): its end is ours, not a lost connection.
        self.closed = self.closed or self.popen.poll() is None
        with contextlib.suppress(OSError):
            self.popen.stdin.close()
        # ssh goes before its pipes are closed: a thread blocked reading one (a
        # reader, sudo's watchdog) gets the end of it instead of holding its lock.
        end_ssh(self.popen)
        for stream in (self.popen.stdout, self.popen.stderr):
            with contextlib.suppress(OSError):
                stream.close()


class _MasterTunnel(Tunnel):
    def __init__(self, runner: "OpenSshRunner", target: Callable[[], Address]):
        self.runner = runner
        self.target = target
        self.port: Optional[int] = None

    def open(self) -> int:
        host, port = self.target()
        self.runner.ensure_master()
        try:
            # On the control socket, as `ssh -O forward -R 127.0.0.1:0:...` would
            # ask it (see openssh_mux): without starting an ssh for it.
            self.port = remote_forward(self.runner.socket, (host, port), FORWARD_TIMEOUT)
        except (MuxError, OSError) as err:
            lost = self.runner.lost()
            why = "sshd refused the port forwarding: " + (lost or str(err) or type(err).__name__)
            raise RemoteError(self.runner.host, why) from None
        self._spec = f"127.0.0.1:{self.port}:{host}:{port}"
        return self.port

    def close(self, cancel: bool = True) -> None:
        if cancel and self.port is not None and self.runner.lost() is None:
            subprocess.run(
                self.runner.ssh("-O", "cancel", "-R", self._spec),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )


class OpenSshRunner(Runner):
    """Logs in with ``ssh`` (ssh_config applies: aliases, ProxyJump, keys, agent),
    at the first command or tunnel; ``on_login`` is called once it has."""

    def __init__(
        self,
        spec: HostSpec,
        lost_timeout: float = 30.0,
        accept_new: bool = False,
        identity: Optional[str] = None,
        become: Optional[Become] = None,
        connect_timeout: int = 10,
        ssh_config: Optional[str] = None,
        on_login: Optional[Callable[[], None]] = None,
    ):
        self.host = spec.name
        self.become = become or Become()
        self._dir = tempfile.mkdtemp(prefix="mgmt-ssh-")
        self.socket = os.path.join(self._dir, "master")
        interval = max(1, min(5, int(lost_timeout // 6) or 1))
        # ssh's ConnectTimeout covers the TCP connection and the host's greeting:
        # a host silent for --lost-timeout is lost, while connecting too.
        self.connect_timeout = max(1, int(min(connect_timeout, lost_timeout)))
        self.options = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=" + ("accept-new" if accept_new else "yes"),
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", f"ServerAliveInterval={interval}",
            "-o", f"ServerAliveCountMax={max(1, int(lost_timeout // interval))}",
            "-S", self.socket,
            # Under -tt (sudo's requiretty) ssh would read "~" at the start of a
            # line of stdin (a bundle's bytes, a password) as an escape: "~." drops
            # the connection, "~#" lists them, and the bytes are lost.
            "-e", "none",
        ]  # fmt: skip
        if ssh_config:
            self.options += ["-F", ssh_config]
        if spec.user:
            self.options += ["-l", spec.user]
        if spec.port:
            self.options += ["-p", str(spec.port)]
        if identity:
            self.options += ["-i", identity]
        # Put after "--" on every ssh command line (see ssh()): hostspec refuses a
        # name that starts with "-", and the marker makes sure ssh never reads one
        # as an option ("-oProxyCommand=..." would run a command here).
        self.target = spec.target
        kex = kex_for(ssh_config)
        if kex is not None:
            self.options += ["-o", "KexAlgorithms=" + kex]
        self._on_login = on_login
        self._lost: Optional[str] = None
        self._master: Optional[SshProcess] = None
        self._master_lock = threading.Lock()
        self._probe: Optional[threading.Thread] = None  # hurry()'s, once
        self._probe_lock = threading.Lock()  # not _master_lock: a login holds that
        self._hurried_at: Optional[float] = None

    def _live_master(self) -> bool:
        return self._master is not None and self._master.popen.poll() is None

    def _log_in(self, command: Optional[str], tty: str) -> SshProcess:
        """A new master connection, carrying ``command`` (None: none, ``-N``)."""
        with contextlib.suppress(OSError):
            os.unlink(self.socket)  # a killed master's: it would look logged in
        # LogLevel=ERROR: the master's stderr is its command's, where a warning
        # such as --ssh-accept-new's "Permanently added" would read as output.
        argv = ["ssh", "-M", "-o", "ControlPersist=no", "-o", "LogLevel=ERROR", *self.options]
        argv += ["-N", "--", self.target] if command is None else [tty, "--", self.target, command]
        master = self._master = SshProcess(argv)
        self._lost = None
        began = time.monotonic()
        # The master makes its socket once logged in, and only then (OpenSSH
        # listens on a temporary name and links it into place): its appearing
        # is the sign, asking with `ssh -O check` would cost another ssh.
        # Looked at every LOGIN_POLL: a subprocess wait with a timeout wakes
        # several times as often (a secondary starting a few dozen hosts at
        # once spent a good part of its CPU on those wake-ups).
        while not os.path.exists(self.socket):
            status = master.popen.poll()
            if status is not None and status != 255 and command is not None:
                return master  # logged in, and the command is over already
            if status is not None:  # the login failed: say why, not "lost"
                why = master.stderr.read().decode(errors="replace").strip()
                self._master = None
                master.close()
                raise RemoteError(self.host, self._login_failed(why))
            hurried = self._hurried_at  # during this login: the run stops, it is given up
            if hurried is not None and began <= hurried < time.monotonic() - HURRY_SECONDS:
                self._master = None
                master.close()
                why = f"stopped: no SSH login within {HURRY_SECONDS:.0f} s of the stop"
                raise RemoteError(self.host, why)
            time.sleep(LOGIN_POLL)
        if self._on_login is not None:
            self._on_login()
        return master

    def _login_failed(self, why: str) -> str:
        """ssh's words, or plain ones for a host that took the connection and said
        nothing (ssh: "Connection timed out during banner exchange")."""
        if "during banner exchange" not in why:
            return "ssh failed: " + (login_failure(why) or "no output")
        return (
            f"{self._where()} accepted the connection but sent no SSH greeting"
            f" within {self.connect_timeout} s"
        )

    def _where(self) -> str:
        """host:port as ssh_config makes them of the target (``ssh -G``)."""
        try:
            done = subprocess.run(  # Python 3.6: no text=
                ["ssh", "-G", *self.options, "--", self.target],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                universal_newlines=True,  # noqa: UP021
            )
        except OSError:
            return self.target
        seen = dict(line.partition(" ")[::2] for line in done.stdout.splitlines())
        if "hostname" not in seen or "port" not in seen:
            return self.target
        return f"{seen['hostname']}:{seen['port']}"

    def ssh(self, *args: str) -> List[str]:
        return ["ssh", *self.options, *args, "--", self.target]

    def start(self, command: str) -> Process:
        return self.become.start(self._start_raw, command)

    def _start_raw(self, command: str, pty: bool) -> Process:
        tty = "-tt" if pty else "-T"
        with self._master_lock:
            if not self._live_master():
                return self._log_in(command, tty)
        return SshProcess(["ssh", *self.options, tty, "--", self.target, command])

    def ensure_master(self) -> None:
        """A live master for what needs one but runs no command (a tunnel)."""
        with self._master_lock:
            if not self._live_master():
                self._log_in(None, "-T")

    def tunnel(self, target: Callable[[], Address]) -> Tunnel:
        return _MasterTunnel(self, target)

    def lost(self) -> Optional[str]:
        # The master ending with its command's status is that command's end;
        # 255 (ssh's own failure: keepalives unanswered, the link) or a signal
        # is the connection's, unless we ended it (sudo closes a command it
        # refuses, a session its process).
        master = self._master
        if self._lost is None and master is not None and not master.closed:
            status = master.popen.poll()
            if status is not None and (status == 255 or status < 0):
                self._lost = "lost: the ssh master connection ended"
        return self._lost

    def hurry(self) -> None:
        """Ask the host for an answer now (a ``true`` on the master's connection):
        none within HURRY_SECONDS and the host is lost, its master ended; a login
        going on is given as long (see _log_in). The master's keepalives give a
        dead host the whole --lost-timeout (30 s by default), which held a
        secondary's stop past its own grace."""
        if self._hurried_at is None:
            self._hurried_at = time.monotonic()
        with self._probe_lock:
            if self._probe is not None or not self._live_master():
                return
            self._probe = threading.Thread(target=self._ask, name="ssh-hurry", daemon=True)
            self._probe.start()

    def _ask(self) -> None:
        master = self._master
        if master is None or not os.path.exists(self.socket):
            return  # no master to ask through (and no new login for a probe)
        # A remote forward, which sshd answers itself (a global request, as the
        # paramiko runner's keepalive): a command goes through the login shell,
        # and a ~/.bashrc slower than HURRY_SECONDS (conda, nvm, a home over NFS)
        # made a live host "lost".
        try:
            remote_forward(self.socket, PROBE_TARGET, HURRY_SECONDS)
        except socket.timeout:
            pass  # no answer in time
        except (MuxError, OSError):
            return  # refused (forwarding off: an answer), or the master is gone already
        else:
            # Named as it was asked (listen port 0): the master knows it by that,
            # and "port not forwarded" is all the port sshd picked would get.
            self._cancel_forward(f"127.0.0.1:0:{PROBE_TARGET[0]}:{PROBE_TARGET[1]}")
            return
        if master is self._master and master.popen.poll() is None and not master.closed:
            self._lost = f"lost: no answer over SSH for {HURRY_SECONDS:.0f} s after the stop"
            end_ssh(master.popen)  # its command's wait() returns -1 (ssh's 255)

    def _cancel_forward(self, spec: str) -> None:
        """Cancel a remote forward (``-R spec``) the master holds."""
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(
                self.ssh("-O", "cancel", "-R", spec),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=HURRY_SECONDS,
            )

    def close(self) -> None:
        if self._master is not None:
            self._master.close()
        with contextlib.suppress(OSError):
            os.unlink(self.socket)
        if os.path.isdir(self._dir) and not os.listdir(self._dir):
            os.rmdir(self._dir)
