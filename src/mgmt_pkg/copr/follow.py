"""Following COPR builds until each reaches an end state."""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence

from mgmt_pkg.copr.session import CoprFailed, CoprSession, CoprUnavailable, Target

__all__ = ["FAILED_STATES", "FINAL_STATES", "follow_again", "follow_builds"]

# COPR's end states; "skipped" and "forked" mean the package is there all the same.
FINAL_STATES = frozenset({"succeeded", "skipped", "forked", "failed", "canceled"})
FAILED_STATES = frozenset({"failed", "canceled"})
DEFAULT_POLL_INTERVAL = 10.0
# How long COPR may go without answering (a restart, a proxy's 502s, a dropped
# link) before following stops; the builds themselves go on at COPR meanwhile.
UNAVAILABLE_FOR = 600.0
OUTAGE_PAUSE = 1.0


def follow_again(session: CoprSession, target: Target, build_ids: Sequence[int]) -> str:
    """What to tell a user who stops following (or whom we stop): the builds go on."""
    one = len(build_ids) == 1
    urls = ", ".join(session.build_url(target, i) for i in build_ids)
    ids = " ".join(str(i) for i in build_ids)
    # The same config, or the command would ask another COPR (or none).
    chosen = session.config_option()
    return (
        f"{'the build goes' if one else 'the builds go'} on at COPR: {urls}; "
        f"follow {'it' if one else 'them'} with: mgmt-pkg copr watch {target} {ids}{chosen}"
    )


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
    COPR not answering is waited out (UNAVAILABLE_FOR at most): a build lasts far
    longer than a frontend's restart, and it does not stop when we cannot see it.
    """
    states: Dict[int, str] = {}
    pending: List[int] = list(build_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    wait = min(1.0, poll_interval)
    unavailable_since: Optional[float] = None
    while pending:
        try:
            for build_id in list(pending):
                state = _state(session, target, build_id, deadline)
                if states.get(build_id) != state:
                    echo(f"copr: build {build_id}: {state}")
                    states[build_id] = state
                if state in FINAL_STATES:
                    pending.remove(build_id)
            unavailable_since = None
        except CoprUnavailable as error:
            now = time.monotonic()
            if unavailable_since is None:
                unavailable_since = now
                echo(f"copr: {error}; asking again (for up to {UNAVAILABLE_FOR:g} s)")
            elif now - unavailable_since >= UNAVAILABLE_FOR:
                raise CoprFailed(f"{error}; {follow_again(session, target, pending)}") from error
        if not pending:
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise CoprFailed(
                f"gave up after {timeout:g} s; {follow_again(session, target, pending)}"
            )
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        # While COPR is away, not more than once a second, whatever --poll-interval
        # says: refused connections fail at once, and a busy loop would hammer it.
        pause = wait if unavailable_since is None else max(wait, OUTAGE_PAUSE)
        time.sleep(pause if left is None else min(pause, left))
        wait = min(wait * 2, poll_interval)
    return states


def _state(session: CoprSession, target: Target, build_id: int, deadline: Optional[float]) -> str:
    with session.errors(f"following build {build_id}"):
        build = session.answered(session.client.build_proxy.get, build_id, deadline=deadline)
    # `copr watch` takes the project and the ids from the user: a build of
    # another project would be followed under URLs that lead nowhere.
    owner, project = getattr(build, "ownername", None), getattr(build, "projectname", None)
    if None not in (owner, project) and (owner, project) != (target.owner, target.project):
        raise CoprFailed(f"build {build_id} belongs to {owner}/{project}, not to {target}")
    state = str(build.state)
    if state == "unknown":
        raise CoprFailed(
            f"build {build_id} is in state 'unknown': {session.build_url(target, build_id)}"
        )
    return state
