"""A file range to a socket with the kernel's sendfile, in as few system calls as it takes.

Why not ``socket.sendfile``: on a socket with a timeout (ours have one, so that
a client that stops reading is dropped) CPython polls before *every* sendfile
call, even when the socket buffer has room, which doubles the system calls of a
large body; and it sizes each call by the file, not by what is left to send.
Here sendfile is called until the socket is full (EAGAIN), and only then does
the thread poll, with the socket's timeout: a client that takes no data for
that long is dropped, as before.

Tried and dropped: a blocking socket with SO_SNDTIMEO, so that one sendfile
call moves up to 1 GiB. It was faster on loopback, but Linux 6.x did not time
the call out for a client that had stopped reading (the wait restarts with each
piece a splice hands to TCP), so a stalled client would hold a thread.
"""

import os
import select
import socket
from typing import Optional

__all__ = ["send_range"]

# os.sendfile takes at most this per call (larger counts overflow on some systems).
_MAX_CALL = 1 << 30


def send_range(
    sock: socket.socket, fd: int, offset: int, count: int, timeout: Optional[float]
) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset``; the bytes sent (fewer: the file shrank).

    ``sock`` has a timeout (non-blocking underneath). Raises ``socket.timeout``
    when the client takes no data for ``timeout`` seconds, and OSError
    (BrokenPipeError, ...) when it hangs up.
    """
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    wait_ms = None if timeout is None else int(timeout * 1000)
    total = 0
    while total < count:
        try:
            sent = os.sendfile(sock.fileno(), fd, offset + total, min(count - total, _MAX_CALL))
        except BlockingIOError:  # the socket buffer is full: wait for the client
            if not poller.poll(wait_ms):
                raise socket.timeout(f"the client took no data for {timeout} s") from None
            continue
        if sent == 0:
            break  # end of file: it shrank
        total += sent
    return total
