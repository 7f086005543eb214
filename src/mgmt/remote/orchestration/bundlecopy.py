"""The bundle's copy to a host that lacks it: down START's stdin, as many bytes
as START was told (mgmt/remote/protocol/start.sh takes exactly that many, checks
their sha256, and removes a partial copy whatever ends the session).

Imported by secondaries too (mgmt.remote.hierarchy): Python 3.6, standard library.
"""

import contextlib
from pathlib import Path
from typing import Callable

from mgmt.remote.transport.runner import Process, is_connection_error

CHUNK = 256 * 1024
PAD_MAX = 64 * 1024 * 1024  # at most this much padding for an abandoned copy (a pty)
PAD_WAIT = 10.0  # for START to end once the padding is in
END_WAIT = 2.0  # for START's status, once a copy found its channel closed


def send_bundle(
    process: Process, bundle: Path, size: int, stopping: Callable[[], bool], pty: bool
) -> bool:
    """Send ``size`` bytes of ``bundle``; False if ``stopping()`` came true first
    (the copy was abandoned; see :func:`_abandon`)."""
    sent = 0
    with bundle.open("rb") as local:
        while True:
            if stopping():
                _abandon(process, size - sent, pty)
                return False
            chunk = local.read(CHUNK)
            if not chunk:
                return True
            process.send(chunk)
            sent += len(chunk)


def _abandon(process: Process, left: int, pty: bool) -> None:
    """Under a pty (sudo with requiretty) closing mid-copy is a hangup, after
    which Debian's sudo 1.9.13 (use_pty) was seen spinning, orphaned, once its
    command ended. So the copy is made up to its size with zeros instead:
    START finds the sha256 wrong, removes the copy and its run dir and ends,
    and sudo with it. Without a pty, closing is enough (START's guard)."""
    if not pty or left > PAD_MAX:
        return
    zeros = bytes(CHUNK)
    with contextlib.suppress(OSError, EOFError):
        while left > 0:
            process.send(zeros[: min(left, CHUNK)])
            left -= CHUNK
        process.wait(PAD_WAIT)


def ended_mid_copy(process: Process, err: BaseException) -> bool:
    """Whether ``err``, raised by the copy, is START having ended under it (it cannot
    write the bundle: exit 98), the channel closed with the copy still in flight (a
    bundle larger than SSH's window): its status and words say why then, not a
    "connection lost"."""
    if not is_connection_error(err):
        return False
    status = process.wait(END_WAIT)
    return status is not None and status >= 0
