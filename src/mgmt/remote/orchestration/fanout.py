"""The fan-out: the single owner of a run's state.

Which hosts run (sessions, in --cconns slots), which converged, and when the
run stops are kept here and nowhere else. Sessions report their agents'
converged events to :class:`ConvergedStates` (handed to them when made);
signals, a failed etcd and the graph watcher only *ask* for things through
:class:`RunControl`; the main loop decides.

Convergence, as mgmt has it but without its limit on --cconns: each agent
reports true/false on its stdout whenever it turns idle or busy. A host has
converged once it has said "true" for --converged-timeout seconds without a
break. When remotes are still waiting for a slot, a converged host is stopped
and its slot goes to the next one; when none are waiting, the run ends once
every running host has converged together and no graph was re-sent for that
long. A host that stops answering is lost (mgmt.remote.transport.heartbeat)
and fails alone; the others go on.

Nothing here blocks on a lock held by another thread: sessions run in their
own threads and are told to stop; the main loop waits on a Wakeup with a
timeout, so a ^C is served at once even while bundles are being copied.
"""

import collections
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Deque, Dict, List, Optional

from mgmt.log import get_logger
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.context import RunContext
from mgmt.remote.orchestration.graphwatch import GraphWatcher
from mgmt.remote.orchestration.results import CONVERGED, FAILED, STOPPED, HostResult
from mgmt.remote.orchestration.session import Session
from mgmt.remote.transport.runner import HURRY_SECONDS
from mgmt.wakeup import Wakeup

log = get_logger("remote")

POLL = 0.25
SHUTDOWN_GRACE = 15.0  # sessions escalate to SIGKILL after 10 s themselves
# How long a stop waits for sessions that never got to run: past the runners' hurry
# (HURRY_SECONDS), so that a host silent since the stop is known lost by then.
CONNECT_GRACE = HURRY_SECONDS + 1.0


class RunControl:
    """Requests to the run from outside its loop (signals, etcd failing): made
    first, handed to whoever may ask, read only by the fan-out."""

    def __init__(self) -> None:
        self.wake = Wakeup()
        self.stop_reason: Optional[str] = None
        self.abort = False

    def request_stop(self, why: str) -> None:
        if self.stop_reason is not None:
            self.abort = True  # a second ^C: stop waiting for agents
        self.stop_reason = why
        self.wake.set()


class ConvergedStates:
    """Every host's converged state, as its agent last reported it."""

    def __init__(self, wake: Wakeup, publish: Callable[[str, bool], None]):
        self._wake = wake
        self._publish = publish  # mirrored by the endpoint, for anyone watching
        self._lock = threading.Lock()
        self._states: Dict[str, bool] = {}
        self._since: Dict[str, float] = {}  # idle since, by time.monotonic()

    def report(self, host: str, converged: bool) -> None:
        with self._lock:
            if self._states.get(host) is converged:
                return
            self._states[host] = converged
            if converged:
                self._since[host] = time.monotonic()
            else:
                self._since.pop(host, None)
        self._publish(host, converged)
        self._wake.set()

    def idle_since(self, host: str) -> Optional[float]:
        with self._lock:
            return self._since.get(host)

    def snapshot(self) -> Dict[str, bool]:
        with self._lock:
            return dict(self._states)


class Fanout:
    """Runs sessions for ``specs`` and returns their results, in the order given."""

    def __init__(
        self,
        specs: List[HostSpec],
        ctx: RunContext,
        control: RunControl,
        cconns: int = 0,
        converged_timeout: int = -1,
        watch_graphs: bool = True,
        session_factory: Optional[Callable[..., Session]] = None,
    ):
        """``session_factory(spec, ctx, report)``: the session for a host (default
        :class:`Session`; mgmt.remote.hierarchy makes secondaries' own)."""
        self.session_factory = session_factory or Session
        self.specs = specs
        self.ctx = ctx
        self.control = control
        self.cconns = cconns
        self.timeout = converged_timeout
        self.watch_graphs = watch_graphs
        self.converged = ConvergedStates(control.wake, ctx.endpoint.publish_converged)
        self._sessions: Dict[str, Session] = {}
        # By graph file: an edit finds its hosts at once (a scan of every session
        # at each of 100 hosts' edits cost as much as checking the edit).
        self._by_graph: Dict[Path, List[Session]] = {}
        self._threads: Dict[str, threading.Thread] = {}
        self._last_push = time.monotonic()

    # -- called from the graph watcher's thread ------------------------------------

    def graph_changed(self, spec: HostSpec) -> None:
        payload = self.ctx.payload(spec.graph)  # read and converted once for all its hosts
        sent = False
        for session in list(self._by_graph.get(spec.graph, ())):
            sent = session.send_graph(*payload) or sent
        if sent:
            self._last_push = time.monotonic()
            self.control.wake.set()

    # -- the run -----------------------------------------------------------------

    def run(self) -> List[HostResult]:
        pending: Deque[HostSpec] = collections.deque(self.specs)
        watcher = None
        if self.watch_graphs:
            watcher = GraphWatcher(_one_per_graph(self.specs), self.graph_changed)
        try:
            while pending or self._any_active():
                if self.control.stop_reason is not None:
                    break
                while pending and (self.cconns == 0 or len(self._active()) < self.cconns):
                    self._start(pending.popleft())
                wait = POLL
                if self.timeout >= 0:
                    due = self._converge(bool(pending))
                    if due is not None:  # wake when a host's quiet time is up
                        wait = min(POLL, max(due, 0.005))
                self.control.wake.wait(wait)
                self.control.wake.clear()
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

    def _any_active(self) -> bool:
        # Asked at each wake (every agent's converged event, every edit sent): the
        # first running host answers it, not a list of all of them.
        return any(not s.finished.is_set() for s in self._sessions.values())

    def _start(self, spec: HostSpec) -> None:
        session = self.session_factory(spec, self.ctx, self.converged.report)
        self._sessions[spec.name] = session
        self._by_graph.setdefault(spec.graph, []).append(session)

        def life() -> None:
            result = session.run()
            self.ended(session, result)
            if result.failed:
                log.error("%s: failed: %s", spec.name, result.message)
            self.control.wake.set()

        thread = threading.Thread(target=life, name="session-" + spec.name, daemon=True)
        self._threads[spec.name] = thread
        thread.start()

    def ended(self, session: Session, result: HostResult) -> None:
        """A host's session has ended with ``result`` (called in its thread)."""

    def _converge(self, slots_wanted: bool) -> Optional[float]:
        """Stop converged hosts; seconds until another may have converged (None: unknown)."""
        now = time.monotonic()
        running = [s for s in self._active() if s.running.is_set() and not s.stopping]
        since = {s.host: self.converged.idle_since(s.host) for s in running}
        # Only hosts that have said "true" count: with --converged-timeout 0 a
        # host that has not reported yet would otherwise pass at once (0 >= 0).
        idle = {h: max(t, self._last_push) for h, t in since.items() if t is not None}
        done = [s for s in running if s.host in idle and now - idle[s.host] >= self.timeout]
        due = [idle[h] + self.timeout - now for h in idle if idle[h] + self.timeout > now]
        if slots_wanted:
            for session in done:
                log.info("%s: converged; its slot goes to the next remote", session.host)
                session.stop(CONVERGED)
            return min(due, default=None)
        everyone = self._active()
        if everyone and len(done) == len(everyone):
            log.info("cluster converged for %d s: stopping %d remote(s)", self.timeout, len(done))
            for session in done:
                session.stop(CONVERGED)
            return None
        return min(due, default=None)

    def _shutdown(self) -> None:
        """Stop every agent, wait for the sessions to clean up, then give up on the rest."""
        active = self._active()
        if self.control.stop_reason is not None and active:
            log.info("%s: stopping %d remote(s)", self.control.stop_reason, len(active))
        for session in active:
            session.stop(STOPPED)
        started = time.monotonic()
        while self._active() and not self.control.abort:
            waited = time.monotonic() - started
            # Agents get their SIGINT and, 10 s later, SIGKILL; a session still
            # connecting (a silent host) has nothing on the host to clean up.
            if waited > SHUTDOWN_GRACE or (
                waited > CONNECT_GRACE and not any(s.started.is_set() for s in self._active())
            ):
                break
            self.control.wake.wait(POLL)
            self.control.wake.clear()
        waited = time.monotonic() - started
        for session in self._active():
            log.warning("%s: did not stop in time; dropping its connection", session.host)
            session.abort(_drop_reason_for(session, waited, self.control.abort))
        for name, thread in self._threads.items():
            # One that never connected may wait out its connect timeout: not for it.
            # It has nothing on its host, and starts nothing once stopped (Session.run).
            if self._sessions[name].connected.is_set():
                thread.join(5.0)
        for name, session in self._sessions.items():
            if session.result is None:  # still connecting, say: dropped all the same
                why = session.dropped or "session did not end"
                took = time.monotonic() - session.began if session.began is not None else 0.0
                session.result = HostResult(name, FAILED, seconds=took, message=why)


def _drop_reason_for(session: Session, waited: float, again: bool) -> Optional[str]:
    """Why a session still under way after the stop's grace fails its host; None
    when dropping it is still a stop: its host answers (a silent one is found lost
    by its runner's hurry, and said so first) and no agent of it ran there (what
    START made, its guard removes when the connection closes)."""
    if again:
        return "dropped: interrupted again before it had stopped"
    if not session.connected.is_set():
        return f"lost: no SSH answer within {waited:.0f} s of the stop"
    if session.started.is_set():
        return f"did not stop within {waited:.0f} s of the stop"
    return None


def _one_per_graph(specs: List[HostSpec]) -> List[HostSpec]:
    """The watcher calls back once per saved file, whichever hosts run it."""
    seen: Dict[str, HostSpec] = {}
    for spec in specs:
        seen.setdefault(str(spec.graph.resolve()), spec)
    return list(seen.values())


class SignalStop:
    """SIGINT, SIGTERM and SIGHUP (a closed terminal) ask the run to stop (twice:
    stop waiting) while in effect."""

    def __init__(self, control: RunControl):
        self.control = control
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> "SignalStop":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame) -> None:
        self.control.request_stop("interrupted by " + signal.Signals(signum).name)

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
