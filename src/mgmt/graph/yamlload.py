"""YAML text -> located values (:mod:`mgmt.graph.values`): every value knows its line.

Values are built from PyYAML's event stream in one loop with an explicit stack,
instead of from its node tree, for three reasons:

- bounds: every value is counted as it is built and an alias counts all it
  expands to, so an alias bomb stops at the alias that crosses
  :data:`~mgmt.graph.limits.MAX_VALUES`, with its line, before the memory is
  spent (see :mod:`mgmt.graph.limits`);
- depth: no recursion, so 600 nested blocks or ``&a [*a]`` are a clear error,
  never a RecursionError;
- lines: an alias event carries its own line; a node tree only has the anchor's.

A mapping's plain scalars that YAML reads as something other than text (``0644``,
``yes``, ``1.0``) keep what was written, in ``key_texts``: mgmt reads them into a
text field as written (see :mod:`mgmt.graph.scalars`).

Merge keys (``<<: *defaults``) are YAML 1.1's, as mgmt's reader (Go's yaml.v2)
takes them: the keys of the mapping (or of each mapping of a list, the first
winning) that the mapping does not set itself, each with the line it was written on.

Imported only for YAML text: PyYAML costs an agent's start-up ~15 ms, and a
remote agent is handed its first graph as JSON.
"""

import re
from typing import Any, Dict, List, Optional, Set, Tuple

import yaml
from yaml.events import (
    AliasEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from mgmt.errors import GraphError
from mgmt.graph.limits import DIGITS_MESSAGE, MAX_DEPTH, Budget, text_problem, too_many_digits
from mgmt.graph.values import LocDict, copy_located, new_dict, new_list
from mgmt.resources.fields import describe, shown

# The C parser when PyYAML was built with libyaml: it tokenizes several times faster.
# (tests/graph runs the table with the pure-Python one too.)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_INT = "tag:yaml.org,2002:int"
# What a scalar was read as, in an error: "cannot read '2020-13-45' as a date".
_TAG_WORDS = {
    "tag:yaml.org,2002:bool": "a boolean",
    _INT: "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "binary data",
    "tag:yaml.org,2002:null": "null",
}
_NO_KEY = object()
# A number as JSON writes it that YAML 1.1 reads as text (1e5: its floats need a dot
# and a signed exponent), for a JSON graph read again to find the line of its error.
_JSON_EXPONENT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?[eE][-+]?[0-9]+")


class _MergeKey(str):
    """The ``<<`` of a merge, told by identity from a quoted '<<' (a plain key)."""


_MERGE_KEY = _MergeKey("<<")

# An anchor: the value, how many values it counts, how deep it goes, its line,
# and how many characters its strings hold.
_Anchor = Tuple[Any, int, int, int, int]


class _Open:
    """A mapping or sequence whose end event has not come yet."""

    __slots__ = (
        "anchor",
        "chars",
        "height",
        "key",
        "key_line",
        "line",
        "merge_line",
        "merges",
        "start",
        "value",
    )

    def __init__(self, value: Any, anchor: Optional[str], line: int, start: int, chars: int):
        self.value = value
        self.anchor = anchor
        self.line = line
        self.start = start  # the budget used before this value
        self.chars = chars  # and the characters
        self.height = 0  # how deep the values inside go
        self.key = _NO_KEY  # a mapping's key waiting for its value
        self.key_line = line
        self.merges: Optional[List[LocDict]] = None  # what a << key brings, in order
        self.merge_line = 0


def _empty_document(event: ScalarEvent) -> bool:
    """The scalar the parser gives a document with nothing in it."""
    return event.value == "" and event.tag is None and event.implicit[0] and not event.anchor


def _line(event: Any) -> int:
    return event.start_mark.line + 1


class _Reader:
    def __init__(self, text: str, path: Optional[str], json_numbers: bool = False):
        self.loader = _Loader(text)
        self.path = path
        self.json_numbers = json_numbers
        self.budget = Budget(path)
        self.anchors: Dict[str, _Anchor] = {}
        self.open_anchors: Set[str] = set()
        self.stack: List[_Open] = []
        self.written: Optional[str] = None  # the last scalar's text, if not read as text
        self.anchor_texts: Dict[str, str] = {}  # the same for a scalar's anchor

    def fail(self, message: str, line: Optional[int]) -> GraphError:
        return GraphError(message, self.path, line)

    def document(self) -> Any:
        get = self.loader.get_event
        get()  # stream start
        if isinstance(get(), StreamEndEvent):
            return None  # no document at all
        root = self.value()
        get()  # document end
        event = get()
        while not isinstance(event, StreamEndEvent):
            # An empty one after it (a closing ``---``, or one of comments only)
            # holds nothing to lose; mgmt reads the first and ignores the rest.
            start, first = event, get()
            if not (isinstance(first, ScalarEvent) and _empty_document(first)):
                message = "a graph file holds one YAML document; a second starts here"
                raise self.fail(message, _line(start))
            get()  # document end
            event = get()
        return root

    def value(self) -> Any:
        """Build one whole value (the document's root) from the events."""
        get = self.loader.get_event
        stack = self.stack
        while True:
            event = get()
            line = _line(event)
            self.written = None
            if isinstance(event, ScalarEvent):
                value, height = self.scalar(event, line), 0
                chars = len(value) if isinstance(value, str) else 0
                self.budget.spend(1, line, chars)
                self.remember(event.anchor, value, 1, 0, line, chars)
                if event.anchor is not None and self.written is not None:
                    self.anchor_texts[event.anchor] = self.written
            elif isinstance(event, AliasEvent):
                value, height = self.alias(event.anchor, line)
                self.written = self.anchor_texts.get(event.anchor)
            elif isinstance(event, (MappingStartEvent, SequenceStartEvent)):
                self.start(event, line)
                continue
            else:  # the end of the innermost mapping or sequence
                done = stack.pop()
                if done.merges:
                    _merge(done.value, done.merges)
                value, line, height = done.value, done.line, done.height + 1
                if done.anchor is not None:
                    self.open_anchors.discard(done.anchor)
                    size = self.budget.used - done.start
                    chars = self.budget.chars - done.chars
                    self.remember(done.anchor, value, size, height, line, chars)
            if not stack:
                return value
            self.add(stack[-1], value, line, height)

    def start(self, event: Any, line: int) -> None:
        if self.stack and self.awaits_key():
            raise self.fail("a mapping key must be a plain value", line)
        if len(self.stack) >= MAX_DEPTH:
            raise self.budget.too_deep(line)
        self.budget.spend(1, line)
        is_map = isinstance(event, MappingStartEvent)
        value = new_dict(line) if is_map else new_list(line)
        budget = self.budget
        self.stack.append(_Open(value, event.anchor, line, budget.used - 1, budget.chars))
        if event.anchor is not None:
            self.check_new_anchor(event.anchor, line)
            self.open_anchors.add(event.anchor)

    def awaits_key(self) -> bool:
        top = self.stack[-1]
        return isinstance(top.value, LocDict) and top.key is _NO_KEY

    def scalar(self, event: ScalarEvent, line: int) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        plain = event.tag is None and not event.style  # libyaml's style is "", PyYAML's None
        if tag == _STR and plain and self.json_numbers and _JSON_EXPONENT.fullmatch(event.value):
            return float(event.value)  # within bounds: json.loads read it already
        if tag == _MERGE:
            # A merge as a mapping's key; anywhere else, the text it is.
            return _MERGE_KEY if self.stack and self.awaits_key() else event.value
        # Most scalars are strings; the constructor costs 10x more.
        value = event.value if tag == _STR else self.construct(tag, event, line)
        if plain and tag != _STR and value is not None:
            self.written = event.value  # a plain 0644, yes or 1.0 (libyaml's style is "")
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise self.fail(problem + self.where(), line)
        return value

    def construct(self, tag: str, event: ScalarEvent, line: int) -> Any:
        """A plain or tagged scalar as PyYAML's SafeLoader builds it, or a GraphError.

        The resolver only looks at the shape of the text: ``2020-13-45`` is a
        date, ``!!int abc`` an int; building them raises ValueError (or
        KeyError: ``!!bool maybe``), which must name the line like any error.
        """
        if tag == _INT and too_many_digits(event.value):
            raise self.fail(DIGITS_MESSAGE + self.where(), line)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err)
            raise self.fail(f"bad value: {_one_line(problem)}", line) from None
        except Exception as err:  # any of them is this one scalar's fault
            # ValueError (2020-13-45), KeyError (!!bool maybe), AttributeError
            # (!!timestamp xyz): PyYAML's constructors trust the resolver.
            reason = _one_line(str(err)) if isinstance(err, ValueError) else "not a valid value"
            what = _TAG_WORDS.get(tag, tag)
            message = f"cannot read {shown(event.value)} as {what}{self.where()}: {reason}"
            if not event.tag or event.tag == "!":  # resolved from its shape, not asked for
                message += " (quote it to keep it as text)"
            raise self.fail(message, line) from None

    def where(self) -> str:
        """`` (the value of 'content')``: the key a scalar being read belongs to, if any."""
        for open_value in reversed(self.stack):
            if isinstance(open_value.value, LocDict):
                if open_value.key is _NO_KEY:
                    return " (a mapping key)" if open_value is self.stack[-1] else ""
                return f" (the value of {shown(open_value.key)})"
        return ""

    def alias(self, name: str, line: int) -> Tuple[Any, int]:
        if name in self.open_anchors:
            raise self.fail(f"alias *{name} refers to a value that contains it", line)
        if name not in self.anchors:
            raise self.fail(f"alias *{name} has no anchor &{name} before it", line)
        value, size, height, _anchor_line, chars = self.anchors[name]
        if len(self.stack) + height > MAX_DEPTH:
            raise self.budget.too_deep(line)
        self.budget.spend_alias(size, line, chars)
        return copy_located(value), height

    def check_new_anchor(self, name: str, line: int) -> None:
        if name in self.anchors or name in self.open_anchors:
            first = self.anchors[name][3] if name in self.anchors else "an enclosing value"
            raise self.fail(f"duplicate anchor &{name} (first on line {first})", line)

    def remember(
        self, name: Optional[str], value: Any, size: int, height: int, line: int, chars: int
    ) -> None:
        if name is None:
            return
        if name in self.anchors:  # a scalar's anchor; a container's was checked at its start
            self.check_new_anchor(name, line)
        self.anchors[name] = (value, size, height, line, chars)

    def add(self, parent: _Open, value: Any, line: int, height: int) -> None:
        if height > parent.height:
            parent.height = height
        target = parent.value
        if not isinstance(target, LocDict):
            target.append(value)
            target.item_lines.append(line)
        elif parent.key is _NO_KEY:
            if isinstance(value, (dict, list)):  # an alias to a mapping or list
                raise self.fail("a mapping key must be a plain value", line)
            try:
                seen = value in target
            except TypeError:
                raise self.fail("a mapping key must be a plain value", line) from None
            if value is _MERGE_KEY:
                if parent.merges is not None:  # one per mapping: a list merges several
                    first = parent.merge_line
                    raise self.fail(f"duplicate merge key << (first on line {first})", line)
                parent.merges, parent.merge_line = [], line
            elif seen:
                first = target.key_lines[value]
                raise self.fail(f"duplicate key {shown(value)} (first on line {first})", line)
            parent.key, parent.key_line = value, line
        elif parent.key is _MERGE_KEY:
            parent.merges = self.merge_sources(value, line)
            parent.key = _NO_KEY
        else:
            target[parent.key] = value
            target.key_lines[parent.key] = parent.key_line
            if self.written is not None:
                target.key_texts[parent.key] = self.written
            parent.key = _NO_KEY

    def merge_sources(self, value: Any, line: int) -> List[LocDict]:
        """The mappings a ``<<`` merges: one mapping, or a list of them."""
        sources = value if isinstance(value, list) else [value]
        if sources and all(isinstance(source, LocDict) for source in sources):
            return sources
        if isinstance(value, list):
            wrong = [item for item in value if not isinstance(item, LocDict)]
            got = f"a list holding {describe(wrong[0])}" if wrong else "an empty list"
        else:
            got = describe(value)
        message = (
            f"a merge key (<<) takes a mapping or a list of mappings (such as *defaults), got {got}"
        )
        raise self.fail(message, line)


def _merge(target: LocDict, sources: List[LocDict]) -> None:
    """Add to ``target`` the keys of ``sources`` it does not have: its own keys win,
    then the first source's (YAML's merge key)."""
    for source in sources:
        for key, item in source.items():
            if key not in target:
                target[key] = item
                target.key_lines[key] = source.line_of(key)
                if key in source.key_texts:
                    target.key_texts[key] = source.key_texts[key]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _reader_error(text: str, path: Optional[str]) -> GraphError:
    """A character YAML does not allow: name it and its line (PyYAML gives an offset)."""
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if found is None:  # not a character problem after all (an encoding one)
        return GraphError("YAML error: the text cannot be read", path, None)
    line = text.count("\n", 0, found.start()) + 1
    code = ord(found.group())
    escape = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return GraphError(
        f"YAML does not allow the control character U+{code:04X} in a file; "
        f'write it as "{escape}" in a double-quoted string',
        path,
        line,
    )


def _char_at(text: str, mark: Any) -> str:
    """The character an error's mark points at ('' if none); by line and column,
    as libyaml's index leaves out a byte order mark."""
    if mark is None:
        return ""
    lines = text.splitlines()  # YAML's line breaks, and some it refuses anyway
    if mark.line >= len(lines):
        return ""
    line = lines[mark.line].lstrip("\ufeff") if mark.line == 0 else lines[mark.line]
    return line[mark.column] if mark.column < len(line) else ""


def load_yaml(text: str, path: Optional[str] = None, json_numbers: bool = False) -> Any:
    """Parse one YAML document into located values; every error is a GraphError with a line.
    ``json_numbers``: a plain ``1e5`` is the number JSON reads, not text."""
    reader = None
    try:
        # PyYAML's own reader checks the characters here, libyaml's while parsing.
        reader = _Reader(text, path, json_numbers)
        return reader.document()
    except UnicodeEncodeError as err:  # a lone surrogate: text that came from no UTF-8 file
        line = text.count("\n", 0, err.start) + 1
        raise GraphError("the graph is not valid Unicode text", path, line) from None
    except yaml.reader.ReaderError:
        raise _reader_error(text, path) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = _one_line(err.problem or err.context or "invalid YAML")
        if "cannot start any token" in problem and _char_at(text, mark) == "\t":
            # libyaml does not say which character: a tab, nearly always indenting.
            problem = "a tab cannot start a value or indent a line in YAML: indent with spaces"
        raise GraphError(f"YAML syntax error: {problem}", path, line) from None
    except yaml.YAMLError as err:
        raise GraphError(f"YAML error: {_one_line(str(err))}", path, None) from None
    finally:
        dispose = getattr(reader.loader, "dispose", None) if reader is not None else None
        if dispose is not None:
            dispose()
