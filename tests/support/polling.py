"""The one way tests wait for something: poll a predicate until a deadline.

Waiting on a real outcome (a file's content, a key in etcd, a unit's state)
is how tests synchronise with processes they do not control; a sleep is not.
``wait_for`` answers whether it happened; ``wait_until`` fails the test
naming what it waited for.
"""

from __future__ import annotations

import time
from typing import Callable, Tuple, Type

# Errors a predicate may raise while the thing it looks at is not there yet
# (a server not listening, a file not written): treated as "not yet".
NOT_YET: Tuple[Type[BaseException], ...] = (OSError,)


def _holds(predicate: Callable[[], object]) -> bool:
    try:
        return bool(predicate())
    except NOT_YET:
        return False


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02
) -> bool:
    """Poll until ``predicate()`` is true or ``timeout`` seconds pass; the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _holds(predicate):
            return True
        time.sleep(interval)
    return _holds(predicate)


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Like :func:`wait_for`, but fail the test (AssertionError) naming ``what``."""
    if not wait_for(predicate, timeout):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
