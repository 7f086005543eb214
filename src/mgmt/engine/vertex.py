"""One vertex of the running graph: its resource, and where it stands in the engine.

The engine (mgmt.engine.scheduler) is the only one to read and change these
fields, always under its lock; a resource never sees its vertex.
"""

from typing import List

from mgmt.engine.outcome import Outcome
from mgmt.graph.model import ResourceSpec
from mgmt.resources.base import Resource

NEW, OK, FAILED = "new", "ok", "failed"  # a vertex's status


class Vertex:
    __slots__ = (
        "children",
        "dirty",
        "failed_at",
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
        self.failed_at = 0.0  # when its last check failed (time.monotonic())
        self.status = NEW
        self.tries = spec.meta.retry
        self.not_before = 0.0
        self.outcome = Outcome()
