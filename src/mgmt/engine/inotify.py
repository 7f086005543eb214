"""Linux inotify through ctypes: the three system calls and the event format.

This replaces inotify_simple, which finds libc with
``ctypes.util.find_library("c")``: on Linux that runs ``ldconfig -p`` in a
subprocess when the module is imported. Every agent start paid for a fork, an
exec and the subprocess module, about a quarter of the agent's start-up CPU.
libc is already loaded in the interpreter, so ``dlopen(NULL)`` finds the calls.
"""

import ctypes
import errno
import os
import select
import struct
from collections import namedtuple
from typing import Iterator, List, Optional

from mgmt.errors import MgmtError

# What a read returns; ``name`` is "" for an event on the watched directory itself.
Event = namedtuple("Event", "wd mask cookie name")

# inotify_init1's EMFILE: almost always the first (128 instances by default).
INSTANCES_LIMIT = (
    "cannot watch files for changes: the user's inotify instances are at their limit"
    " (raise fs.inotify.max_user_instances with sysctl, or end programs that hold"
    " some), or this process's open files are (ulimit -n)"
)

_HEADER = struct.Struct("iIII")  # struct inotify_event, before its name
# Room for hundreds of events per read; the kernel refuses a buffer too small for
# the next event (EINVAL), and one event is at most 16 + NAME_MAX + 1 bytes.
_READ_SIZE = 64 * 1024


class flags:  # lower case, read as a namespace: flags.CREATE | flags.DELETE
    """The event and watch bits of <sys/inotify.h>."""

    ACCESS = 0x00000001
    MODIFY = 0x00000002
    ATTRIB = 0x00000004
    CLOSE_WRITE = 0x00000008
    CLOSE_NOWRITE = 0x00000010
    OPEN = 0x00000020
    MOVED_FROM = 0x00000040
    MOVED_TO = 0x00000080
    CREATE = 0x00000100
    DELETE = 0x00000200
    DELETE_SELF = 0x00000400
    MOVE_SELF = 0x00000800
    UNMOUNT = 0x00002000
    Q_OVERFLOW = 0x00004000
    IGNORED = 0x00008000
    ONLYDIR = 0x01000000
    DONT_FOLLOW = 0x02000000
    EXCL_UNLINK = 0x04000000
    MASK_ADD = 0x20000000
    ISDIR = 0x40000000
    ONESHOT = 0x80000000


_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)


def _check(result: int, path: Optional[str] = None) -> int:
    if result == -1:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number), *([path] if path is not None else []))
    return result


class INotify:
    """One inotify instance (close-on-exec): watch paths, read their events."""

    def __init__(self) -> None:
        """MgmtError (not an OSError saying 'Too many open files') past a limit."""
        fd = _libc.inotify_init1(os.O_CLOEXEC)
        if fd == -1 and ctypes.get_errno() == errno.EMFILE:
            raise MgmtError(INSTANCES_LIMIT)
        self._fd = _check(fd)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)

    def fileno(self) -> int:
        return self._fd

    def add_watch(self, path: str, mask: int) -> int:
        """The watch descriptor for ``path`` (the same one if it is watched already)."""
        return _check(_libc.inotify_add_watch(self._fd, os.fsencode(path), mask), path)

    def rm_watch(self, wd: int) -> None:
        _check(_libc.inotify_rm_watch(self._fd, wd))

    def read(self, timeout: Optional[int] = None) -> List[Event]:
        """Events waiting now; with ``timeout`` (ms) at most that long for one, else block."""
        if timeout is not None and not self._poll.poll(timeout):
            return []
        return list(parse_events(os.read(self._fd, _READ_SIZE)))

    def pending(self) -> bool:
        """Whether events wait to be read (False once closed)."""
        if self._fd < 0:
            return False
        # Not self._poll: the watcher's thread may be polling it (see read).
        return bool(select.select([self._fd], [], [], 0)[0])

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def parse_events(data: bytes) -> Iterator[Event]:
    """The events packed in one read: a fixed header, then a NUL-padded name."""
    offset = 0
    while offset < len(data):
        wd, mask, cookie, size = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        name = data[offset : offset + size].rstrip(b"\0")
        offset += size
        yield Event(wd, mask, cookie, os.fsdecode(name))
