"""A watch callback that counts its calls and lets a test wait for the next one."""

from __future__ import annotations

import threading

WAIT = 10.0  # upper bound for an event that should arrive in milliseconds


class Recorder:
    """Pass it as a watch's callback; ``wait_for(n)`` is true once it ran ``n`` times."""

    def __init__(self):
        self.calls = 0
        self._cond = threading.Condition()

    def __call__(self):
        with self._cond:
            self.calls += 1
            self._cond.notify_all()

    def wait_for(self, calls: int, timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.calls >= calls, timeout)
