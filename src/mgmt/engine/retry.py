"""What a check's end, or an event, does to a failed vertex's tries.

A failed check retries as ``meta.retry`` says (``meta.delay`` apart); with no
try left the vertex is failed, and blocks what depends on it, until an event
comes: a new event deserves fresh tries. An event that came while the last try
failed, or just after (inotify tells of what a check did a moment late), may
mean it can succeed now: it gets one re-check, EVENT_RECHECK after the failure.
An event that comes as that re-check fails, or just after, is kept too, for one
last check LAST_RECHECK after its failure: it may be someone's fix made right
then (a folder in the way removed), not the check's own doing. Then no more (a
kind whose failing check makes an event of its own would otherwise fail on for
ever), until an event comes later than EVENT_RECHECK after a failure.

The engine (mgmt.engine.scheduler) calls these under its lock.
"""

import time

from mgmt.engine.outcome import message_of
from mgmt.engine.vertex import FAILED, OK, Vertex

EVENT_RECHECK = 0.5  # seconds
LAST_RECHECK = 2.0  # seconds after the failed re-check


def on_event(vertex: Vertex) -> bool:
    """An event for ``vertex`` (already marked dirty); whether to schedule it now
    (False: its one re-check is armed already)."""
    if vertex.status == FAILED:
        vertex.tries = vertex.spec.meta.retry
    if vertex.running:
        return True  # handled when the check ends (after_failure)
    if vertex.status == FAILED and time.monotonic() - vertex.failed_at < EVENT_RECHECK:
        if vertex.rechecked:
            return _arm_last(vertex)
        _arm_recheck(vertex)
    else:
        vertex.rechecked = vertex.kept = False
    return True


def after_failure(vertex: Vertex, error: Exception) -> bool:
    """A check of ``vertex`` failed; whether to schedule it again (a retry, or the
    re-check an event during the check earned)."""
    _delay_next(vertex)
    log = vertex.res.init.log
    if vertex.tries != 0:
        if vertex.tries > 0:  # below 0: forever
            vertex.tries -= 1
        left = "forever" if vertex.tries < 0 else f"{vertex.tries} left"
        log.warning("failed, will retry (%s): %s", left, message_of(error))
        vertex.dirty = True
        return True
    vertex.status = FAILED
    vertex.failed_at = time.monotonic()
    log.error("failed: %s", message_of(error))
    if vertex.dirty:  # an event came while it failed
        if vertex.rechecked:
            return _arm_last(vertex)
        _arm_recheck(vertex)
        return True
    return False


def after_success(vertex: Vertex) -> None:
    """A check of ``vertex`` succeeded: fresh tries for its next failure."""
    _delay_next(vertex)
    vertex.status = OK
    vertex.rechecked = vertex.kept = False
    vertex.tries = vertex.spec.meta.retry


def _delay_next(vertex: Vertex) -> None:
    """``meta.delay`` between two runs, as between two tries."""
    delay = vertex.spec.meta.delay / 1000.0
    vertex.not_before = time.monotonic() + delay if delay else 0.0


def _arm_recheck(vertex: Vertex) -> None:
    """The one re-check of a failed vertex, with a new event's fresh tries,
    EVENT_RECHECK after its failure."""
    vertex.rechecked = True
    vertex.tries = vertex.spec.meta.retry
    vertex.not_before = max(vertex.not_before, vertex.failed_at + EVENT_RECHECK)


def _arm_last(vertex: Vertex) -> bool:
    """An event once the re-check is spent: the last check, LAST_RECHECK after the
    failure, if not armed before; whether to schedule it."""
    if vertex.kept:
        return False
    vertex.kept = True
    vertex.tries = vertex.spec.meta.retry
    vertex.not_before = max(vertex.not_before, vertex.failed_at + LAST_RECHECK)
    return True
