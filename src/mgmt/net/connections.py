"""A threading socket server whose kept-alive connections end when it stops.

``shutdown()`` only stops accepting: each connection's thread goes on serving
whatever its client asks next, for as long as the client keeps asking (the
idle timeout restarts with every request). A server a graph edit removed, or
replaced with another root or other files, kept answering from the old ones on
every kept-alive connection (dnf, anaconda, iPXE keep theirs). On stop, each
open connection's reading side is shut: an answer being sent is finished, and
then the connection ends, as a client expects any kept-alive connection may.
"""

import contextlib
import socket
import threading
from typing import Any, Set

__all__ = ["EndsConnectionsOnStop"]


class EndsConnectionsOnStop:
    """Mix into a ``socketserver`` threading server (before ThreadingMixIn)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._open: Set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.stopped = False  # once set, no connection takes another request
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
            if self.stopped:  # accepted just before the stop
                _stop_reading(request)
        super().process_request(request, client_address)  # type: ignore[misc]

    def shutdown_request(self, request: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def end_connections(self) -> None:
        """Let each connection finish the answer it is sending, then end it."""
        with self._open_lock:
            self.stopped = True
            for request in self._open:
                _stop_reading(request)


def _stop_reading(request: socket.socket) -> None:
    # A thread waiting for the next request reads the end at once; one sending
    # an answer goes on, and reads the end after it.
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_RD)
