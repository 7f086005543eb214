"""RFC 9110 Range and conditional-request rules as pure functions.

Nothing here touches a socket or a file: the server hands in the method, the
request headers and what it knows about the representation (size, ETag,
modification time) and gets back a :class:`ResponsePlan` saying which status to
send and which byte ranges. Keeping the rules apart from the I/O is what lets a
hypothesis test check them against an independent model of the RFC, and the
edge-case table pin every case where rangehttpserver 1.4.0 goes wrong.

Choices where the RFC leaves room (all allowed by RFC 9110 §14.2 and §15.3.7):

- a Range header that is not ``bytes``, is malformed, has ``last < first`` or
  asks for more than ``max_ranges`` ranges is ignored (200, whole body): a 200
  is always safe for clients such as zchunk/librepo, a 400 fails the mirror;
- overlapping or adjacent ranges are merged, so the body is never larger than
  the file however the ranges overlap; the parts keep the request's order
  (RFC 9110 §14.6), a merged part at the place of its earliest member;
- a zero-length file has no bytes to send, so a satisfiable suffix range on it
  gets a plain 200.
"""

import datetime
import email.utils
import math
import re
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "MAX_RANGES",
    "MAX_RANGES_LIMIT",
    "ByteRange",
    "ResponsePlan",
    "if_range_matches",
    "last_modified",
    "make_etag",
    "multipart_layout",
    "parse_range",
    "plan_response",
    "select_ranges",
]

# zchunk asks for up to 256 ranges in one request; more than that is ignored.
MAX_RANGES = 256
# The most a server may be set to take (0 takes none: every request gets a 200).
# Each range is a part of the answer to plan and send: far above any client's.
MAX_RANGES_LIMIT = 4096

# No file is this large (off_t is 63 bits): larger positions all mean "past the end".
BEYOND_ANY_FILE = 2**63
_BEYOND_DIGITS = str(BEYOND_ANY_FILE)

# One range-spec of the bytes unit: "first-[last]" or "-suffix" (RFC 9110 §14.1.1).
_SPEC = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)")
_UNIT = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)=(.*)", re.DOTALL)
_OWS = " \t"
# asctime-date (RFC 9110 §5.6.7): "Sun Nov  6 08:49:37 1994".
_ASCTIME = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"[ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}"
)

# (first, last) with last None for "first-", or (None, suffix_length) for "-N".
Spec = Tuple[Optional[int], Optional[int]]
HeaderGetter = Callable[[str], Optional[str]]


class ByteRange(NamedTuple):
    """An inclusive byte range of a representation, already clamped to its size."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.first}-{self.last}/{size}"


class ResponsePlan(NamedTuple):
    """What to answer: 200 (whole body), 206 (``ranges``), 304, 412 or 416."""

    status: int
    ranges: Tuple[ByteRange, ...] = ()

    @property
    def multipart(self) -> bool:
        return self.status == 206 and len(self.ranges) > 1


def make_etag(size: int, mtime_ns: int, inode: int = 0) -> str:
    """A strong validator for a file: changes whenever its size, mtime or inode do."""
    return f'"{mtime_ns:x}-{size:x}-{inode:x}"'


def parse_range(value: Optional[str]) -> Optional[List[Spec]]:
    """Parse a Range header's syntax; ``None`` means "ignore the header".

    Unknown units, malformed specs, ``last < first`` and an empty range set all
    give ``None``: RFC 9110 says to ignore them, never to answer 400.
    """
    if value is None:
        return None
    match = _UNIT.fullmatch(value.strip(_OWS))
    if match is None or match.group(1).lower() != "bytes":
        return None
    specs: List[Spec] = []
    for element in match.group(2).split(","):
        element = element.strip(_OWS)
        if not element:
            continue  # the list rule lets senders leave empty elements
        spec = _SPEC.fullmatch(element)
        if spec is None:
            return None
        first, last, suffix = spec.groups()
        if suffix is not None:
            specs.append((None, _position(suffix)))
        elif last:
            if _digits_key(last) < _digits_key(first):
                return None
            specs.append((_position(first), _position(last)))
        else:
            specs.append((_position(first), None))
    return specs or None


def _position(digits: str) -> int:
    """A byte position, capped at :data:`BEYOND_ANY_FILE`.

    Any number of digits is valid, but int() refuses more than 4,300 (Python's
    limit on converting long digit strings, a guard against slow conversions),
    and every position past a file's end means the same. ``last < first`` is
    decided on the digits (:func:`_digits_key`), never on capped values.
    """
    if _digits_key(digits) > _digits_key(_BEYOND_DIGITS):
        return BEYOND_ANY_FILE
    return int(digits)


def _digits_key(digits: str) -> Tuple[int, str]:
    """Orders decimal digit strings of any length as their numbers, without int()."""
    digits = digits.lstrip("0") or "0"
    return len(digits), digits


def _clamp(spec: Spec, size: int) -> Optional[ByteRange]:
    """The satisfiable part of one spec, or None (RFC 9110 §14.1.1)."""
    first, last = spec
    if first is None:  # suffix: the last N bytes; longer than the file = all of it
        if last == 0 or size == 0:
            return None
        return ByteRange(max(0, size - last), size - 1)
    if first >= size:
        return None
    return ByteRange(first, size - 1 if last is None else min(last, size - 1))


def _merge(ranges: List[ByteRange]) -> Tuple[ByteRange, ...]:
    """Coalesce overlapping and adjacent ranges; keep the order of the request.

    RFC 9110 §14.6: parts SHOULD come in the order their range-specs were
    asked for, except those coalesced into others (nginx and Go do so). A
    coalesced range takes the place of its earliest member.
    """
    order = sorted(range(len(ranges)), key=lambda i: (ranges[i].first, ranges[i].last))
    groups: List[Tuple[int, ByteRange]] = []  # (earliest request index, range)
    for index in order:
        current = ranges[index]
        if groups and current.first <= groups[-1][1].last + 1:
            earliest, previous = groups.pop()
            merged = ByteRange(previous.first, max(previous.last, current.last))
            groups.append((min(earliest, index), merged))
        else:
            groups.append((index, current))
    return tuple(byte_range for _index, byte_range in sorted(groups, key=lambda g: g[0]))


def select_ranges(value: Optional[str], size: int, max_ranges: int = MAX_RANGES) -> ResponsePlan:
    """Apply a Range header to a representation of ``size`` bytes (GET only)."""
    specs = parse_range(value)
    if specs is None or len(specs) > max_ranges:
        return ResponsePlan(200)
    satisfiable = [r for r in (_clamp(spec, size) for spec in specs) if r is not None]
    if not satisfiable:
        # A zero-length file has nothing to send even for "-N": the whole (empty) body.
        if size == 0 and any(first is None and last for first, last in specs):
            return ResponsePlan(200)
        return ResponsePlan(416)
    return ResponsePlan(206, _merge(satisfiable))


def _http_date_seconds(value: str) -> Optional[int]:
    """The date's POSIX seconds, or None for anything that is not a usable date.

    email.utils parses any digits it finds, so a year, day, time or zone offset
    too large for datetime raises OverflowError (a C int/long conversion), a
    value out of its range ValueError, and a short field list IndexError or
    TypeError. RFC 9110 §13.1.3/§13.1.4 say an invalid date is ignored (and an
    If-Range that is not a valid date does not match), so all of them mean None.
    """
    try:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is not None and parsed.tzinfo is None and _ASCTIME.fullmatch(value.strip(_OWS)):
            # asctime's has no zone and means GMT; a recipient MUST take it (RFC 9110
            # §5.6.7). Any other date without a zone ("-0000") says nothing usable.
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        if parsed is None or parsed.tzinfo is None:
            return None
        return int(parsed.timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _whole(mtime: float) -> int:
    """The second of ``mtime`` that Last-Modified shows (formatdate floors it).

    int() cuts toward zero instead: for a file dated before 1970 with a fraction
    (-0.5 is 23:59:59 of 1969-12-31) it gave the second after, so the file's own
    Last-Modified sent back in If-Unmodified-Since got a 412, and in
    If-Modified-Since or If-Range never matched.
    """
    return math.floor(mtime)


def if_range_matches(value: str, etag: str, mtime: float, now: float) -> bool:
    """RFC 9110 §13.1.5: only a strong validator that still matches keeps the Range.

    An entity-tag matches by strong comparison (a weak tag never does). A date
    matches only if it equals Last-Modified and that date is a strong validator,
    i.e. the file was last changed at least a second before now.
    """
    value = value.strip(_OWS)
    if value.startswith('"') or value.startswith("W/"):
        return not etag.startswith("W/") and value == etag
    seconds = _http_date_seconds(value)
    return seconds is not None and seconds == _whole(mtime) and now - mtime >= 1


def last_modified(mtime: float, now: float) -> float:
    """The Last-Modified of a file changed at ``mtime``: never later than now (RFC 9110
    §8.8.2.1: a date in the future, from a clock that was off when it was written,
    becomes the time of the answer)."""
    return min(mtime, now)


def _etag_list_matches_strong(value: str, etag: str) -> bool:
    """If-Match uses strong comparison: a weak tag, ours or theirs, never matches."""
    if value.strip(_OWS) == "*":
        return True  # any current representation: the file is there
    if etag.startswith("W/"):
        return False
    return any(candidate.strip(_OWS) == etag for candidate in value.split(","))


def _etag_list_matches(value: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: W/"x" matches "x"."""
    if value.strip(_OWS) == "*":
        return True
    ours = etag[2:] if etag.startswith("W/") else etag
    for candidate in value.split(","):
        candidate = candidate.strip(_OWS)
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == ours:
            return True
    return False


def plan_response(
    method: str,
    size: int,
    etag: str,
    mtime: float,
    header: HeaderGetter,
    now: float,
    max_ranges: int = MAX_RANGES,
) -> ResponsePlan:
    """Decide the status and ranges of a GET or HEAD for one representation.

    ``header(name)`` returns a request header or None. Order per RFC 9110 §13.2.2:
    If-Match (or else If-Unmodified-Since) may give 412; If-None-Match (or else
    If-Modified-Since) may give 304; then Range applies to GET only, and only
    while If-Range (when sent) still matches.

    ``mtime`` is the Last-Modified the server sends: see :func:`last_modified`.
    """
    if_match = header("If-Match")
    if if_match is not None:
        if not _etag_list_matches_strong(if_match, etag):
            return ResponsePlan(412)
    else:
        unmodified = header("If-Unmodified-Since")
        seconds = _http_date_seconds(unmodified) if unmodified is not None else None
        if seconds is not None and _whole(mtime) > seconds:
            return ResponsePlan(412)
    if_none_match = header("If-None-Match")
    if if_none_match is not None:
        if _etag_list_matches(if_none_match, etag):
            return ResponsePlan(304)
    else:
        since = header("If-Modified-Since")
        seconds = _http_date_seconds(since) if since is not None else None
        # A date later than now is invalid (RFC 7232 §3.3, as Apache does): no
        # Last-Modified of ours was ever that, and taken it would keep a client on
        # its copy until then, however often the file changes meanwhile.
        if seconds is not None and _whole(mtime) <= seconds <= now:
            return ResponsePlan(304)
    range_value = header("Range")
    if method != "GET" or range_value is None:
        return ResponsePlan(200)
    if_range = header("If-Range")
    if if_range is not None and not if_range_matches(if_range, etag, mtime, now):
        return ResponsePlan(200)
    return select_ranges(range_value, size, max_ranges)


def multipart_layout(
    ranges: Sequence[ByteRange], size: int, content_type: str, boundary: str
) -> Tuple[List[Tuple[bytes, ByteRange]], bytes, int]:
    """The framing of a multipart/byteranges body, without its data.

    Returns each part's header bytes with the range to send after it, the
    closing delimiter, and the total Content-Length, so the server can announce
    the length up front and stream each range straight from the file.
    """
    parts: List[Tuple[bytes, ByteRange]] = []
    total = 0
    for index, byte_range in enumerate(ranges):
        head = (
            ("\r\n" if index else "")
            + f"--{boundary}\r\n"
            + f"Content-Type: {content_type}\r\n"
            + f"Content-Range: {byte_range.content_range(size)}\r\n\r\n"
        ).encode("latin-1")
        parts.append((head, byte_range))
        total += len(head) + byte_range.length
    tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
    return parts, tail, total + len(tail)
