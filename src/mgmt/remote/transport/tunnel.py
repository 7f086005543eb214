"""A reverse tunnel: a loopback port on the host that leads to our etcd.

We ask the host's sshd to listen on 127.0.0.1 port 0 (a free port it picks,
not a fixed 2379 that two runs or another user could already hold) and hand
each accepted connection to us as a channel, which we splice to the initiator's
etcd (started by the first such connection: see
:mod:`mgmt.remote.orchestration.etcd`).
Driven through paramiko's ``Transport.request_port_forward`` directly:
Fabric's ``forward_remote`` needs a fixed port and lets one failed local dial
raise out of paramiko's transport thread, killing the connection. Here a failed
dial closes that one channel and the tunnel keeps serving.

The port alone is no authority: etcd on the other end requires the run's
credentials (handed to the agent on its settings line), so other users on the host who
find the port get nothing.
"""

import contextlib
import select
import socket
import threading
from typing import Callable, List, Optional, Tuple

import paramiko

from mgmt.errors import MgmtError, RemoteError
from mgmt.log import get_logger
from mgmt.remote.transport.runner import Tunnel

log = get_logger("remote")

Address = Tuple[str, int]
DIAL_TIMEOUT = 5.0
CHUNK = 64 * 1024


class ReverseTunnel(Tunnel):
    """Remote 127.0.0.1:<port> -> local ``target()``, for the life of one transport.

    ``target`` is asked for each connection, in that connection's own thread, so
    it may block (until etcd serves) or raise MgmtError (etcd could not start);
    either way only that connection waits or is dropped.
    """

    def __init__(
        self,
        transport: paramiko.Transport,
        target: Callable[[], Address],
        host: str,
        global_lock: Optional[threading.Lock] = None,
    ):
        self.transport = transport
        # paramiko keeps one reply slot for global requests: the heartbeat's
        # keepalives and our tcpip-forward must not be in flight together.
        self._global_lock = global_lock or threading.Lock()
        self.target = target
        self.host = host
        self.port: Optional[int] = None
        self.failed_dials = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: List[Tuple[paramiko.Channel, socket.socket]] = []

    def open(self) -> int:
        """Start listening on the host; returns the port sshd picked."""
        try:
            with self._global_lock:
                self.port = self.transport.request_port_forward(
                    "127.0.0.1", 0, handler=self._accept
                )
        except paramiko.SSHException as err:
            if not self.transport.is_active():
                raise  # the connection went: said as such by the session
            raise RemoteError(
                self.host,
                f"sshd refused the port forwarding the agent needs to reach etcd ({err});"
                " allow it for this user (AllowTcpForwarding remote or yes)",
            ) from None
        log.debug("%s: tunnel from 127.0.0.1:%s", self.host, self.port)
        return self.port

    def _accept(self, channel: paramiko.Channel, origin, server) -> None:
        # Runs in paramiko's transport thread: never block or raise here.
        threading.Thread(
            target=self._serve, args=(channel,), name=f"tunnel-{self.host}", daemon=True
        ).start()

    def _serve(self, channel: paramiko.Channel) -> None:
        try:
            target = self.target()
            sock = socket.create_connection(target, timeout=DIAL_TIMEOUT)
        except (OSError, MgmtError) as err:
            self.failed_dials += 1
            why = err.strerror if isinstance(err, OSError) and err.strerror else err
            log.warning(
                "%s: tunnel: cannot reach etcd (%s); this connection is dropped, the tunnel stays",
                self.host,
                why,
            )
            channel.close()
            return
        sock.settimeout(None)
        with self._lock:
            if self._closed.is_set():
                sock.close()
                channel.close()
                return
            self._open.append((channel, sock))
        try:
            self._splice(channel, sock)
        finally:
            with self._lock:
                if (channel, sock) in self._open:
                    self._open.remove((channel, sock))
            sock.close()
            with contextlib.suppress(EOFError, OSError):  # the connection may be gone (^C)
                channel.close()

    def _splice(self, channel: paramiko.Channel, sock: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([sock, channel], [], [], 1.0)
            except (OSError, ValueError):
                return  # one side was closed under us
            try:
                for source in ready:
                    data = source.recv(CHUNK)
                    if not data:
                        return
                    target = channel if source is sock else sock
                    target.sendall(data)
            except (OSError, EOFError, paramiko.SSHException):
                return

    def close(self, cancel: bool = True) -> None:
        """Drop every spliced connection and (``cancel``) stop listening on the host.

        Without ``cancel`` the port stays until the connection closes, which
        saves a round trip when that is what comes next.
        """
        self._closed.set()
        if cancel and self.port is not None and self.transport.is_active():
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                self.transport.cancel_port_forward("127.0.0.1", self.port)
        with self._lock:
            for channel, sock in self._open:
                channel.close()
                sock.close()
            self._open.clear()
