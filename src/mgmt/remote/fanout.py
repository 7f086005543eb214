"""Many sessions at once: --cconns slots, cluster-wide convergence, ^C, the summary.

Convergence (REFERENCE.md §1, without mgmt's limit on --cconns): each agent
reports true/false on its stdout whenever it turns idle or busy (mgmt wrote
/_mgmt/converged/<host>; ours tell the initiator, see mgmt.remote.cluster). A
host has converged once it has said "true" for --converged-timeout seconds
without a break. When remotes are still waiting for a slot, a converged host is
stopped and its slot goes to the next one; when none are waiting, the run ends
once every running host has converged together and no graph was re-copied
for that long.

Nothing here blocks on a lock held by another thread: sessions run in their own
threads and are told to stop; the main loop only waits on an event with a
timeout, so a ^C is served at once even while bundles are being copied.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, TextIO

from mgmt.log import get_logger
from mgmt.remote.graphwatch import GraphWatcher
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.session import CONVERGED, FAILED, STOPPED, HostResult, RunContext, Session
from mgmt.wakeup import Wakeup

log = get_logger("remote")

POLL = 0.25
# The converged states are read again when a host reports a change, and at least
# this often in case a wake-up was missed (not at every one: with many hosts
# the loop wakes often).
RESYNC = 1.0
SHUTDOWN_GRACE = 15.0  # sessions escalate to SIGKILL after 10 s themselves
CONNECT_GRACE = 3.0  # how long a stop waits for sessions that never got to run


class Fanout:
    """Runs sessions for ``specs`` and returns their results, in the order given."""

    def __init__(
        self,
        specs: List[HostSpec],
        ctx: RunContext,
        cconns: int = 0,
        converged_timeout: int = -1,
        converged_source: Optional[Callable[[], Dict[str, bool]]] = None,
        watch_graphs: bool = True,
    ):
        self.specs = specs
        self.ctx = ctx
        self.cconns = cconns
        self.timeout = converged_timeout
        self.converged_source = converged_source
        self.watch_graphs = watch_graphs
        # Set by sessions, watchers and SignalStop's handler: see mgmt.wakeup.
        self.wake = Wakeup()
        self._stop_signal: Optional[str] = None
        self._abort = False
        self._sessions: Dict[str, Session] = {}
        self._threads: Dict[str, threading.Thread] = {}
        self._true_since: Dict[str, float] = {}
        self._states: Dict[str, bool] = {}
        self._states_read = float("-inf")  # when, by time.monotonic()
        self._states_changed = True
        self._last_push = time.monotonic()

    # -- called from signal handlers and watchers --------------------------------

    def request_stop(self, why: str) -> None:
        if self._stop_signal is not None:
            self._abort = True  # a second ^C: stop waiting for agents
        self._stop_signal = why
        self.wake.set()

    def converged_changed(self) -> None:
        """A host reported a change of its converged state (see mgmt.remote.cluster)."""
        self._states_changed = True
        self.wake.set()

    def graph_changed(self, spec: HostSpec) -> None:
        session = self._sessions.get(spec.name)
        if session is not None and session.repush_graph():
            self._last_push = time.monotonic()
            self._true_since.clear()
            self.wake.set()

    # -- the run -----------------------------------------------------------------

    def run(self) -> List[HostResult]:
        pending: Deque[HostSpec] = collections.deque(self.specs)
        watcher = GraphWatcher(self.specs, self.graph_changed) if self.watch_graphs else None
        try:
            while pending or self._active():
                if self._stop_signal is not None:
                    break
                while pending and (self.cconns == 0 or len(self._active()) < self.cconns):
                    self._start(pending.popleft())
                wait = POLL
                if self.timeout >= 0:
                    due = self._converge(bool(pending))
                    if due is not None:  # wake when a host's quiet time is up, not up to POLL later
                        wait = min(POLL, max(due, 0.005))
                self.wake.wait(wait)
                self.wake.clear()
        finally:
            if watcher is not None:
                watcher.close()
            self._shutdown()
        results = {name: s.result for name, s in self._sessions.items() if s.result}
        for spec in pending:
            results[spec.name] = HostResult(spec.name, STOPPED, message="never started")
        return [results[s.name] for s in self.specs if s.name in results]

    def _active(self) -> List[Session]:
        return [s for s in self._sessions.values() if not s.finished.is_set()]

    def _start(self, spec: HostSpec) -> None:
        session = Session(spec, self.ctx)
        self._sessions[spec.name] = session

        def life() -> None:
            result = session.run()
            if result.failed:
                log.error("%s: failed: %s", spec.name, result.message)
            self.wake.set()

        thread = threading.Thread(target=life, name=f"session-{spec.name}", daemon=True)
        self._threads[spec.name] = thread
        thread.start()

    def _converge(self, slots_wanted: bool) -> Optional[float]:
        """Stop converged hosts; seconds until another may have converged (None: unknown)."""
        now = time.monotonic()
        if self._states_changed or now - self._states_read >= RESYNC:
            self._states_changed = False
            try:
                self._states = self.converged_source() if self.converged_source else {}
            except Exception as err:  # a bad source must not end the run: the next poll retries
                log.debug("reading converged states failed: %s", err)
                self._states_changed = True
                return None
            self._states_read = now = time.monotonic()
        states = self._states
        running = [s for s in self._active() if s.running.is_set() and not s.stopping]
        for session in running:
            if states.get(session.host):
                self._true_since.setdefault(session.host, now)
            else:
                self._true_since.pop(session.host, None)
        # Only hosts that have said "true" count: with --converged-timeout 0 a
        # host that has not reported yet would otherwise pass at once (0 >= 0).
        done = [
            s
            for s in running
            if s.host in self._true_since and now - self._true_since[s.host] >= self.timeout
        ]
        due = [
            self._true_since[s.host] + self.timeout - now
            for s in running
            if s.host in self._true_since and s not in done
        ]
        if slots_wanted:
            for session in done:
                log.info("%s: converged; its slot goes to the next remote", session.host)
                session.stop(CONVERGED)
            return min(due, default=None)
        everyone = self._active()
        quiet = now - self._last_push >= self.timeout
        if everyone and len(done) == len(everyone) and quiet:
            log.info("cluster converged for %d s: stopping %d remote(s)", self.timeout, len(done))
            for session in done:
                session.stop(CONVERGED)
            return None
        if not quiet:
            due.append(self._last_push + self.timeout - now)
        return min(due, default=None)

    def _shutdown(self) -> None:
        """Stop every agent, wait for the sessions to clean up, then give up on the rest."""
        active = self._active()
        if self._stop_signal is not None and active:
            log.info("%s: stopping %d remote(s)", self._stop_signal, len(active))
        for session in active:
            session.stop(STOPPED)
        started = time.monotonic()
        while self._active() and not self._abort:
            waited = time.monotonic() - started
            # Agents get their SIGINT and, 10 s later, SIGKILL; a session still
            # connecting (a silent host) has nothing on the host to clean up.
            if waited > SHUTDOWN_GRACE or (
                waited > CONNECT_GRACE and not any(s.started.is_set() for s in self._active())
            ):
                break
            self.wake.wait(POLL)
            self.wake.clear()
        for session in self._active():
            log.warning("%s: did not stop in time; dropping its connection", session.host)
            session.abort()
        for thread in self._threads.values():
            thread.join(5.0)
        for name, session in self._sessions.items():
            if session.result is None:
                session.result = HostResult(name, FAILED, message="session did not end")


class SignalStop:
    """SIGINT/SIGTERM ask the fan-out to stop (twice: stop waiting) while in effect."""

    def __init__(self, fanout: Fanout):
        self.fanout = fanout
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame) -> None:
        self.fanout.request_stop(f"interrupted by {signal.Signals(signum).name}")

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def print_summary(results: List[HostResult], out: TextIO) -> None:
    """One line per host: host, result, bundle copied or cached, time, and why if it failed."""
    rows = [("host", "result", "bundle", "time", "")]
    rows += [(r.host, r.result, r.bundle, f"{r.seconds:.1f}s", r.message) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        out.write("  ".join(cells).rstrip() + "\n")
    out.flush()
