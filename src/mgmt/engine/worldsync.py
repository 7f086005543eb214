"""This host in step with the world (etcd): its exports published, and everyone's
watched once the graph collects anything.

The planner hands each new graph to :meth:`WorldSync.sync` and goes on at once:
a thread of WorldSync's own publishes the newest graph's exports and starts the
watch. While etcd hangs (stopped, a stalled tunnel: it takes the connection and
says nothing) each call waits for its timeouts; on the planner, every graph
edit waited for them before it was applied. Exports superseded while a call is
under way are never sent; the newest are.

etcd (or the tunnel to it) may be away for a while: then it is said in one line
(again only when the reason changes, and "in step with etcd again" when it ends),
and both are tried again every WORLD_RETRY seconds (a newer graph at once) while
the rest of the graph runs. A run that ends out of step says why
(:attr:`WorldSync.error`, final after :meth:`WorldSync.close`): its exports
never reached the other hosts.
"""

import threading
import time
from typing import Any, Callable, Dict, List, Optional

from mgmt.errors import MgmtError
from mgmt.graph.model import Graph
from mgmt.log import get_logger

log = get_logger("agent")

WORLD_RETRY = 1.0
# How long a stop waits for a publish under way: a live etcd answers in
# milliseconds, one that hangs would hold the stop for its timeouts.
STOP_GRACE = 1.0


class WorldSync:
    """Publishes and watches for the agent's planner, which hands it each graph
    (:meth:`sync`) and never waits on etcd."""

    def __init__(
        self,
        world: Any,
        on_exported: Callable[[], None],
        on_error_changed: Optional[Callable[[], None]] = None,
        noop: bool = False,
        on_pending: Optional[Callable[[bool], None]] = None,
    ):
        """``on_exported``: called when other hosts' exports change;
        ``on_error_changed``: when :attr:`error` changed (the converged report
        carries it). ``noop`` (--noop): publish nothing, as mgmt: the other
        hosts would apply what a run that changes nothing published.
        ``on_pending(p)``: :attr:`pending` changed (under WorldSync's lock)."""
        self.world = world
        self.noop = noop
        self._noop_said = False
        self.error: Optional[str] = None  # why it is out of step, None if it is not
        self._on_exported = on_exported
        self._on_error_changed = on_error_changed or (lambda: None)
        self._cond = threading.Condition()
        self._exports: Optional[Dict[Any, Dict[str, Any]]] = None  # the newest, until sent
        self._collects = False  # the newest graph collects: watch everyone's exports
        self._cancel_watch: Optional[Callable[[], None]] = None  # set once watching
        self._retry_at: Optional[float] = None  # set while out of step
        self._sending = False  # exports handed to etcd, no answer yet
        self._closed = False
        self._ended = False  # close() said the last word on error
        self._thread: Optional[threading.Thread] = None
        # Graphs handed that had something to send, and the newest of them tried
        # (once: retries are not counted, etcd may stay away), for :attr:`pending`.
        self._handed = self._tried = 0
        self._had_exports = False  # the last graph handed exported something
        self._on_pending = on_pending or (lambda pending: None)
        self._told = False

    @property
    def pending(self) -> bool:
        """Whether the newest graph's exports (or the watch it needs) were not
        tried yet: the other hosts, this one among them if it collects its own,
        would miss them. Work for the converger, as a read of the exports is."""
        with self._cond:
            return self._handed > self._tried

    def _tell(self) -> None:
        pending = self._handed > self._tried
        if pending != self._told:
            self._told = pending
            self._on_pending(pending)

    @property
    def watching(self) -> bool:
        """Whether the watch on everyone's exports runs (it tells of every change)."""
        with self._cond:
            return self._cancel_watch is not None

    def sync(self, graph: Graph) -> None:
        """Hand over ``graph``: its exports are published, and everyone's watched if
        it collects, by WorldSync's thread. Returns at once."""
        if self.world is None:
            return
        from mgmt.engine.exchange import exports

        wanted = None
        if not self.noop:
            wanted = exports(graph)
        elif graph.exported() and not self._noop_said:
            count = len(graph.exported())
            log.info("--noop: %d exported resource(s) not published", count)
            self._noop_said = True
        with self._cond:
            if self._closed:
                return
            if wanted is not None:
                self._exports = wanted
            self._collects = bool(graph.collect)
            had, self._had_exports = self._had_exports, bool(wanted)
            if wanted or had or (self._collects and self._cancel_watch is None):
                self._handed += 1
                self._tell()
            self._retry_at = None  # a new graph is tried at once
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="worldsync", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def close(self) -> None:
        """Stop: an attempt under way (or due now: a graph handed just before) gets
        STOP_GRACE seconds, no retry starts; then :attr:`error` says whether the
        newest exports reached etcd."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(STOP_GRACE)
        with self._cond:
            self._ended = True
            cancel, self._cancel_watch = self._cancel_watch, None
            if self.error is None and (self._sending or self._exports is not None):
                self.error = (
                    "cannot publish exported resources: etcd did not answer before the stop"
                )
        if cancel is not None:
            try:
                cancel()
            except Exception as err:
                log.debug("cancel failed: %s", err)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    watch = self._collects and self._cancel_watch is None and not self._closed
                    pending = self._exports is not None or watch
                    wait = 0.0 if self._retry_at is None else self._retry_at - time.monotonic()
                    # After close(), only what is due now (a graph handed just before
                    # it); none at all once close() has given up waiting.
                    if self._ended or (self._closed and (not pending or wait > 0)):
                        return
                    if pending and wait <= 0:
                        break
                    self._cond.wait(wait if pending else None)
                wanted, self._exports = self._exports, None
                self._sending = wanted is not None
                handed = self._handed
            self._settle(self._attempt(wanted, watch), handed)

    def _attempt(self, wanted: Optional[Dict[Any, Dict[str, Any]]], watch: bool) -> List[str]:
        """Publish ``wanted`` (None: nothing new) and start the watch if asked; what failed."""
        failures = []
        if wanted is not None:
            try:
                self.world.export(wanted)
            except Exception as err:  # the thread must survive anything
                if not isinstance(err, MgmtError):
                    log.exception("publishing exported resources failed")
                failures.append(f"cannot publish exported resources: {err}")
                with self._cond:
                    if self._exports is None:  # tried again, unless newer ones came
                        self._exports = wanted
            else:
                with self._cond:
                    watching = self._collects and self._cancel_watch is not None
                if watching:
                    # The graph may collect what it just published, and the watch's
                    # news of it may lag: a read now, asked before this publish stops
                    # holding off "converged" (_settle), takes over from it.
                    self._on_exported()
        if watch:
            try:
                self._watch()
            except Exception as err:
                if not isinstance(err, MgmtError):
                    log.exception("watching exported resources failed")
                failures.append(f"cannot watch exported resources: {err}")
        return failures

    def _settle(self, failures: List[str], handed: int) -> None:
        """Record an attempt's outcome (for the graphs up to ``handed``); say it if
        it changed."""
        error = "; ".join(failures) or None
        with self._cond:
            self._sending = False
            self._tried = max(self._tried, handed)
            self._tell()
            if self._ended:  # close() gave up on this attempt and said so
                return
            if error is not None and error != self.error:  # said once, not at each retry
                log.error("%s (retrying)", error)
            elif error is None and self.error is not None:
                log.info("in step with etcd again")
            changed, self.error = error != self.error, error
            # A graph handed during the attempt is tried at once (sync), failed or not.
            retry = failures and self._handed == handed
            self._retry_at = time.monotonic() + WORLD_RETRY if retry else None
        if changed:
            self._on_error_changed()

    def _watch(self) -> None:
        """Watch the world's exports (MgmtError if etcd is away).

        A watch reports what changed since the last collect, but the planner may
        collect before or after it starts, or while etcd was away: it asks for a
        collect of its own, so nothing exported meanwhile is missed.
        """
        cancel = self.world.watch_exported(self._on_exported)
        with self._cond:
            closed = self._closed
            if not closed:
                self._cancel_watch = cancel
        if closed:  # close() is not waiting for it: end it here
            cancel()
            return
        self._on_exported()
