"""A wake-up that a signal handler may give: a byte on a pipe, and no lock.

A ``threading.Event`` cannot safely be set from a signal handler while the main
thread waits on it. ``Event.wait()`` holds the event's lock for a few bytecodes
each time it wakes. Python runs the handler in that same main thread, in
between two bytecodes, and ``set()`` would then wait forever for a lock its own
thread holds. A remote agent hung this way on SIGINT once in a dozen test runs.
A pipe needs no lock: :meth:`Wakeup.set` is one non-blocking write.

And a signal may not reach the main thread at all: the kernel gives a process's
signal to any thread that does not block it. Python then runs the handler in
the main thread only at its next bytecode, which a main thread asleep in
``wait()`` never reaches: :meth:`Wakeup.taking_signals` has the signal itself
write to the pipe (``signal.set_wakeup_fd``), so the wait ends and the handler runs.
"""

import contextlib
import os
import select
import signal
import threading
from typing import Iterator, Optional


class Wakeup:
    """Like an Event: ``set()`` from any thread or signal handler; ``wait()`` and
    ``clear()`` from the one thread that waits."""

    def __init__(self) -> None:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        # File objects, not bare fds: a set() that races with close() finds the
        # file closed (ValueError) rather than writing into a reused fd number.
        self._read = open(read, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._write = open(write, "wb", buffering=0)  # noqa: SIM115
        self._poll = select.poll()
        self._poll.register(read, select.POLLIN)

    def set(self) -> None:
        with contextlib.suppress(ValueError):  # closed: the waiter is gone
            self._write.write(b"x")  # None when the pipe is full: it is set already

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Whether it is set, waiting up to ``timeout`` seconds (None: until it is)."""
        return bool(self._poll.poll(None if timeout is None else timeout * 1000))

    @contextlib.contextmanager
    def taking_signals(self) -> Iterator[None]:
        """For the block (in the main thread, which alone may call it): a signal that
        has a Python handler ends :meth:`wait`, whichever thread the kernel gave it to.
        Elsewhere than in the main thread (an agent run by a test) it does nothing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.set_wakeup_fd(self._write.fileno())
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous)

    def fileno(self) -> int:
        """Readable once set: for a select() that also waits on other files."""
        return self._read.fileno()

    def clear(self) -> None:
        while self._read.read(4096):  # None once the pipe is empty
            pass

    def close(self) -> None:
        self._read.close()
        self._write.close()
