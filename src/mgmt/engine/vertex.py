"""One vertex of the running graph: its resource, and where it stands in the engine.

The engine (mgmt.engine.scheduler) is the only one to read and change these
fields, always under its lock; a resource never sees its vertex.
"""

from typing import TYPE_CHECKING, List, Optional, Sequence

from mgmt.engine.autogroup import build as build_resource
from mgmt.engine.outcome import WOULD_CHANGE, Outcome, message_of
from mgmt.graph.model import ResourceSpec
from mgmt.log import get_logger
from mgmt.resources.base import Init, Resource, ResourceError

if TYPE_CHECKING:  # imported under noop alone (noop_before): not on an agent's start
    from mgmt.engine.before import WouldChange

log = get_logger("engine")

NEW, OK, FAILED = "new", "ok", "failed"  # a vertex's status


class Vertex:
    __slots__ = (
        "before",
        "children",
        "dirty",
        "failed_at",
        "kept",
        "key",
        "not_before",
        "outcome",
        "parents",
        "queued",
        "rechecked",
        "removed",
        "res",
        "running",
        "spec",
        "status",
        "tries",
    )

    def __init__(self, spec: ResourceSpec, res: Resource):
        self.key = spec.key
        self.spec = spec
        self.res = res
        self.parents: List[Vertex] = []
        self.children: List[Vertex] = []
        self.dirty = True
        self.queued = False
        self.running = False
        self.removed = False
        self.rechecked = False  # failed, then checked again for an event during that run
        self.kept = False  # an event after that re-check earned a last check (see retry)
        self.failed_at = 0.0  # when its last check failed (time.monotonic())
        self.status = NEW
        self.tries = spec.meta.retry
        self.not_before = 0.0
        self.outcome = Outcome()
        # Under noop, what would change above it (mgmt.engine.before); None: not built.
        self.before: Optional[WouldChange] = None


class Unbuilt(Resource):
    """Stands in for a resource its kind would not build (a collected resource
    whose parameters the kind refuses): each check fails with why. Left out of
    the graph instead, it and its edges would be missing without a word, and
    what depends on it would run as if it did not."""

    def __init__(self, spec: ResourceSpec, error: Exception):
        super().__init__(spec.name, {}, spec.meta)
        self.kind = spec.kind  # for its name in logs and failures
        self.error = "cannot create: " + message_of(error)

    def check_apply(self, apply: bool) -> bool:
        raise ResourceError(repr(self), self.error)


def build_vertex(spec: ResourceSpec, init: Init) -> Vertex:
    """The vertex of ``spec``, its resource set up with ``init``; if its kind refuses
    it (a collected resource with bad parameters), a vertex that fails with why, so
    that what depends on it waits and the run reports it (see :class:`Unbuilt`)."""
    res: Optional[Resource] = None
    try:
        res = build_resource(spec)
        res.setup(init)
    except Exception as err:
        if res is not None:
            close_resource(res)  # whatever its setup made before it failed
        res = Unbuilt(spec, err)
        res.setup(init)
    vertex = Vertex(spec, res)
    if isinstance(res, Unbuilt):
        vertex.tries = 0  # no retry makes it build
    return vertex


def close_resource(res: Resource) -> None:
    """``res.close()``; a failure is logged, as one resource must not stop the rest."""
    try:
        res.close()
    except Exception as err:
        log.warning("%r: close failed: %s", res, err)


def would_change(vertex: Vertex) -> bool:
    """Whether ``vertex``'s last check found it would change (noop)."""
    return vertex.outcome.result == WOULD_CHANGE


def noop_before(vertex: Vertex, apply: bool) -> Sequence[str]:
    """What would change before ``vertex`` under noop (mgmt.engine.before, imported
    only then: it is not on an agent's start); nothing when it applies."""
    if apply:
        return ()
    from mgmt.engine.before import would_change_before

    return would_change_before(vertex)


def noop_checked(vertex: Vertex, was: bool) -> None:
    """After ``vertex``'s check (``was``: whether it would change before): what was
    built below it under noop follows a change of that (mgmt.engine.before)."""
    if vertex.before is not None:
        from mgmt.engine.before import after_check

        after_check(vertex, was)
