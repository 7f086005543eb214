"""Is the host still there? SSH keepalives that expect an answer, and a deadline.

paramiko's own keepalive (``Transport.set_keepalive``) asks for no reply, so a
host whose link went down is never noticed: TCP retransmits for a quarter of
an hour while the run waits. Here each connection sends OpenSSH's
``keepalive@openssh.com`` with want-reply (sshd answers every global request,
if only with a refusal) every ``interval`` seconds, and a host that has not
answered for ``timeout`` seconds is *lost*: its transport is closed, so every
read and wait on it ends at once. When the run stops, :meth:`Heartbeat.hurry`
asks at once and allows a few seconds only, so ^C is not held up by a dead host.
"""

import threading
import time
from typing import Optional

import paramiko

from mgmt.remote.transport.runner import HURRY_SECONDS


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
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._asker = threading.Thread(target=self._ask, name="heartbeat", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="heartbeat-watch", daemon=True)
        self._asker.start()
        self._watcher.start()

    def hurry(self) -> None:
        due = time.monotonic() + HURRY_SECONDS
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
        while not self._closed.wait(0.25):
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                waited = HURRY_SECONDS if self._hurried else self.timeout
                self.lost = f"lost: no answer to SSH keepalives for {waited:.0f} s"
                self.transport.close()
                return
            if not self.transport.is_active():
                return
