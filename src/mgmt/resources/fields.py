"""How a kind declares its parameters (:class:`Field`), how a graph's are checked
against them (:func:`fill_params`), and how a bad one is reported.

Kept apart from :mod:`mgmt.resources.base` so that the graph reader can use
:func:`describe`, the bounds and ``meta:`` (:class:`Meta`) without the engine's
contract. Every numeric
field has a range checked when the graph is read: a value the engine cannot
use (a negative timeout, a delay of 10^22 ms, which ``threading`` refuses with
an OverflowError in a worker thread) must stop the graph at its line, not
kill a thread of a running agent.
"""

from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple, Union

__all__ = [
    "MAX_MILLISECONDS",
    "MAX_RETRY",
    "MAX_SECONDS",
    "META_FIELDS",
    "Field",
    "FieldError",
    "Meta",
    "describe",
    "fill_params",
    "meta_export",
    "meta_from_export",
    "number_field",
    "shown",
    "shown_name",
]

# The longest wait any field may ask for: a year. Far above any real interval,
# far below threading.TIMEOUT_MAX (~292 years on Linux) and time.time() + it
# stays a valid timestamp on every platform the agent runs on.
MAX_SECONDS = 365 * 24 * 3600
MAX_MILLISECONDS = MAX_SECONDS * 1000
# Longer reprs are cut in messages: an error stays one readable line.
_SHOWN = 60


class FieldError(ValueError):
    """A parameter is invalid; graph validation turns it into a GraphError at its line."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        self.message = message
        super().__init__(f"{field_name}: {message}")


def describe(value: Any) -> str:
    """A value in a message, in the graph's words: ``a list``, ``int 5``, ``str 'x'``.

    Never the reader's class names (LocList), and short: a 5000-digit integer
    has no repr at all on Python 3.11+ (int_max_str_digits), so its size is given.
    """
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"bool {str(value).lower()}"
    if isinstance(value, int) and value.bit_length() > 200:  # ~60 digits
        return "an integer of more than 60 digits"
    if isinstance(value, bytes):
        return "binary data"
    if type(value).__name__ in ("date", "datetime"):  # YAML timestamps
        return f"date {value}"
    text = repr(value)
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "..."
    return f"{type(value).__name__} {text}"


def shown(value: Any) -> str:
    """A user's value quoted in a message: repr-escaped and cut at 60 characters.

    Every error that repeats a value from a graph or from the world goes
    through here: repr keeps it on one line (a newline or a control character
    is shown escaped, never printed), and the cut keeps a 2 MB name or command
    from becoming a 2 MB error line. A string is cut before repr, so showing
    one costs the same whatever its length.
    """
    if isinstance(value, str):
        text = repr(value[: _SHOWN + 1])
        if len(value) > _SHOWN or len(text) > _SHOWN + 2:
            text = text[:_SHOWN] + "..."
        return text
    if isinstance(value, bytes) or (isinstance(value, int) and value.bit_length() > 200):
        return describe(value)
    try:  # a list or a mapping as written, cut like a string
        text = repr(value)
    except (ValueError, RecursionError):  # a 5000-digit int inside, or 1000 levels deep
        return describe(value)
    return text[:_SHOWN] + "..." if len(text) > _SHOWN else text


def shown_name(name: str) -> str:
    """A resource's name inside ``kind[name]``: as it is when short and printable,
    else escaped as repr does and cut at 60 characters.

    A graph's names are checked for control characters, but an edge's target,
    a duplicate or a collected name may not be yet, and any may be 2 MB long.
    """
    if len(name) <= _SHOWN and name.isprintable():
        return name
    return repr(name[:_SHOWN])[1:-1] + ("..." if len(name) > _SHOWN else "")


def _plain(value: Any) -> str:
    """A scalar as written (``5``, ``'gone'``), or described when too long to show."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = describe(value)
        return text.partition(" ")[2] if text.startswith(type(value).__name__ + " ") else text
    return describe(value)


_Types = Union[type, Tuple[type, ...]]
_Number = Union[int, float]


class Field(NamedTuple):
    """One parameter of a kind: accepted types, default, allowed values, and a line of docs.

    ``types`` is a type or a tuple of types (``bool`` is never accepted for
    ``int``); ``default`` is used when the key is absent (and must not be a
    mutable object); ``choices`` restricts the value; ``bounds`` (low, high),
    both included, restricts a number (see :func:`number_field`).
    """

    types: _Types = str
    required: bool = False
    default: Any = None
    choices: Optional[Tuple[Any, ...]] = None
    doc: str = ""
    bounds: Optional[Tuple[_Number, _Number]] = None

    def check(self, name: str, value: Any) -> None:
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        # bool is an int to isinstance(); a YAML `true` is never a number here.
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            wanted = " or ".join(t.__name__ for t in types)
            raise FieldError(name, f"expected {wanted}, got {describe(value)}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise FieldError(name, f"{_plain(value)} is not one of {allowed}")
        if self.bounds is not None and isinstance(value, (int, float)):
            low, high = self.bounds
            # `not low <= value` also refuses a float NaN, which compares false.
            if not low <= value <= high:
                raise FieldError(name, f"{_plain(value)} is out of range ({low} to {high})")


def number_field(
    low: _Number,
    high: _Number,
    default: Optional[_Number] = None,
    doc: str = "",
    required: bool = False,
    types: _Types = int,
) -> Field:
    """An integer (or, with ``types``, float) field that must lie in [low, high].

    The range is appended to the doc, so what the graph may say is written once.
    """
    doc = f"{doc} ({low} to {high})"
    return Field(types, required=required, default=default, doc=doc, bounds=(low, high))


class Meta(NamedTuple):
    """Engine-level settings every resource accepts under ``meta:``.

    retry: how many times to retry a failed check_apply (-1 forever);
    delay: milliseconds to wait before a retry and between two runs;
    noop: never change anything for this resource; autoedge: add edges that
    follow from the parameters (a file after the file of its directory);
    autogroup: let the engine run this resource together with others of its kind
    that the kind says belong together (pkg: one dnf transaction); kinds
    without an ``autogroup_key`` ignore it.
    """

    autoedge: bool = True
    autogroup: bool = True
    noop: bool = False
    retry: int = 0
    delay: int = 0


# How ``meta:`` is checked, as a kind's fields are. A retry below -1 used to
# mean "forever" by accident, and a huge delay killed the worker thread that
# waited it (OverflowError), hanging the run.
MAX_RETRY = 1000000
META_FIELDS: Dict[str, Field] = {
    "autoedge": Field(bool, default=True),
    "autogroup": Field(bool, default=True),
    "noop": Field(bool, default=False),
    "retry": number_field(-1, MAX_RETRY, default=0, doc="retries after a failure; -1 forever"),
    "delay": number_field(
        0, MAX_MILLISECONDS, default=0, doc="milliseconds before a retry and between two runs"
    ),
}


def meta_export(meta: Meta) -> Dict[str, Any]:
    """The fields of ``meta`` that differ from their defaults, as an export carries
    them (an export with the defaults reads as before: older collectors take it)."""
    return {k: v for k, v in meta._asdict().items() if v != META_FIELDS[k].default}


def meta_from_export(value: Any) -> Meta:
    """``meta`` as another host exported it, checked as a graph's (FieldError if not):
    mgmt's exported resources carry their metaparameters, and a collector that
    dropped them applied a ``noop: true`` export for real."""
    if not isinstance(value, dict):
        raise FieldError("meta", f"must be a mapping, got {describe(value)}")
    for key, got in value.items():
        field = META_FIELDS.get(key)
        if field is None:
            raise FieldError("meta", f"unknown key {shown(key)}")
        if type(got) is not field.types:
            raise FieldError(f"meta {key}", f"expected {field.types.__name__}, got {describe(got)}")
        field.check(f"meta {key}", got)
    return Meta(**value)


def fill_params(cls: type, params: Mapping[str, Any]) -> Dict[str, Any]:
    """Check ``params`` against ``cls.fields`` and return them with defaults filled.

    Raises :class:`FieldError` naming the first bad key.
    """
    schema: Mapping[str, Field] = cls.fields
    for key in params:
        if key not in schema:
            known = ", ".join(sorted(schema)) or "none"
            raise FieldError(key, f"unknown field for kind {cls.kind!r} (known: {known})")
    filled: Dict[str, Any] = {}
    for key, spec in schema.items():
        if key in params and params[key] is not None:
            spec.check(key, params[key])
            filled[key] = params[key]
        elif spec.required:
            raise FieldError(key, f"required field missing for kind {cls.kind!r}")
        else:
            filled[key] = spec.default
    cls.validate(filled)
    return filled
