"""A lingering close: end a connection whose client may still be sending a body.

The HTTP server never reads a request's body (a refused upload, a GET with one):
it answers and closes. A close() with unread bytes in the socket makes the
kernel send a reset, and a reset makes the client's kernel drop what it had
received and not yet handed over, our answer among it: a client still writing
its body then sees "connection reset" or "broken pipe" instead of the 405. As
nginx and Apache do, the server first ends its side (the client sees our answer
whole), then reads and drops what still comes until the client ends too or
falls silent, within a bound.
"""

import socket
import time

__all__ = ["linger"]

IDLE = 2.0  # seconds without a byte from the client: it is done or gone
TOTAL = 30.0  # seconds in all: a client that sends forever is cut off after this


def linger(sock: socket.socket, idle: float = IDLE, total: float = TOTAL) -> None:
    """Shut our side of ``sock`` and drop what the client still sends (see above)."""
    deadline = time.monotonic() + total
    try:
        sock.shutdown(socket.SHUT_WR)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            sock.settimeout(min(idle, left))
            if not sock.recv(1 << 16):
                return  # the client closed its side
    except OSError:  # a timeout (socket.timeout is one), a reset: nothing more to wait for
        return
