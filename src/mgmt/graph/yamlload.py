"""YAML -> located values (:mod:`mgmt.graph.located`): every value knows its line.

PyYAML's composer keeps a mark on every node; constructing values ourselves
from the node tree lets every later error say ``file:line``. Imported only
for YAML text: PyYAML costs an agent's start-up ~15 ms, and a remote agent
is handed its first graph as JSON.
"""

from __future__ import annotations

from typing import Any, Optional

import yaml

from mgmt.errors import GraphError
from mgmt.graph.located import LocDict, LocList

# The C loader when PyYAML was built with libyaml: a 10,000-resource graph
# composes several times faster.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Builder:
    def __init__(self, path: str):
        self.path = path
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node)
        if isinstance(node, yaml.SequenceNode):
            out = LocList(self.build(item) for item in node.value)
            out.line = _line(node)
            out.item_lines = [_line(item) for item in node.value]
            return out
        if node.tag == _STR:
            return node.value  # most scalars; the constructor costs 10x more
        try:
            return self.scalars.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise GraphError(f"bad value: {err}", self.path, _line(node)) from None

    def mapping(self, node: yaml.MappingNode) -> LocDict:
        out = LocDict()
        out.line = _line(node)
        out.key_lines = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                message = "YAML merge keys (<<) are not supported"
                raise GraphError(message, self.path, _line(key_node))
            key = self.build(key_node)
            if isinstance(key, (dict, list)):
                raise GraphError("a mapping key must be a plain value", self.path, _line(key_node))
            if key in out:
                first = out.key_lines[key]
                raise GraphError(
                    f"duplicate key {key!r} (first on line {first})", self.path, _line(key_node)
                )
            out[key] = self.build(value_node)
            out.key_lines[key] = _line(key_node)
        return out


def load_yaml(text: str, path: Optional[str] = None) -> Any:
    """Parse one YAML document into located values; YAML syntax errors become GraphError."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = err.problem or err.context or "invalid YAML"
        raise GraphError(f"YAML syntax error: {problem}", path, line) from None
    except yaml.YAMLError as err:
        raise GraphError(f"YAML error: {err}", path) from None
    if node is None:
        return None
    return _Builder(path or "<graph>").build(node)
