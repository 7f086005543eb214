"""The runner the initiator uses: paramiko, connected the way Fabric connects.

One SSH connection per host carries everything: commands are sessions
(channels) on it, the reverse tunnel is a port forward on it, uploads are a
command fed on stdin (no SFTP subsystem to start: it cost every host a process
and a round trip on its first copy). A :class:`~.heartbeat.Heartbeat` watches
that the host still answers.
"""

import contextlib
import dataclasses
import socket
import threading
from typing import Callable, Optional

import paramiko

from mgmt.remote.hostspec import HostSpec
from mgmt.remote.transport.connect import ConnectOptions, connect
from mgmt.remote.transport.heartbeat import Heartbeat
from mgmt.remote.transport.runner import Address, Become, Process, Runner, Tunnel
from mgmt.remote.transport.same_host import Endpoint, Login
from mgmt.remote.transport.tunnel import ReverseTunnel

# How often paramiko's reader thread of a connection wakes when nothing comes
# (its own default: 0.1 s), once the connection is up.
IDLE_READ_WAKE = 1.0


class ChannelProcess(Process):
    def __init__(self, channel: paramiko.Channel):
        self.channel = channel
        self.stdout = channel.makefile("rb")
        self.stderr = channel.makefile_stderr("rb")

    def send(self, data: bytes) -> None:
        self.channel.sendall(data)

    def close_stdin(self) -> None:
        self.channel.shutdown_write()

    def wait(self, timeout: Optional[float]) -> Optional[int]:
        if not self.channel.status_event.wait(timeout):
            if self.channel.closed or not self.channel.get_transport().is_active():
                return -1  # ended without a status: the connection went
            return None
        return self.channel.recv_exit_status()

    def close(self) -> None:
        self.channel.close()


class ParamikoRunner(Runner):
    """Connects in the constructor (RemoteError saying why not)."""

    def __init__(
        self,
        spec: HostSpec,
        options: ConnectOptions,
        lost_timeout: float = 30.0,
        become: Optional[Become] = None,
    ):
        self.host = spec.name
        self.become = become or Become()
        # A host silent for the run's --lost-timeout is lost, while connecting too.
        # The copy takes the run's ssh_config as already read: a copy made before
        # it was read would read and parse the files again, for each host, under
        # the lock every connection is made under (O(hosts x Host blocks) then).
        options = dataclasses.replace(
            options, timeout=min(options.timeout, lost_timeout), fabric_config=options.config()
        )
        self.timeout = options.timeout
        self.conn = connect(spec, options)
        self.transport: paramiko.Transport = self.conn.transport
        # paramiko's reader wakes each 0.1 s to see whether it was closed: 1,000
        # wake-ups a second at 100 hosts, half the idle initiator's CPU. Once logged
        # in, each second: a close still ends every channel's reads and waits at
        # once (paramiko closes them), only the reader thread itself ends later.
        self.transport.sock.settimeout(IDLE_READ_WAKE)
        self._global_lock = threading.Lock()
        self._heartbeat = Heartbeat(self.transport, lost_timeout, self._global_lock)

    def start(self, command: str) -> Process:
        return self.become.start(self._start_raw, command)

    def _start_raw(self, command: str, pty: bool) -> Process:
        channel = self._open_session()
        if pty:
            channel.get_pty()
        channel.exec_command(command)
        return ChannelProcess(channel)

    def _open_session(self) -> paramiko.Channel:
        """The channel a command runs on (a subclass may ask more of it)."""
        return self.transport.open_session(timeout=self.timeout)

    def tunnel(self, target: Callable[[], Address]) -> Tunnel:
        return ReverseTunnel(self.transport, target, self.host, self._global_lock)

    def lost(self) -> Optional[str]:
        return self._heartbeat.lost

    def hurry(self) -> None:
        self._heartbeat.hurry()

    @property
    def connected(self) -> bool:
        return self.transport.is_active()

    def endpoint(self) -> Optional[Endpoint]:
        """None through a ProxyJump or a ProxyCommand (the socket's peer is not the host)."""
        if not isinstance(self.transport.sock, socket.socket):
            return None
        try:
            address, port = self.transport.sock.getpeername()[:2]
        except OSError:
            return None
        return Endpoint.of(address, port)

    def login(self) -> Optional[Login]:
        endpoint = self.endpoint()
        user = self.transport.get_username()
        return Login(user, endpoint) if endpoint and user else None

    def abort(self) -> None:
        """Drop the connection under whatever runs on it."""
        self.transport.close()

    def close(self) -> None:
        self._heartbeat.close()
        with contextlib.suppress(Exception):
            self.conn.close()
