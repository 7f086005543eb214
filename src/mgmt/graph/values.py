"""Plain Python values that remember the line each one came from.

Mappings become :class:`LocDict` (a dict with ``.line``, ``.key_lines`` and
``.key_texts``, how a value YAML did not read as text was written),
sequences :class:`LocList` (a list with ``.line`` and ``.item_lines``), so every
later error can say ``file:line``. Values read from JSON carry no lines (None).

These types are all that the YAML and JSON readers share; keeping them here
lets :mod:`mgmt.graph.located` import the YAML reader without a circle.
"""

from typing import Any, Dict, List, Optional


class LocDict(Dict[str, Any]):
    line: Optional[int] = None
    key_lines: Dict[Any, Optional[int]]
    key_texts: Dict[Any, str]

    def line_of(self, key: Any) -> Optional[int]:
        return self.key_lines.get(key, self.line)


class LocList(List[Any]):
    line: Optional[int] = None
    item_lines: List[Optional[int]]


def new_dict(line: Optional[int]) -> LocDict:
    out = LocDict()
    out.line, out.key_lines, out.key_texts = line, {}, {}
    return out


def new_list(line: Optional[int]) -> LocList:
    out = LocList()
    out.line, out.item_lines = line, []
    return out


def copy_located(value: Any) -> Any:
    """A deep copy that keeps the lines (what a YAML alias expands to).

    Recursive: the readers refuse values nested deeper than
    :data:`mgmt.graph.limits.MAX_DEPTH`, far below Python's recursion limit.
    """
    if isinstance(value, LocDict):
        out = new_dict(value.line)
        out.key_lines = dict(value.key_lines)
        out.key_texts = dict(value.key_texts)
        for key, item in value.items():
            out[key] = copy_located(item)
        return out
    if isinstance(value, LocList):
        seq = new_list(value.line)
        seq.extend(copy_located(item) for item in value)
        seq.item_lines = list(value.item_lines)
        return seq
    return value
