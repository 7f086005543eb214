"""How big a graph may be: bytes, values and nesting, checked while it is read.

A graph is read by the agent, which runs as root and must stay up, so no text
may make it grow without bound: a ten-line YAML alias bomb (anchors x0..x9,
each a list of ten aliases to the previous one) expands to 10^10 values, and
600 nested blocks or a 100,000-deep JSON array would exhaust Python's stack,
and 19,000 aliases to one 2 MiB string ask for 40 GB (an alias's text counts
each time it is used: :data:`MAX_EXPANDED_CHARS`).
The readers (:mod:`mgmt.graph.yamlload`, :mod:`mgmt.graph.located`) count as
they go and stop at the first value over a bound, naming its line, before the
memory or the time is spent.

The bounds are well above any real graph: 10,000 resources of a few fields each
are about 1.2 MiB, 80,000 values and 6 levels deep, and load in 0.6 s; at the
bounds a graph loads in at most about 3 s and 300 MB. Checking costs a normal
graph nothing measurable (the example graph: 96 us to parse instead of 84 us).
"""

from typing import Optional

from mgmt import log
from mgmt.errors import GraphError

MAX_BYTES = 4 * 1024 * 1024
# Every scalar, list and mapping counts one, and what an alias expands to counts
# in full: the bound is on the values built, not on the text.
MAX_VALUES = 500000
# Aliases share a block (a meta, a content) among resources; expanding more
# than this is a bomb, refused before MAX_VALUES is spent copying. A merge key
# (``- <<: *defaults``) makes one alias per resource the way to write a graph:
# 20,000 resources (MAX_RESOURCES) each merging a block of ~20 values load in
# about a second; at 100,000 one of 12,000 was refused.
MAX_ALIAS_VALUES = 400000
# The text the values hold once aliases are expanded, in characters: a scalar
# alias is one value but a copy of all its text for every resource that uses it
# (a file's content is encoded once per resource, and resources are built
# twice), so 19,000 uses of a 2 MiB comment asked for ~40 GB. Four times
# MAX_BYTES: a graph may share its text among resources, up to a few times
# what it could have written out in full.
MAX_EXPANDED_CHARS = 4 * MAX_BYTES
# Validating and first applying a resource costs ~60 us: 20,000 keep a graph's
# start (and a SIGTERM meanwhile, which the agent reads after it) to about a
# second; twice bench/engine.py's largest graph.
MAX_RESOURCES = 20000
# graph > resources > kind > list > resource > field > a list or map value: 7.
MAX_DEPTH = 64

NUL_MESSAGE = "a string holds a NUL character (\\0): no path, command or name can hold one"
# Longer integers are no field's value (the largest bound is 11 digits), and
# Python 3.11+ cannot even convert one of 4,300 digits (int_max_str_digits):
# one limit, the same on every Python, stops them at the reader.
MAX_DIGITS = 100


# Characters no name or one-line value may hold (a resource's name, a host
# name): they would split or garble a log line, a status line and the world's
# keys. C0, DEL, C1, and the Unicode line breaks: mgmt.log's, which shows them
# escaped in text from elsewhere.
CONTROL_CHARACTERS = log.CONTROL_CHARACTERS


def first_control(text: str) -> Optional[str]:
    """The first of CONTROL_CHARACTERS in ``text``, or None."""
    return next((char for char in text if char in CONTROL_CHARACTERS), None)


def name_problem(name: str) -> Optional[str]:
    """Why ``name`` can be no resource's or host's name, or None.

    A name is shown in logs and is a key in the world: visible text on one line.
    The same check for a name read from a graph and one collected from etcd.
    """
    if not name.strip():
        return "must not be empty or blank"
    bad = first_control(name)
    if bad is not None:
        return f"must not hold the control character U+{ord(bad):04X}"
    return None


def text_problem(value: str) -> Optional[str]:
    """Why a string read from a graph can be no value of it, or None.

    A NUL ends a path or an argument in the kernel; a lone surrogate (a
    ``\\ud800`` escape in JSON or YAML) is no character at all: it cannot be
    written to a file, a log or the world, and os functions turn it into a
    stray byte of a file name.
    """
    if "\0" in value:
        return NUL_MESSAGE
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        code = ord(value[err.start])
        return f"a string holds a lone surrogate U+{code:04X}, which is not valid Unicode text"
    return None


def too_many_digits(text: str) -> bool:
    """Whether an integer literal is over :data:`MAX_DIGITS` (a 0x counts two)."""
    return len(text.lstrip("+-").replace("_", "")) > MAX_DIGITS


DIGITS_MESSAGE = f"a number has more than {MAX_DIGITS} digits; no field takes one"


def check_size(text: str, path: Optional[str]) -> None:
    """Refuse text over MAX_BYTES (counted in characters: never more than its bytes)."""
    if len(text) > MAX_BYTES:
        raise GraphError(f"the graph is larger than {MAX_BYTES // (1024 * 1024)} MiB", path, None)


def check_json_containers(text: str, path: Optional[str]) -> None:
    """Refuse JSON text with more brackets than MAX_VALUES, before json.loads builds them.

    json.loads has no hook for lists: 4 MiB of ``[],`` would be 1.4 million
    lists in memory before any count. Brackets inside strings count too, which
    can only refuse a graph already near the bound.
    """
    if text.count("[") + text.count("{") > MAX_VALUES:
        raise GraphError(f"the graph has more than {MAX_VALUES} values", path, None)


class Budget:
    """Counts the values built and the characters of their strings; refuses the
    first over :data:`MAX_VALUES`, :data:`MAX_ALIAS_VALUES` or
    :data:`MAX_EXPANDED_CHARS`."""

    __slots__ = ("aliased", "chars", "path", "used")

    def __init__(self, path: Optional[str]):
        self.path = path
        self.used = 0
        self.aliased = 0
        self.chars = 0  # the characters of the strings built, keys included

    def spend(self, count: int, line: Optional[int], chars: int = 0) -> None:
        self.used += count
        if self.used > MAX_VALUES:
            raise GraphError(f"the graph has more than {MAX_VALUES} values", self.path, line)
        self.chars += chars
        if self.chars > MAX_EXPANDED_CHARS:
            mib = MAX_EXPANDED_CHARS // (1024 * 1024)
            message = f"the graph's text is more than {mib} MiB with its aliases expanded"
            raise GraphError(message, self.path, line)

    def spend_alias(self, count: int, line: Optional[int], chars: int = 0) -> None:
        """What an alias expands to: its own, lower bound, then the graph's."""
        self.aliased += count
        if self.aliased > MAX_ALIAS_VALUES:
            message = f"YAML aliases expand to more than {MAX_ALIAS_VALUES} values"
            raise GraphError(message, self.path, line)
        self.spend(count, line, chars)

    def too_deep(self, line: Optional[int]) -> GraphError:
        return GraphError(f"values are nested more than {MAX_DEPTH} levels deep", self.path, line)
