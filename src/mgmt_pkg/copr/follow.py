"""Following COPR builds until each reaches an end state."""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence

from mgmt_pkg.copr.session import CoprFailed, CoprSession, Target

__all__ = ["FAILED_STATES", "FINAL_STATES", "follow_builds"]

# COPR's end states; "skipped" and "forked" mean the package is there all the same.
FINAL_STATES = frozenset({"succeeded", "skipped", "forked", "failed", "canceled"})
FAILED_STATES = frozenset({"failed", "canceled"})
DEFAULT_POLL_INTERVAL = 10.0


def follow_builds(
    session: CoprSession,
    target: Target,
    build_ids: Sequence[int],
    *,
    echo: Callable[[str], None],
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: Optional[float] = None,
) -> Dict[int, str]:
    """Poll each build until it ends, reporting every change of state; return id -> state.

    COPR has no push notification for API clients, so this polls. The wait
    starts at one second and doubles up to ``poll_interval`` (the user's to
    choose): the quick import step is reported promptly, while a long build is
    not polled more often than asked. A timeout (seconds) bounds the whole wait.
    """
    states: Dict[int, str] = {}
    pending: List[int] = list(build_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    wait = min(1.0, poll_interval)
    while pending:
        for build_id in list(pending):
            with session.errors(f"following build {build_id}"):
                state = str(session.answered(session.client.build_proxy.get, build_id).state)
            if state == "unknown":
                raise CoprFailed(
                    f"build {build_id} is in state 'unknown': {session.build_url(target, build_id)}"
                )
            if states.get(build_id) != state:
                echo(f"copr: build {build_id}: {state}")
                states[build_id] = state
            if state in FINAL_STATES:
                pending.remove(build_id)
        if not pending:
            break
        if deadline is not None and time.monotonic() >= deadline:
            urls = ", ".join(session.build_url(target, i) for i in pending)
            raise CoprFailed(f"gave up after {timeout:g} s; still building: {urls}")
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        time.sleep(wait if left is None else min(wait, left))
        wait = min(wait * 2, poll_interval)
    return states
