"""What changed between two sets of resources, so live reload touches only that."""

from typing import List, Mapping

from mgmt.graph.model import ResourceKey, ResourceSpec, key_str


class GraphDiff:
    """What an update changes: resources to start, to restart with new params, to stop."""

    def __init__(self) -> None:
        self.added: List[ResourceKey] = []
        self.changed: List[ResourceKey] = []
        self.removed: List[ResourceKey] = []
        self.unchanged: List[ResourceKey] = []

    def __repr__(self) -> str:
        return f"GraphDiff({self.summary()})"

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def summary(self, limit: int = 5) -> str:
        """``added 1 (file[a]), changed 0, removed 2 (exec[x], noop[y])``."""
        parts = []
        groups = (("added", self.added), ("changed", self.changed), ("removed", self.removed))
        for label, keys in groups:
            text = f"{label} {len(keys)}"
            if keys:
                shown = ", ".join(key_str(k) for k in keys[:limit])
                more = f", +{len(keys) - limit} more" if len(keys) > limit else ""
                text += f" ({shown}{more})"
            parts.append(text)
        return ", ".join(parts)


def diff_resources(
    old: Mapping[ResourceKey, ResourceSpec], new: Mapping[ResourceKey, ResourceSpec]
) -> GraphDiff:
    """Compare two resource maps by (kind, name) and by their parameters and meta."""
    result = GraphDiff()
    for key, spec in new.items():
        before = old.get(key)
        if before is None:
            result.added.append(key)
        elif before.same_as(spec):
            result.unchanged.append(key)
        else:
            result.changed.append(key)
    result.removed = [key for key in old if key not in new]
    return result
