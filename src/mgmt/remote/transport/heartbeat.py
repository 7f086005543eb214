"""Is the host still there? SSH keepalives that expect an answer, and a deadline.

paramiko's own keepalive (``Transport.set_keepalive``) asks for no reply, so a
host whose link went down is never noticed: TCP retransmits for a quarter of
an hour while the run waits. Here each connection sends OpenSSH's
``keepalive@openssh.com`` with want-reply (sshd answers every global request,
if only with a refusal) every ``interval`` seconds, and a host that has not
answered for ``timeout`` seconds is *lost*: its transport is closed, so every
read and wait on it ends at once. When the run stops, :meth:`Heartbeat.hurry`
asks at once and allows a few seconds only, so ^C is not held up by a dead host.
A host still taking a bundle copy over a thin link gets longer (up to the
lost timeout): its answer is queued behind what the copy already sent, and
TCP shows it alive, acknowledging those bytes (:func:`draining`).
"""

import socket
import struct
import threading
import time
from typing import Optional

import paramiko

from mgmt.remote.transport.runner import HURRY_SECONDS

# How often the watch of a connection looks when no answer is due sooner (each 0.25 s
# was 400 wake-ups a second at 100 hosts, idle).
WATCH_IDLE = 1.0


class Heartbeat:
    """One thread per connection; ``lock`` serialises global requests (the tunnel's
    tcpip-forward shares paramiko's single pending-reply slot)."""

    def __init__(self, transport: paramiko.Transport, timeout: float, lock: threading.Lock):
        self.transport = transport
        self.timeout = float(timeout)
        self.interval = max(0.5, min(5.0, self.timeout / 6))
        self.lock = lock
        self.lost: Optional[str] = None
        self._deadline: Optional[float] = None  # an answer is due by then
        self._hurried = False
        self._hurried_at: Optional[float] = None
        self._draining_until = 0.0  # the deadline waits while the link drains
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._asker = threading.Thread(target=self._ask, name="heartbeat", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="heartbeat-watch", daemon=True)
        self._asker.start()
        self._watcher.start()

    def hurry(self) -> None:
        due = time.monotonic() + HURRY_SECONDS
        if self._hurried_at is None:
            self._hurried_at = time.monotonic()
        self._hurried = True
        if self._deadline is None or self._deadline > due:
            self._deadline = due
        self._wake.set()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()

    def _ask(self) -> None:
        while not self._closed.is_set() and self.transport.is_active():
            with self.lock:
                if self._deadline is None:
                    self._deadline = time.monotonic() + self.timeout
                try:
                    self.transport.global_request("keepalive@openssh.com", wait=True)
                except (paramiko.SSHException, EOFError, OSError):
                    return
                self._deadline = None
            self._wake.wait(self.interval)
            self._wake.clear()

    def _watch(self) -> None:
        while not self._closed.wait(self._until_next_look()):
            deadline = self._deadline
            now = time.monotonic()
            if deadline is not None and now > max(deadline, self._draining_until):
                if self._hurried and self._hurried_at is not None:
                    still = now < self._hurried_at + self.timeout
                    if still and draining(self.transport.sock):
                        self._draining_until = now + 1.0
                        continue
                waited = HURRY_SECONDS if self._hurried else self.timeout
                if self._draining_until and self._hurried_at is not None:
                    waited = now - self._hurried_at  # it was still taking bytes until lately
                self.lost = f"lost: no answer to SSH keepalives for {waited:.0f} s"
                self.transport.close()
                return
            if not self.transport.is_active():
                return

    def _until_next_look(self) -> float:
        """Seconds until the watch looks again: just past the answer's deadline, if
        that comes sooner than WATCH_IDLE (a hurry's, HURRY_SECONDS away, is seen
        in time from a look made before it was set)."""
        deadline = self._deadline
        if deadline is None:
            return WATCH_IDLE
        due = max(deadline, self._draining_until) - time.monotonic()
        return min(WATCH_IDLE, max(due, 0.0) + 0.01)


def draining(sock: object) -> bool:
    """Whether the peer is still acknowledging what was sent to it (bytes in
    flight, an ACK within the last second): alive, behind a slow link. A dead
    host sends no ACK; a frozen one (its receive window full) has nothing in
    flight. Linux's TCP_INFO (tcpi_unacked, tcpi_last_ack_recv); False elsewhere."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 64)  # type: ignore[attr-defined]
        (unacked,) = struct.unpack_from("I", info, 24)
        (last_ack_ms,) = struct.unpack_from("I", info, 56)
    except (AttributeError, OSError, struct.error):
        return False
    return unacked > 0 and last_ack_ms < 1000
