"""The running agent: graph file + world + engine + converger, until stopped.

One *planner* thread owns the graph: it reloads the file after it is saved,
re-collects after the world's exports were read again, and hands the engine
the resources to run; the engine applies only the difference. Watch callbacks
just set a flag and wake the planner, so neither inotify nor etcd ever waits on
a reload; nor does the planner ever wait on etcd, to publish (WorldSync's thread
does) or to read the exports (Collection's reader does).
"""

import gc
import os
import re
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from mgmt.engine.exchange import Collection
from mgmt.engine.outcome import cut_error
from mgmt.engine.worldsync import WorldSync
from mgmt.errors import GraphError, MgmtError
from mgmt.graph.model import Graph, ResourceSpec
from mgmt.graph.parse import parse_graph, read_graph_text
from mgmt.log import get_logger
from mgmt.settings import Settings
from mgmt.wakeup import Wakeup
from mgmt.world.api import Failure

log = get_logger("agent")

# Editors write in several steps; wait this long after the last event before reading
# (not after a finished write: see _on_graph_saved).
RELOAD_QUIET = 0.03
# A graph read bad (empty, cut short) is said only if no further write comes within
# this long: a writer rewriting it in place (`cat > g.yaml`, a template engine) was
# caught between its truncation and its write, and under load it may take a while.
BAD_GRAPH_GRACE = 0.5


def read_and_parse(path: str) -> "Tuple[str, Graph]":
    """A graph file's text and its graph; raises GraphError (exit 2) naming the file.
    Only a regular file is read (read_graph_text): a graph file replaced by a
    FIFO would block the planner for ever."""
    text = read_graph_text(path)
    return text, parse_graph(text, path, real_paths=True)


class Agent:
    def __init__(
        self,
        settings: Settings,
        world: Any = None,
        state_dir: Optional[str] = None,
        first: "Optional[Tuple[str, Graph]]" = None,
    ):
        """``first``: the graph file as :func:`read_and_parse` read it before the
        agent was made (so a bad one fails before a state dir or etcd exists);
        read again once watched, it is parsed again only if it changed."""
        if settings.file is None:
            raise MgmtError("no graph file given (use --file)")
        self.settings = settings
        self._first = first
        self.world = world
        self.state_dir = os.fspath(state_dir or settings.prefix)
        self.stopping = threading.Event()
        self._main_wake = Wakeup()  # what the main thread waits on while the agent runs
        # Whether the agent was converged when it ended (the --json "converged"):
        # its own --converged-timeout fired, or it was idle when stopped (see
        # _stopped_converged). _timed_out tells the log which way it ended.
        self.converged = False
        self._timed_out = False
        self.graph: Optional[Graph] = None
        self._graph_text = ""  # as last read: an unchanged save is not parsed again
        self._wake = threading.Condition()
        self._graph_dirty = False
        self._collect_dirty = False
        # The graph's resources and the collected; the exports are read on a thread
        # of the collection's own, which raises the collect flag with each answer.
        self.collection = Collection(
            world, self._on_collected, lambda pending: self._hold("collect", pending)
        )
        self._planning = False  # the planner took the flags above and is applying them
        self._last_event = 0.0
        self._cancels: List[Callable[[], None]] = []
        self.world_sync = WorldSync(
            world,
            self._on_exported,
            self._world_error_changed,
            settings.noop,
            lambda pending: self._hold("publish", pending),
        )
        self.engine: Any = None
        self.watcher: Any = None
        self.converger: Any = None
        self.services: Any = None  # what this agent's resources share (base.Services)

    # -- lifecycle ----------------------------------------------------------

    def stop(self) -> None:
        """Ask the agent to stop, from any thread (from a signal handler:
        :meth:`stop_from_signal`)."""
        self.stopping.set()
        with self._wake:
            self._wake.notify_all()
        self._main_wake.set()

    def stop_from_signal(self) -> None:
        """Ask the agent to stop, from a signal handler: this takes no lock, it only
        wakes the main thread, which then calls :meth:`stop` (see mgmt.wakeup)."""
        self._main_wake.set()

    def run(self) -> int:
        """Run until stopped or converged; 0 when fine, 1 if resources ended failed.

        Failed resources give 1 however the run ended (converged, ^C, SIGTERM):
        remote agents are always stopped by a signal, and the initiator reads
        their status to tell a host that failed from one that converged.
        """
        from mgmt.engine.converger import Converger
        from mgmt.engine.scheduler import Engine
        from mgmt.engine.watcher import FileWatcher
        from mgmt.resources.base import Services

        # a remote agent's start (see mgmt.remote.protocol.launcher); gc.freeze is 3.7+
        if not gc.isenabled() and hasattr(gc, "freeze"):
            # What the imports made (modules, classes) lives as long as the
            # process: keep it out of the collector's scans once it runs again.
            gc.freeze()  # novermin
        path = os.fspath(self.settings.file)  # type: ignore[arg-type]
        self.watcher = FileWatcher()
        self.services = Services()
        planner = threading.Thread(target=self._plan_loop, name="planner", daemon=True)
        try:
            # Watch before the first read, so an edit made meanwhile is not missed.
            if not self.settings.no_watch:
                from mgmt.engine.graphfile import GraphFileWatch

                watch = GraphFileWatch(
                    self.watcher, path, self._on_graph_event, self._on_graph_saved
                )
                self._cancels.append(watch.close)
            text = read_graph_text(path)
            if self._first is not None and self._first[0] == text:
                self.graph = self._first[1]
            else:
                self.graph = parse_graph(text, path, real_paths=True)  # bad at start: exit 2
            self._first = None
            self._graph_text = text
            self.converger = Converger(
                self.settings.converged_timeout, self._converged_reporter(), self._converged
            )
            self.engine = Engine(
                self._make_init,
                noop=self.settings.noop,
                on_idle=self.converger.engine_idle,
                on_failures_changed=self.converger.failures_changed,
            )
            self.watcher.batch = self.engine.batched
            if self.world is None and (self.graph.exported() or self.graph.collect):
                log.warning("no world (no server, no seeds): exports and collects are off")
            # A stop asked while it started (^C, the initiator's stop) applies nothing.
            if not self._main_wake.wait(0):
                self.world_sync.sync(self.graph)  # published meanwhile (see WorldSync)
                self._apply(first=True)
                self.engine.announce_idle()
                planner.start()
                gc.enable()  # start-up is over: see mgmt.remote.protocol.launcher
                with self._main_wake.taking_signals():  # however the kernel gives them
                    self._main_wake.wait()  # stop(), or a signal (stop_from_signal)
                if not self.converged:
                    self.converged = self._stopped_converged()
        finally:
            self._shutdown(planner)
            self._main_wake.close()
        if self.settings.json:
            self._print_report()
        failed = self.engine.failures()  # a group's failed members, each counted
        how = "converged" if self._timed_out else "stopped"
        if failed:
            log.error("%s with %d failed resource(s)", how, len(failed))
        left_out = self.collection.error
        if left_out is not None:
            log.error("%s without the collected resources: %s", how, left_out)
        if self.world_sync.error is not None:  # this host's exports never reached the others
            log.error("%s, but %s", how, self.world_sync.error)
        return 1 if failed or self._errors() else 0

    def _errors(self) -> List[str]:
        """What failed the run beside its resources: collected resources left out,
        the world out of step (--json errors, a detached cluster's failures)."""
        return [e for e in (self.collection.error, self.world_sync.error) if e is not None]

    def _print_report(self) -> None:
        """The --json document on stdout (see mgmt.engine.report), after the last log line."""
        from mgmt.engine import report

        outcomes = self.engine.outcomes() if self.engine is not None else []
        doc = report.document(
            self.settings.hostname, self.settings.noop, self.converged, outcomes, self._errors()
        )
        report.print_document(doc, to_initiator=self.settings.converged_stdout)

    def _converged_reporter(self) -> Optional[Callable[[bool], None]]:
        if self.settings.converged_stdout:  # a remote run's agent: its initiator relays them
            from mgmt.remote.protocol import print_converged

            return print_converged
        if self.world is None:
            return None
        world = self.world

        def report(idle: bool) -> None:
            # With the resources that ended failed: a detached cluster, which has no
            # initiator to read this agent's exit status, says so from them (and
            # from collected resources left out, as if the graph had failed).
            failures = self.engine.failures() if idle else []
            for error in self._errors() if idle else []:
                failures.append(Failure("graph", self.graph.name, cut_error(error)))
            world.set_converged(idle, failures)

        return report

    def _converged(self) -> None:
        self.converged = self._timed_out = True
        self.stop()

    def _stopped_converged(self) -> bool:
        """Whether the agent, stopped before its own timeout (a signal, stop()), was
        converged then: the idle state the converger reports (nothing queued,
        running or waiting for a retry; a failed resource no longer retried
        counts as done, "status" reports it), and no reload or collect left to
        the planner, nor a read of the exports it collects asked and not yet
        applied, nor a graph's exports not yet tried. A remote run's agent has
        no timeout of its own: the initiator applies it to these reports and
        then sends SIGINT, which does not say why (converged, or the run cut
        short). The host's row says why; the agent says what it was."""
        if self.engine is None:
            return False
        with self._wake:
            if self._graph_dirty or self._collect_dirty or self._planning:
                return False
        if self.collection.pending or self.world_sync.pending:
            return False
        return bool(self.engine.idle)

    def _shutdown(self, planner: threading.Thread) -> None:
        self.stop()
        self._cancel_watches()
        if planner.is_alive():
            planner.join(timeout=5)
        self.world_sync.close()  # before the run's end reads its error
        self.collection.close()
        if self.engine is not None:
            self.engine.stop()
        if self.converger is not None:
            self.converger.close()
        if self.services is not None:
            self.services.close()  # after the engine: no resource uses them any more
        if self.watcher is not None:
            self.watcher.close()

    def _cancel_watches(self) -> None:
        while self._cancels:
            cancel = self._cancels.pop()
            try:
                cancel()
            except Exception as err:
                log.debug("cancel failed: %s", err)

    # -- what to run --------------------------------------------------------

    def _make_init(self, spec: ResourceSpec, logger, event: Callable[[], None]):
        from mgmt.resources.base import Init

        safe = re.sub(r"[^A-Za-z0-9._@-]", "_", spec.name)
        return Init(
            hostname=self.settings.hostname,
            log=logger,
            state_dir=os.path.join(self.state_dir, "resources", spec.kind.replace(":", "_"), safe),
            watcher=self.watcher,
            event=event,
            world=self.world,
            stopping=self.stopping,
            services=self.services,
        )

    def _apply(self, first: bool = False, read: bool = True) -> None:
        """Hand the engine the graph and what it collects, from the exports as
        last read (``read``: ask for a read too; see Collection)."""
        assert self.graph is not None
        path = os.fspath(self.settings.file)  # type: ignore[arg-type]
        left_out = self.collection.error
        wanted, diff = self.collection.apply(self.engine, self.graph, path, read)
        if self.collection.error != left_out:  # reported as failures: say so even if idle
            self.converger.failures_changed()
        if first:  # as the graph has them (the engine may group some, as pkg's)
            log.info("graph %r: %d resources", self.graph.name, len(wanted))
        elif not diff.empty:
            log.info("graph %r: %s", self.graph.name, diff.summary())

    # -- events -------------------------------------------------------------

    def _on_graph_event(self) -> None:
        self._graph_changed(time.monotonic())

    def _on_graph_saved(self) -> None:
        # The file is whole (closed after writing, or renamed over): no editor's
        # next step to wait for. An edit pushed by the initiator always lands so.
        self._graph_changed(0.0)

    def _graph_changed(self, last_event: float) -> None:
        with self._wake:
            self._graph_dirty = True
            self._last_event = last_event
            self._wake.notify_all()

    def _on_exported(self) -> None:
        # Read on the collection's thread (etcd may hang), whose answer raises the flag.
        self.collection.refresh()

    def _on_collected(self) -> None:
        with self._wake:
            self._collect_dirty = True
            self._wake.notify_all()

    def _hold(self, who: str, pending: bool) -> None:
        # Until its answer is applied, a read counts as work, and so does a new
        # graph's publish until tried: the converger must not fire, nor a remote
        # run's initiator hear "converged", without the collected resources, or
        # before the other hosts could have this one's (called in order, under
        # the lock of the reader or of WorldSync).
        if self.converger is not None:
            self.converger.hold(who, pending)

    def _world_error_changed(self) -> None:
        # The converged report carries it (see _converged_reporter): report again.
        if self.converger is not None:
            self.converger.failures_changed()

    def _plan_loop(self) -> None:
        while True:
            with self._wake:
                while not (self._graph_dirty or self._collect_dirty or self.stopping.is_set()):
                    self._wake.wait()
                if self.stopping.is_set():
                    return
                if self._graph_dirty:
                    quiet = self._last_event + RELOAD_QUIET - time.monotonic()
                    if quiet > 0:
                        self._wake.wait(quiet)
                        continue
                reload, self._graph_dirty = self._graph_dirty, False
                collect, self._collect_dirty = self._collect_dirty, False
                self._planning = True
            self.converger.activity()
            try:
                changed = self._reload() if reload else False
                if changed or collect:  # a save that changed nothing leaves a collect due
                    # An edit reads the exports again only while no watch tells of
                    # every change; the read's answer comes back as a collect.
                    self._apply(read=changed and not self.world_sync.watching)
            except Exception:  # the planner must survive anything a reload throws
                log.exception("reload failed; keeping the running graph")
            finally:
                with self._wake:  # what the reload added is queued in the engine by now
                    self._planning = False

    def _reload(self) -> bool:
        """Read the graph file again; True if it changed and is valid."""
        path = os.fspath(self.settings.file)  # type: ignore[arg-type]
        try:
            text = read_graph_text(path)
            # A newer change pending: this read may have caught a rewrite in place,
            # even one that parses so far (a block scalar cut short): apply none.
            if self._rewritten():
                return False
            if text == self._graph_text:
                return False
            graph = parse_graph(text, path, real_paths=True)
        except GraphError as err:
            # A truncation shows a moment before its write: give that BAD_GRAPH_GRACE.
            if not self._rewritten(BAD_GRAPH_GRACE):  # else not a bad graph, a write under way
                log.error("%s (keeping the last good graph)", err)
            return False
        self._graph_text = text
        log.info("graph file %s changed, applying the difference", path)
        self.graph = graph
        self.world_sync.sync(graph)  # returns at once: etcd may hang (see WorldSync)
        return True

    def _rewritten(self, grace: float = 0.0) -> bool:
        """Whether the graph file changed since the planner took its flag (waiting
        ``grace`` s for it), once the watcher handled the events queued so far."""
        if self.watcher is not None:
            self.watcher.settle()
        with self._wake:
            if not self._graph_dirty and grace > 0:
                self._wake.wait(grace)
            return self._graph_dirty
