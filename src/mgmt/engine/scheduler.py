"""Runs resources in dependency order, independent ones in parallel, as events arrive.

Each resource is a vertex that is *dirty* when it must be checked (first run,
an event from its watch, a change in a resource it depends on). A dirty vertex
runs once every vertex it depends on is fine; a bounded pool of worker threads,
started as work arrives, runs check_apply. A failure retries as ``meta`` says
and then blocks only the vertices below it, so unrelated branches carry on. The
engine is *idle* when nothing is queued, running or waiting for a retry: the
converger watches that.
"""

import contextlib
import heapq
import os
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from mgmt.engine import retry
from mgmt.engine.autogroup import autogroup
from mgmt.engine.outcome import Outcome
from mgmt.engine.vertex import (
    FAILED,
    OK,
    Vertex,
    build_vertex,
    close_resource,
    noop_before,
    noop_checked,
    would_change,
)
from mgmt.errors import GraphError
from mgmt.graph.deps import cycle_text, dependencies, find_cycle
from mgmt.graph.diff import GraphDiff, diff_resources
from mgmt.graph.model import Edge, ResourceKey, ResourceSpec
from mgmt.log import Logger, get_logger
from mgmt.resources.base import Init
from mgmt.world.api import Failure

log = get_logger("engine")


def default_workers() -> int:
    # check_apply waits on fsync or a child process, so a few threads per core
    # overlap those waits; more than that only fight over the GIL (on 2 cores,
    # 8 workers wrote 10,000 files as fast as 16 or 32 and re-checked them 30%
    # faster than 32).
    return max(4, min(32, (os.cpu_count() or 2) * 4))


class Engine:
    """Owns the vertices; :meth:`update` applies a new set of resources as a difference."""

    def __init__(
        self,
        make_init: Callable[[ResourceSpec, Logger, Callable[[], None]], Init],
        noop: bool = False,
        workers: Optional[int] = None,
        on_idle: Optional[Callable[[bool], None]] = None,
        on_failures_changed: Optional[Callable[[], None]] = None,
    ):
        """``on_idle(idle)``: the engine turned idle or busy. ``on_failures_changed()``:
        the failed resources changed without a busy period (an update removed one)."""
        self._make_init = make_init
        self.noop = noop
        self._on_idle = on_idle or (lambda idle: None)
        self._on_failures_changed = on_failures_changed or (lambda: None)
        self._vertices: Dict[ResourceKey, Vertex] = {}
        # One lock; the scheduler thread waits on _cond, idle waiters on _idle_cond,
        # so a notify meant for one never wakes (and is lost on) the other.
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        self._idle_cond = threading.Condition(lock)
        self._ready: Deque[Vertex] = deque()
        self._timers: List[Tuple[float, int, Vertex]] = []
        self._timer_seq = 0
        self._inflight = 0
        self._idle = True
        self._stopping = False
        self._batched: Optional[List[Vertex]] = None  # pokes held by batched()
        self._update_lock = threading.Lock()
        self.runs = 0  # check_apply calls so far (for tests and the bench)
        # Our own workers take vertices straight from the ready queue: handing
        # 10,000 items to a ThreadPoolExecutor made its workers queue on the
        # executor's internal semaphore instead of on the disk. They start as
        # work arrives (see _grow).
        self._max_workers = workers or default_workers()
        self._workers: List[threading.Thread] = []

    # -- graph changes ------------------------------------------------------

    def update(self, specs: Mapping[ResourceKey, ResourceSpec], edges: Iterable[Edge]) -> GraphDiff:
        """Make the running resources match ``specs``, touching only what differs.

        Raises GraphError (and changes nothing) if the new dependencies have a cycle.
        """
        edges = list(edges)
        with self._update_lock:
            parents = dependencies(specs, edges)
            cycle = find_cycle(parents)
            if cycle:
                raise GraphError("dependency cycle: " + cycle_text(cycle))
            # Resources a kind applies together become one vertex (mgmt's autogroup).
            specs, parents = autogroup(specs, parents)
            with self._cond:
                current = {k: v.spec for k, v in self._vertices.items()}
            diff = diff_resources(current, specs)
            fresh: Dict[ResourceKey, Vertex] = {}
            for key in diff.added + diff.changed:
                fresh[key] = self._build(specs[key])
            with self._cond:
                old = [
                    self._vertices.pop(k)
                    for k in diff.removed + diff.changed
                    if k in self._vertices
                ]
                for vertex in old:
                    vertex.removed = True
                if old:  # one waiting for a retry's delay must not keep the engine busy
                    self._timers = [t for t in self._timers if not t[2].removed]
                    heapq.heapify(self._timers)
                self._vertices.update(fresh)
                for vertex in self._vertices.values():
                    vertex.parents = [
                        self._vertices[p]
                        for p in parents.get(vertex.key, ())
                        if p in self._vertices
                    ]
                    vertex.children = []
                for vertex in self._vertices.values():
                    for parent in vertex.parents:
                        parent.children.append(vertex)
                for vertex in self._vertices.values():  # built from the old parents
                    vertex.before = None  # mgmt.engine.before builds it again under noop
            for vertex in old:
                close_resource(vertex.res)
            for vertex in fresh.values():
                try:
                    vertex.res.watch()
                except Exception as err:
                    vertex.res.init.log.error("watch failed: %s", err)
            with self._cond:
                for vertex in fresh.values():
                    self._consider(vertex)
                # Vertices that lost a failed parent may be able to run now.
                for vertex in self._vertices.values():
                    if vertex.dirty:
                        self._consider(vertex)
                self._check_idle()
                if self._idle and any(vertex.status == FAILED for vertex in old):
                    self._on_failures_changed()  # nothing ran: no new idle period says so
        return diff

    def _build(self, spec: ResourceSpec) -> Vertex:
        res_log = get_logger(spec.kind).child(spec.name)
        holder: List[Vertex] = []
        init = self._make_init(spec, res_log, lambda: holder and self.poke(holder[0]))
        init.wake = lambda: holder and self.poke(holder[0], fresh=True)
        holder.append(build_vertex(spec, init))
        return holder[0]

    # -- events -------------------------------------------------------------

    def poke(self, vertex: Vertex, fresh: bool = False) -> None:
        """Mark one vertex for a re-check (from any thread); ``fresh``: from outside
        its own doings, so a failed one is checked again even just after a re-check."""
        with self._cond:
            if vertex.removed or self._stopping:
                return
            vertex.dirty = True
            if fresh:
                vertex.rechecked = vertex.kept = False
            if not retry.on_event(vertex):
                return
            if self._batched is not None:
                self._batched.append(vertex)
                return
            self._consider(vertex)
            self._check_idle()

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Pokes made inside (one batch of inotify events) are scheduled together
        at the end: of a folder moved away with a file in it, the folder's event
        is known before the file's is acted on, so the file waits for it."""
        with self._cond:
            outer = self._batched is None  # an inner batch ends with the outer one
            if outer:
                self._batched = []
        try:
            yield
        finally:
            if outer:
                with self._cond:
                    batch, self._batched = self._batched or [], None
                    for vertex in batch:
                        self._consider(vertex)
                    self._check_idle()

    def poke_all(self) -> None:
        """Re-check every resource (used by the bench's idle re-check)."""
        with self._cond:
            for vertex in self._vertices.values():
                vertex.dirty = True
            for vertex in self._vertices.values():
                self._consider(vertex)
            self._check_idle()

    def _runnable(self, vertex: Vertex) -> bool:
        if not vertex.dirty or vertex.running or vertex.queued or vertex.removed:
            return False
        return all(p.status == OK and not p.dirty and not p.running for p in vertex.parents)

    def _consider(self, vertex: Vertex) -> None:
        if not self._runnable(vertex):
            return
        vertex.queued = True
        now = time.monotonic()
        if vertex.not_before > now:
            self._timer_seq += 1
            heapq.heappush(self._timers, (vertex.not_before, self._timer_seq, vertex))
        else:
            self._ready.append(vertex)
        self._cond.notify()
        self._grow()

    def _grow(self) -> None:
        """Start one more worker when more vertices wait than workers are free
        (a pending retry timer counts as one: a free worker must sleep on it),
        up to the pool's size; called with the lock held. A host whose graph
        has a few resources starts a few threads, not the whole pool: each
        start costs about 0.1 ms of CPU, which every agent start paid for 8."""
        free = len(self._workers) - self._inflight
        waiting = len(self._ready) + (1 if self._timers else 0)
        if waiting > free and len(self._workers) < self._max_workers and not self._stopping:
            name = f"worker-{len(self._workers)}"
            thread = threading.Thread(target=self._work, name=name, daemon=True)
            try:
                thread.start()
            except RuntimeError as err:  # the host's thread limit
                if not self._workers:
                    raise  # nothing would ever run: better an error than a hang
                # The workers we have go on; said once, not tried at every vertex.
                self._max_workers = len(self._workers)
                log.warning("cannot start %s, going on with %d: %s", name, self._max_workers, err)
                return
            self._workers.append(thread)

    def _check_idle(self) -> None:
        idle = not self._ready and not self._timers and self._inflight == 0
        if idle != self._idle:
            self._idle = idle
            self._on_idle(idle)
            self._idle_cond.notify_all()

    def announce_idle(self) -> None:
        """Tell on_idle the current state once (a graph with nothing to do never
        changes state, so would otherwise never be reported idle)."""
        with self._cond:
            self._on_idle(self._idle)

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._idle

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._idle:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle_cond.wait(left)
            return True

    def statuses(self) -> Dict[ResourceKey, str]:
        with self._cond:
            return {k: v.status for k, v in self._vertices.items()}

    def outcomes(self) -> List[Tuple[ResourceSpec, Outcome]]:
        """Each vertex's spec (a GroupSpec for a group) and what happened to it so far."""
        with self._cond:
            return [(v.spec, v.outcome.copy()) for v in self._vertices.values()]

    @property
    def threads(self) -> int:
        """Worker threads started so far (for tests and the bench)."""
        with self._cond:
            return len(self._workers)

    def failed(self) -> List[ResourceKey]:
        return [k for k, s in self.statuses().items() if s == FAILED]

    def failures(self) -> List[Failure]:
        """The failed resources (no retry left) with their last errors: of a group,
        the members its error was about, when it names them."""
        with self._cond:
            return [
                failure
                for (kind, name), v in self._vertices.items()
                if v.status == FAILED
                for failure in v.outcome.failures(kind, name)
            ]

    # -- the workers --------------------------------------------------------

    def _next(self) -> Optional[Vertex]:
        """Wait for a vertex to run (None when stopping); called with the lock held."""
        while not self._stopping:
            while self._timers and self._timers[0][0] <= time.monotonic():
                self._ready.append(heapq.heappop(self._timers)[2])
            if self._ready:
                vertex = self._ready.popleft()
                vertex.queued = False
                if vertex.removed:  # left the graph while it waited
                    self._check_idle()
                    continue
                vertex.running = True
                vertex.dirty = False
                self._inflight += 1
                # This worker is busy now: the rest of what it took off the
                # timers, or the next timer, may need another one.
                if self._ready or self._timers:
                    self._grow()
                    if self._ready:
                        self._cond.notify()  # and a worker that waits on a timer takes it
                return vertex
            left = self._timers[0][0] - time.monotonic() if self._timers else None
            self._cond.wait(left)
        return None

    def _work(self) -> None:
        done: Optional[Tuple[Vertex, bool, Optional[Exception], bool]] = None
        while True:
            with self._cond:  # one lock round per vertex: report the last, take the next
                if done is not None:
                    self._complete(*done)
                vertex = self._next()
                # The vertices before it are read under the lock, as vertex fields are.
                apply = vertex is None or not (self.noop or vertex.spec.meta.noop)
                if vertex is not None:  # noop: what would change before it
                    vertex.res.changed_before = noop_before(vertex, apply)
            if vertex is None:
                return
            done = self._check(vertex, apply)

    def _check(self, vertex: Vertex, apply: bool) -> Tuple[Vertex, bool, Optional[Exception], bool]:
        vertex.res.notes = []  # this run's differences (Resource.note)
        try:
            return vertex, vertex.res.check_apply(apply), None, apply
        except Exception as err:
            return vertex, True, err, apply

    def _complete(self, vertex: Vertex, ok: bool, error: Optional[Exception], apply: bool) -> None:
        self.runs += 1
        self._inflight -= 1
        self._finish(vertex, ok, error, apply)
        self._check_idle()

    def _finish(self, vertex: Vertex, ok: bool, error: Optional[Exception], apply: bool) -> None:
        vertex.running = False
        if vertex.removed:
            if self._stopping and error is None:  # done as the run stopped: it counts (--json)
                vertex.outcome.record(ok, apply, vertex.res.notes, None)
            return
        was = would_change(vertex)
        vertex.outcome.record(ok, apply, vertex.res.notes, error)
        noop_checked(vertex, was)
        if error is not None:
            if retry.after_failure(vertex, error):
                self._consider(vertex)
            return
        retry.after_success(vertex)
        if ok:
            vertex.res.init.log.debug("checked: state is right")
        if not ok and apply:
            for child in vertex.children:
                child.dirty = True
        for child in vertex.children:
            self._consider(child)
        self._consider(vertex)

    # -- shutdown -----------------------------------------------------------

    def stop(self) -> None:
        """Stop scheduling, close every resource, and wait for running workers."""
        with self._cond:
            self._stopping = True
            vertices = list(self._vertices.values())
            for vertex in vertices:
                vertex.removed = True
            workers = list(self._workers)
            self._cond.notify_all()
        for vertex in vertices:  # also ends a running check_apply (an exec's child)
            close_resource(vertex.res)
        deadline = time.monotonic() + 10
        for thread in workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
