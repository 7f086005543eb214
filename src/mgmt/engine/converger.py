"""Convergence: has everything been idle long enough, and telling the world.

The engine says when it becomes busy or idle; world events and graph reloads
count as activity, and work outside the engine that may last (a read of the
exports the graph collects, while etcd hangs) holds it busy
(:meth:`Converger.hold`). The agent has converged once it has been idle, with
no activity, for ``timeout`` seconds. Independently of the timeout, every change
of the idle state is reported (to the world, ``/_mgmt/converged/<hostname>``,
or on stdout for the initiator of a remote run to relay) by a thread of its
own, so a burst of events costs at most one report in flight and the engine
never waits on etcd. So is every new idle period, and an edit that removed a
failed resource: the failures reported with the state may differ.
"""

import threading
import time
from typing import Callable, Optional, Set, Tuple

from mgmt.log import get_logger

log = get_logger("converger")

# A failed write (etcd or its tunnel briefly away) is tried again after this long;
# until it succeeds the state stays unreported, or the cluster would never converge.
RETRY_DELAY = 1.0
# How long a stop waits for a report under way: a live etcd answers in milliseconds.
STOP_GRACE = 1.0


class Converger:
    """``report(idle)`` records a change of the idle state (None: not recorded)."""

    def __init__(
        self,
        timeout: int,
        report: Optional[Callable[[bool], None]] = None,
        on_converged: Optional[Callable[[], None]] = None,
    ):
        self.timeout = timeout
        self._report = report
        self._on_converged = on_converged or (lambda: None)
        self._cond = threading.Condition()
        self._idle = False  # the engine idle, and nothing held
        self._engine_idle = False
        self._held: Set[str] = set()  # who holds it busy (see hold)
        self._idle_since: Optional[float] = None
        self._idle_periods = 0
        self._reported: Optional[Tuple[bool, int]] = None  # (idle, its period) last reported
        self._retry_at: Optional[float] = None  # after a failed write
        self._failing: Optional[str] = None  # the last write's error, while writes fail
        self._fired = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="converger", daemon=True)
        self._thread.start()

    def engine_idle(self, idle: bool) -> None:
        """Called by the engine (under its lock: stays quick) when it turns idle or busy."""
        with self._cond:
            self._engine_idle = idle
            self._set_idle(idle and not self._held)

    def hold(self, who: str, held: bool) -> None:
        """Work outside the engine (``who``: what it is) began (True) or ended:
        not idle while any is under way."""
        with self._cond:
            if held != (who in self._held):
                if held:
                    self._held.add(who)
                else:
                    self._held.discard(who)
                self._set_idle(self._engine_idle and not self._held)

    def _set_idle(self, idle: bool) -> None:
        if idle and not self._idle:
            self._idle_periods += 1
        self._idle = idle
        self._idle_since = time.monotonic() if idle else None
        self._cond.notify_all()

    def failures_changed(self) -> None:
        """Called by the engine (under its lock) when its failed resources changed while
        it stayed idle: the state is reported again, as for a new idle period."""
        with self._cond:
            if self._idle:
                self._idle_periods += 1
                self._cond.notify_all()

    def activity(self) -> None:
        """Something happened outside the engine (world event, graph reload): restart the clock."""
        with self._cond:
            if self._idle_since is not None:
                self._idle_since = time.monotonic()
            self._cond.notify_all()

    def close(self) -> None:
        """Stop; a report under way gets STOP_GRACE seconds (etcd may hang: a stop
        that waited for its timeouts was no longer prompt)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=STOP_GRACE)

    def _loop(self) -> None:
        while True:
            fire, report, state = False, None, None
            with self._cond:
                while not (fire or report is not None):
                    if self._closed:
                        return
                    left = None
                    state = (self._idle, self._idle_periods if self._idle else 0)
                    if self._report is not None and self._reported != state:
                        wait = 0.0 if self._retry_at is None else self._retry_at - time.monotonic()
                        if wait <= 0:
                            report = self._idle
                        else:
                            left = wait
                    if self.timeout >= 0 and not self._fired and self._idle_since is not None:
                        until = self._idle_since + self.timeout - time.monotonic()
                        if until <= 0:
                            self._fired = fire = True
                        left = until if left is None else min(left, until)
                    if not (fire or report is not None):
                        self._cond.wait(left)
            if report is not None:
                try:
                    self._report(report)
                except Exception as err:  # etcd trouble must not stop the agent
                    # Said once until a write succeeds again, not at each retry
                    # (every second, for as long as etcd is away; the error's
                    # words vary as the timing falls: a close, a broken pipe).
                    if self._failing is None:
                        log.warning("cannot record converged=%s (retrying): %s", report, err)
                    else:
                        log.debug("cannot record converged=%s (retrying): %s", report, err)
                    self._failing = str(err)
                    with self._cond:
                        self._retry_at = time.monotonic() + RETRY_DELAY
                else:
                    if self._failing is not None:
                        log.info("recorded converged=%s again", report)
                    self._failing = None
                    with self._cond:
                        self._reported = state
                        self._retry_at = None
            if fire:
                log.info("converged: idle for %s s", self.timeout)
                self._on_converged()
