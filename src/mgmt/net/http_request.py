"""What RFC 9112 says a server must answer with 400, checked on a parsed request.

http.server (through http.client.parse_headers and the email parser) is lenient:
it takes a request without a Host, a header line with a space before its colon
(and silently drops that line and every one after it: a ``Connection: close``
or a ``Range`` among them), folded header lines, and any Content-Length. A
server that guesses there and a proxy in front of it that guesses otherwise
disagree about where a request ends, or what it asks for; so these are refused.
"""

import re
import urllib.parse
from email.message import Message
from typing import Optional

__all__ = ["closes", "field", "has_body", "request_path", "request_problem", "target_path"]

_LENGTH = re.compile(r"[0-9]+")
# uri-host [":" port] (RFC 3986, 3.2.2): an IP literal in brackets, or a reg-name
# or IPv4 address; empty is allowed (RFC 9112, 3.2).
_HOST = re.compile(r"(\[[0-9A-Za-z:.%~_-]+\]|[0-9A-Za-z._~%!$&'()*+,;=-]*)(:[0-9]*)?")


def request_problem(version: str, headers: Message) -> Optional[str]:
    """Why a request with these parsed ``headers`` gets a 400; None if it is fine."""
    if headers.defects or headers.get_payload():
        # The email parser stops at a line that is no "name: value" (a space or tab
        # before the colon, a missing name) and keeps the rest as a "body".
        return "malformed header line (RFC 9112, 5.1)"
    for _name, value in headers.items():
        if "\n" in value or "\r" in value:  # what the parser keeps of a fold
            return "obsolete line folding in a header (RFC 9112, 5.2)"
    hosts = headers.get_all("Host") or []
    if len(hosts) > 1:
        return "more than one Host header (RFC 9112, 3.2)"
    if not hosts and version != "HTTP/1.0":  # HTTP/1.0 had no Host; 1.1 and later must send it
        return f"{version} request without a Host header (RFC 9112, 3.2)"
    if hosts and _HOST.fullmatch(hosts[0].strip(" \t")) is None:
        return "a Host header that is no host[:port] (RFC 9112, 3.2)"
    listed = ",".join(headers.get_all("Transfer-Encoding") or []).split(",")
    codings = [coding.strip(" \t").lower() for coding in listed if coding.strip(" \t")]
    if codings and codings[-1] != "chunked":  # empty list elements do not count (RFC 9110, 5.6.1)
        # No telling where the body ends: a MUST for 400, and closing (RFC 9112, 6.3).
        return "Transfer-Encoding does not end in chunked (RFC 9112, 6.3)"
    lengths = headers.get_all("Content-Length") or []
    if any(_LENGTH.fullmatch(value.strip()) is None for value in lengths):
        return "Content-Length is not a number (RFC 9112, 6.3)"
    # Compared as text, not int(): Python 3.11+ refuses int() of over 4300 digits.
    if len({value.strip().lstrip("0") for value in lengths}) > 1:
        return "Content-Length headers that differ (RFC 9112, 6.3)"
    return None


def target_path(target: str) -> Optional[str]:
    """The path of a request target, still percent-encoded; None if it has none.

    Origin-form (``/images/install.img?x``) is cut at ``?``, never given to
    urlsplit: a path that starts with ``//`` (``inst.repo=http://srv/`` joined
    with ``/images/install.img``) would be read as a host and a path, and serve
    ``/install.img``. http.server collapses those slashes only since 2022
    (CPython gh-87389); Python 3.6, as on RHEL 8, hands them over as they came.
    Absolute-form (``http://srv/images/install.img``), which RFC 9112 (3.2.2)
    says a server must accept, is split as a URL.
    """
    if target.startswith("/"):
        return target.partition("?")[0].partition("#")[0]
    parts = urllib.parse.urlsplit(target)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return parts.path or "/"


def request_path(target: str) -> Optional[str]:
    """The decoded path of a request target, or None if it has none or tries to
    smuggle a separator or NUL in (``%2F``, ``%5C``, ``%00``)."""
    raw = target_path(target)
    lowered = (raw or "").lower()
    if raw is None or "%2f" in lowered or "%5c" in lowered or "%00" in lowered:
        return None
    return urllib.parse.unquote(raw, errors="surrogateescape")


def has_body(headers: Optional[Message]) -> bool:
    """Whether a request with these headers came with a body (the server reads none)."""
    if headers is None:
        return False
    return headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in headers


def field(headers: Message, name: str) -> Optional[str]:
    """A header's value, its lines joined with ", " (RFC 9110, 5.3); None if absent.

    ``If-None-Match: "a"`` and ``If-None-Match: "b"`` on two lines are one list
    (``Message.get`` saw only the first, so an If-Match on a second line gave
    412 for the very file it names). A field that takes one value only (a date,
    a Range) is no valid value once joined, and so ignored, as the RFC says.
    """
    values = headers.get_all(name)
    return None if values is None else ", ".join(values)


def closes(headers: Message, default: bool) -> bool:
    """Whether the connection ends after this request, by its Connection options (RFC
    9112, 9.3); ``default`` (by the HTTP version) when it names neither close nor
    keep-alive.

    The options are a list, on one line or several: http.server compares the first
    line with "close" as a whole, so ``Connection: TE, close`` (Perl's LWP sends it)
    or a close on a second line kept the connection open, unsaid.
    """
    listed = ",".join(headers.get_all("Connection") or []).split(",")
    options = {option.strip(" \t").lower() for option in listed}
    if "close" in options:
        return True
    return False if "keep-alive" in options else default
