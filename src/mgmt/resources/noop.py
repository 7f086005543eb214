"""The noop kind: does nothing, always fine. Useful as a join point in a graph."""

from mgmt.resources.base import Field, Resource


class NoopRes(Resource):
    kind = "noop"
    # mgmt's noop takes a comment (its examples' way to say what a join point is for).
    fields = {"comment": Field(str, default="", doc="a note for the reader; not used")}

    def check_apply(self, apply: bool) -> bool:
        return True
