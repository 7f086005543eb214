"""Graph text (JSON or YAML) -> located values (:mod:`mgmt.graph.values`), within bounds.

Graph files are YAML (:mod:`mgmt.graph.yamlload`). JSON is YAML too, and the
initiator of a remote run hands each agent its graph as JSON
(:func:`graph_as_json`), already validated with lines on the initiator: the
agent reads it with the standard library and never imports PyYAML unless an
edit brings YAML. JSON values carry no lines (``None``).

Both readers keep to the bounds of :mod:`mgmt.graph.limits` and refuse a NUL
in any string: no path, command, name or service can hold one, and a file's
content with one belongs in a ``source:`` file.
"""

import json
from typing import Any, Dict, List, Optional, Tuple

from mgmt.errors import GraphError
from mgmt.graph.limits import (
    MAX_DEPTH,
    NUL_MESSAGE,
    Budget,
    check_json_containers,
    check_size,
)
from mgmt.graph.values import new_dict, new_list

__all__ = ["graph_as_json", "load_located"]


def load_located(text: str, path: Optional[str] = None) -> Any:
    """Parse one graph document (JSON or YAML) into located values; errors name the file."""
    check_size(text, path)
    if text.lstrip()[:1] == "{":
        check_json_containers(text, path)
        budget = Budget(path)
        try:
            document = json.loads(text, object_pairs_hook=_Pairs(budget, path))
        except ValueError:
            pass  # a YAML flow mapping: "{graph: g, ...}" is not JSON
        except RecursionError:  # the C scanner's own guard; far deeper than MAX_DEPTH
            raise budget.too_deep(None) from None
        else:
            return _Located(Budget(path)).value(document, 1)
    from mgmt.graph.yamlload import load_yaml  # PyYAML only for YAML text

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


class _Pairs:
    """json's object_pairs_hook: refuse duplicate keys, count values as they come."""

    def __init__(self, budget: Budget, path: Optional[str]):
        self.budget = budget
        self.path = path

    def __call__(self, pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        self.budget.spend(len(pairs) + 1, None)
        out: Dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise GraphError(f"duplicate key {key!r}", self.path, None)
            out[key] = value
        return out


class _Located:
    """Plain JSON values -> located values without lines, counted and depth-checked."""

    def __init__(self, budget: Budget):
        self.budget = budget

    def value(self, value: Any, depth: int) -> Any:
        self.budget.spend(1, None)
        if isinstance(value, str):
            if "\0" in value:
                raise GraphError(NUL_MESSAGE, self.budget.path, None)
            return value
        if not isinstance(value, (dict, list)):
            return value
        if depth > MAX_DEPTH:
            raise self.budget.too_deep(None)
        if isinstance(value, list):
            seq = new_list(None)
            seq.extend(self.value(item, depth + 1) for item in value)
            seq.item_lines = [None] * len(seq)
            return seq
        out = new_dict(None)
        for key, item in value.items():
            if "\0" in key:
                raise GraphError(NUL_MESSAGE, self.budget.path, None)
            out[key] = self.value(item, depth + 1)
        return out


def _string_keys_only(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _string_keys_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_string_keys_only(item) for item in value)
    return True
