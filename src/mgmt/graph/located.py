"""Graph text (JSON or YAML) -> located values (:mod:`mgmt.graph.values`), within bounds.

Graph files are YAML (:mod:`mgmt.graph.yamlload`). JSON is YAML too, and the
initiator of a remote run hands each agent its graph as JSON
(:func:`graph_as_json`), already validated with lines on the initiator: the
agent reads it with the standard library and never imports PyYAML unless an
edit brings YAML. JSON values carry no lines (``None``).

Both readers keep to the bounds of :mod:`mgmt.graph.limits` and refuse a NUL
in any string: no path, command, name or service can hold one, and a file's
content with one belongs in a ``source:`` file. They refuse lone surrogates
(``"\\ud800"``) too, which are no text (see :func:`~mgmt.graph.limits.text_problem`),
and integers longer than :data:`~mgmt.graph.limits.MAX_DIGITS`.
"""

import json
import re
from typing import Any, Dict, List, Optional, Tuple

from mgmt.errors import GraphError
from mgmt.graph.limits import (
    DIGITS_MESSAGE,
    MAX_DEPTH,
    Budget,
    check_json_containers,
    check_size,
    text_problem,
    too_many_digits,
)
from mgmt.graph.values import new_dict, new_list
from mgmt.resources.fields import describe, shown

__all__ = ["checked_value", "graph_as_json", "load_json_object", "load_located"]


def load_located(text: str, path: Optional[str] = None) -> Any:
    """Parse one graph document (JSON or YAML) into located values; errors name the file."""
    check_size(text, path)
    if text.lstrip()[:1] == "{":
        check_json_containers(text, path)
        budget = Budget(path)
        try:
            document = _loads(text, budget, path)
        except ValueError:
            pass  # a YAML flow mapping: "{graph: g, ...}" is not JSON
        except RecursionError:  # the C scanner's own guard; far deeper than MAX_DEPTH
            raise budget.too_deep(_too_deep_line(text)) from None
        except _Unplaced as err:
            raise _placed(err, text, path) from None
        else:
            try:
                return _Located(Budget(path), text).value(document, 1)
            except _Unplaced as err:
                raise _placed(err, text, path) from None
    from mgmt.graph.scalars import texts_as_written
    from mgmt.graph.yamlload import load_yaml  # PyYAML only for YAML text

    document = load_yaml(text, path)
    texts_as_written(document)  # mode: 0644 is the mode '0644', as mgmt reads it
    return document


def load_json_object(text: str, path: Optional[str] = None) -> Dict[str, Any]:
    """A JSON object from another host (a collected export), within the graph's bounds.

    The same reader and checks as a JSON graph (size, values, depth, NUL,
    surrogates, long integers), so what an exporting host wrote can cost a
    collecting agent no more than a graph file could. GraphError if it is not
    a JSON object or is over a bound.
    """
    check_size(text, path)
    check_json_containers(text, path)
    budget = Budget(path)
    try:
        document = _loads(text, budget, path)
    except RecursionError:  # the C scanner's own guard; far deeper than MAX_DEPTH
        raise budget.too_deep(None) from None  # an export's value: no line to speak of
    except ValueError as err:  # GraphError is no ValueError: raised as it is
        raise GraphError(f"not JSON: {err}", path, None) from None
    if not isinstance(document, dict):
        raise GraphError(f"not a JSON object: {describe(document)}", path, None)
    return checked_value(document, path)


def checked_value(value: Any, path: Optional[str] = None) -> Any:
    """Plain values (as json.loads builds them) checked as a graph's are: counted,
    at most MAX_DEPTH deep, their strings valid text without NUL; located (no lines)."""
    return _Located(Budget(path), "").value(value, 1)


def graph_as_json(text: str, document: Any = None) -> Optional[str]:
    """A YAML graph document as JSON; None if a value has no JSON form (a date, binary).

    ``document``: what :func:`load_located` read of ``text``, when the caller has
    it (the initiator checks each edit: its YAML is then read once, not twice).
    A JSON text is read again as YAML all the same: YAML reads some of it
    otherwise (1e3 is a string there), and the agent is sent what YAML reads.
    """
    if document is None or text.lstrip()[:1] == "{":
        from mgmt.graph.scalars import texts_as_written
        from mgmt.graph.yamlload import load_yaml

        document = load_yaml(text)
        texts_as_written(document)  # the agent reads what the initiator checked: '0644', not 420
    if not _string_keys_only(document):
        return None  # JSON would turn 1: or true: into "1" and "true"
    try:
        return json.dumps(document, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None


def _loads(text: str, budget: Budget, path: Optional[str]) -> Any:
    """json.loads with the graph's hooks: counted objects, no duplicate keys, no
    long integers, and only finite numbers (JSON's NaN and Infinity, and 1e400,
    which float() reads as inf, are no value of any field)."""
    return json.loads(
        text,
        object_pairs_hook=_Pairs(budget, path),
        parse_int=_IntParser(text, path),
        parse_float=_FloatParser(text, path),
        parse_constant=_FloatParser(text, path).constant,
    )


class _Unplaced(GraphError):
    """An error json.loads gives no position for, which the YAML reader (JSON is
    YAML) finds the line of: a duplicate key, a NUL in a string."""


def _placed(err: GraphError, text: str, path: Optional[str]) -> GraphError:
    """``err`` with its line, from reading the text again as YAML.

    Only when YAML refuses it for the same reason (its message starts the same):
    PyYAML reads a few JSON texts otherwise, and then the line is left out
    rather than guessed. The text is within every bound, so the second read is
    bounded too.
    """
    try:  # PyYAML only for a JSON graph with an error; a remote host may lack it
        from mgmt.graph.yamlload import load_yaml
    except ImportError:
        return GraphError(err.message, path, None)
    reason = err.message.split(" (")[0]
    try:
        load_yaml(text, path)
    except GraphError as found:
        if found.line is not None and found.message.startswith(reason):
            return found
    return GraphError(err.message, path, None)


# The tokens of JSON text outside strings are numbers and the words (true,
# NaN, ...) between brackets, commas, colons and blanks; a string is skipped
# whole, so a "NaN" inside one is never taken for the literal.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s\[\]{}:,"]+', re.DOTALL)


def _token_line(text: str, literal: str) -> Optional[int]:
    """The line of the first token ``literal`` outside strings: the first the
    decoder meets, as it reads in order and stops at the first it refuses."""
    for match in _TOKEN.finditer(text):
        if match.group() == literal:
            return text.count("\n", 0, match.start()) + 1
    return None


# What nests in JSON text: brackets, outside strings (a string is skipped whole).
_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[{\]}]', re.DOTALL)


def _too_deep_line(text: str) -> Optional[int]:
    """The line of the first bracket more than MAX_DEPTH deep, which json gives no
    position for; None for values that came without text."""
    level = 0
    for match in _NESTING.finditer(text):
        bracket = match.group()
        if bracket in "[{":
            level += 1
            if level > MAX_DEPTH:
                return text.count("\n", 0, match.start()) + 1
        elif bracket in "]}":
            level -= 1
    return None


class _FloatParser:
    """json's parse_float and parse_constant: refuse what is not a finite number."""

    def __init__(self, text: str, path: Optional[str]):
        self.text = text
        self.path = path

    def __call__(self, literal: str) -> float:
        value = float(literal)
        if value in (float("inf"), float("-inf")):
            message = f"the number {shown(literal)} is too large (it reads as infinity)"
            raise GraphError(message, self.path, _token_line(self.text, literal))
        return value

    def constant(self, literal: str) -> float:
        message = f"{literal} is not a number a graph can hold (JSON has no NaN or Infinity)"
        raise GraphError(message, self.path, _token_line(self.text, literal))


class _IntParser:
    """json's parse_int: refuse a long integer before int(), which Python 3.11+
    refuses past 4,300 digits and older ones build however long it is.

    Here, not in the YAML reader: an agent reads JSON without PyYAML.
    """

    def __init__(self, text: str, path: Optional[str]):
        self.text = text
        self.path = path

    def __call__(self, literal: str) -> int:
        if too_many_digits(literal):
            # json gives no position: the literal's first occurrence outside strings.
            raise GraphError(DIGITS_MESSAGE, self.path, _token_line(self.text, literal))
        return int(literal)


# A JSON escape: a UTF-16 surrogate's \uXXXX, or any other (\\ included, so
# that an escaped backslash is never read as the start of one).
_ESCAPE = re.compile(r"\\(?:u([dD][89a-fA-F][0-9a-fA-F]{2})|u[0-9a-fA-F]{4}|.)", re.DOTALL)


def _surrogate_line(text: str) -> Optional[int]:
    """The line of the first lone surrogate in JSON text (json.loads gives none)."""
    at = _lone_escape(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # a raw one: text that came from no UTF-8 file
        at = err.start if at is None else min(at, err.start)
    return None if at is None else text.count("\n", 0, at) + 1


def _lone_escape(text: str) -> Optional[int]:
    """Where the first \\uD800-\\uDFFF escape that is not half of a pair starts.

    A high surrogate escape followed at once by a low one is one character
    (an emoji written as UTF-16), not a lone surrogate.
    """
    pending = None  # a high half waiting for its low half
    for match in _ESCAPE.finditer(text):
        half = match.group(1)
        is_low = half is not None and half[1] in "cdefCDEF"
        if pending is not None:
            if is_low and match.start() == pending.end():
                pending = None
                continue
            return pending.start()
        if is_low:
            return match.start()
        if half is not None:
            pending = match
    return None if pending is None else pending.start()


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
                raise _Unplaced(f"duplicate key {shown(key)}", self.path, None)
            out[key] = value
        return out


class _Located:
    """Plain JSON values -> located values without lines, counted and depth-checked."""

    def __init__(self, budget: Budget, text: str):
        self.budget = budget
        self.text = text

    def value(self, value: Any, depth: int, key: Optional[str] = None) -> Any:
        self.budget.spend(1, None, len(value) if isinstance(value, str) else 0)
        if isinstance(value, str):
            self.check_text(value, f" (the value of {shown(key)})" if key is not None else "")
            return value
        if not isinstance(value, (dict, list)):
            return value
        if depth > MAX_DEPTH:
            raise self.budget.too_deep(_too_deep_line(self.text))
        if isinstance(value, list):
            seq = new_list(None)
            seq.extend(self.value(item, depth + 1, key) for item in value)
            seq.item_lines = [None] * len(seq)
            return seq
        out = new_dict(None)
        for name, item in value.items():
            self.check_text(name, " (a mapping key)")
            out[name] = self.value(item, depth + 1, name)
        return out

    def check_text(self, text: str, where: str) -> None:
        problem = text_problem(text)
        if problem is not None:
            # json gives no positions, but a lone surrogate's escape can be found
            # in the text; a NUL's cannot be told from one in another string.
            line = None if "\0" in text else _surrogate_line(self.text)
            if line is None and self.text:  # a graph's text: YAML finds the line
                raise _Unplaced(problem + where, self.budget.path, None)
            raise GraphError(problem + where, self.budget.path, line)


def _string_keys_only(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _string_keys_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_string_keys_only(item) for item in value)
    return True
