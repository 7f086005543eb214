"""The noop kind: does nothing, always fine. Useful as a join point in a graph."""

from mgmt.resources.base import Resource


class NoopRes(Resource):
    kind = "noop"
    fields = {}

    def check_apply(self, apply: bool) -> bool:
        return True
