"""Graph text -> plain Python values that remember the line each one came from.

Mappings become :class:`LocDict` (a dict with ``.line`` and ``.key_lines``),
sequences :class:`LocList` (a list with ``.line`` and ``.item_lines``), so every
later error can say ``file:line``.

Graph files are YAML (:mod:`mgmt.graph.yamlload`). JSON is YAML too, and the
initiator of a remote run hands each agent its graph as JSON
(:func:`graph_as_json`), already validated with lines on the initiator: the
agent reads it with the standard library and never imports PyYAML unless an
edit brings YAML. JSON values carry no lines (``None``).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from mgmt.errors import GraphError


class LocDict(Dict[str, Any]):
    line: Optional[int] = None
    key_lines: Dict[Any, Optional[int]]

    def line_of(self, key: Any) -> Optional[int]:
        return self.key_lines.get(key, self.line)


class LocList(List[Any]):
    line: Optional[int] = None
    item_lines: List[Optional[int]]


def load_located(text: str, path: Optional[str] = None) -> Any:
    """Parse one graph document (JSON or YAML) into located values; errors name the file."""
    if text.lstrip()[:1] == "{":
        try:
            return _located(json.loads(text, object_pairs_hook=_unique_keys))
        except ValueError:
            pass  # a YAML flow mapping: "{graph: g, ...}" is not JSON
        except _DuplicateKey as err:
            raise GraphError(f"duplicate key {err.args[0]!r}", path) from None
    from mgmt.graph.yamlload import load_yaml

    return load_yaml(text, path)


def graph_as_json(text: str) -> Optional[str]:
    """A YAML graph document as JSON; None if a value has no JSON form (a date, binary)."""
    from mgmt.graph.yamlload import load_yaml

    document = load_yaml(text)
    if not _string_keys_only(document):
        return None  # JSON would turn 1: or true: into "1" and "true"
    try:
        return json.dumps(document, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: List[tuple]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _string_keys_only(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _string_keys_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_string_keys_only(item) for item in value)
    return True


def _located(value: Any) -> Any:
    if isinstance(value, dict):
        out = LocDict((key, _located(item)) for key, item in value.items())
        out.key_lines = {}
        return out
    if isinstance(value, list):
        seq = LocList(_located(item) for item in value)
        seq.item_lines = [None] * len(seq)
        return seq
    return value
