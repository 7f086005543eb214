"""A runner on the system's OpenSSH client, for hosts with only python3 and
openssh-clients (a secondary of a hierarchical run has no paramiko).

One master connection per host (``ssh -M -N``, ControlMaster) carries every
command, each a ``ssh -S socket`` that costs no new login. The master's
ServerAliveInterval/ServerAliveCountMax are the keepalives: a host silent for
--lost-timeout makes the master exit, and the host is lost. Reverse tunnels
are asked of the master (``ssh -O forward -R 127.0.0.1:0:...``), which prints
the port sshd picked; unlike the paramiko runner, the target is resolved when
the tunnel opens (an etcd that starts on the first dial starts then).

Host keys are OpenSSH's business here: StrictHostKeyChecking=yes (or
accept-new), known_hosts as ssh_config says.
"""

import contextlib
import os
import subprocess
import tempfile
from typing import Callable, List, Optional

from mgmt.errors import RemoteError
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.transport.runner import Address, Become, Process, Runner, Tunnel


class SshProcess(Process):
    def __init__(self, argv: List[str]):
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.stdout = self.popen.stdout
        self.stderr = self.popen.stderr

    def send(self, data: bytes) -> None:
        self.popen.stdin.write(data)
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        self.popen.stdin.close()

    def wait(self, timeout: Optional[float]) -> Optional[int]:
        try:
            status = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return -1 if status == 255 else status  # 255: ssh's own failure, the link

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.stdin.close()
        # ssh goes before its pipes are closed: a thread blocked reading one (a
        # reader, sudo's watchdog) gets the end of it instead of holding its lock.
        if self.popen.poll() is None:
            self.popen.terminate()
        for stream in (self.popen.stdout, self.popen.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        self.popen.wait()


class _MasterTunnel(Tunnel):
    def __init__(self, runner: "OpenSshRunner", target: Callable[[], Address]):
        self.runner = runner
        self.target = target
        self.port: Optional[int] = None

    def open(self) -> int:
        host, port = self.target()
        spec = f"127.0.0.1:0:{host}:{port}"
        done = subprocess.run(  # noqa: UP022  (a secondary runs this on Python 3.6)
            self.runner.ssh("-O", "forward", "-R", spec),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,  # noqa: UP021
        )
        if done.returncode != 0 or not done.stdout.strip().isdigit():
            why = done.stderr.strip() or "no port"
            raise RemoteError(self.runner.host, "sshd refused the port forwarding: " + why)
        self.port = int(done.stdout.strip())
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
    """Logs in with ``ssh`` (ssh_config applies: aliases, ProxyJump, keys, agent)."""

    def __init__(
        self,
        spec: HostSpec,
        lost_timeout: float = 30.0,
        accept_new: bool = False,
        identity: Optional[str] = None,
        become: Optional[Become] = None,
        connect_timeout: int = 10,
        ssh_config: Optional[str] = None,
    ):
        self.host = spec.name
        self.become = become or Become()
        self._dir = tempfile.mkdtemp(prefix="mgmt-ssh-")
        self.socket = os.path.join(self._dir, "master")
        interval = max(1, min(5, int(lost_timeout // 6) or 1))
        self.options = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=" + ("accept-new" if accept_new else "yes"),
            "-o", f"ConnectTimeout={connect_timeout}",
            "-o", f"ServerAliveInterval={interval}",
            "-o", f"ServerAliveCountMax={max(1, int(lost_timeout // interval))}",
            "-S", self.socket,
        ]  # fmt: skip
        if ssh_config:
            self.options += ["-F", ssh_config]
        if spec.user:
            self.options += ["-l", spec.user]
        if spec.port:
            self.options += ["-p", str(spec.port)]
        if identity:
            self.options += ["-i", identity]
        self.target = spec.target
        self._lost: Optional[str] = None
        self.master = subprocess.Popen(
            ["ssh", "-M", "-N", "-o", "ControlPersist=no", *self.options, self.target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_for_master()

    def _wait_for_master(self) -> None:
        while True:
            # The master makes its socket once logged in: until then, asking it
            # with `ssh -O check` would only spawn an ssh (a secondary starting a
            # few dozen hosts at once spent most of its CPU on those).
            if os.path.exists(self.socket):
                check = subprocess.run(
                    self.ssh("-O", "check"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                if check.returncode == 0:
                    return
            try:
                self.master.wait(0.01)
            except subprocess.TimeoutExpired:
                continue
            why = self.master.stderr.read().decode(errors="replace").strip()
            self.close()
            raise RemoteError(self.host, "ssh failed: " + (why or "no output"))

    def ssh(self, *args: str) -> List[str]:
        return ["ssh", *self.options, *args, self.target]

    def start(self, command: str) -> Process:
        return self.become.start(self._start_raw, command)

    def _start_raw(self, command: str, pty: bool) -> Process:
        tty = ["-tt"] if pty else ["-T"]
        return SshProcess(["ssh", *self.options, *tty, self.target, command])

    def tunnel(self, target: Callable[[], Address]) -> Tunnel:
        return _MasterTunnel(self, target)

    def lost(self) -> Optional[str]:
        if self._lost is None and self.master.poll() is not None:
            self._lost = "lost: the ssh master connection ended"
        return self._lost

    def hurry(self) -> None:
        pass  # ServerAliveInterval is already at most 5 s

    def close(self) -> None:
        if self.master.poll() is None:
            self.master.terminate()
            self.master.wait()
        self.master.stderr.close()
        with contextlib.suppress(OSError):
            os.unlink(self.socket)
        if os.path.isdir(self._dir) and not os.listdir(self._dir):
            os.rmdir(self._dir)
