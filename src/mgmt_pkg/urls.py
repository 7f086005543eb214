"""What makes a URL's host and port usable, shared by the checks of every URL option.

``urllib.parse`` is lenient: ``.port`` is 0 for ":0" and any number up to
65535 (and only raises above it), ``.hostname`` of ``[::1`` or ``[nope]`` is
text. A URL is useful only with a port a connection can use (1-65535) and a
host that is a name or an address: an IPv6 address is written in brackets.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Collection, Optional

__all__ = ["url_problem"]


def url_problem(value: str, schemes: Collection[str]) -> Optional[str]:
    """None when ``value`` has one of ``schemes``, a usable host and port, else what is wrong."""
    try:
        parts = urllib.parse.urlsplit(value)  # ValueError for "[nope]" and the like
    except ValueError as error:
        return str(error)
    if parts.scheme not in schemes:
        return f"the scheme is not {' or '.join(schemes)}"
    try:
        port = parts.port  # ValueError when not a number or above 65535
    except ValueError:
        return "the port is not a number from 1 to 65535"
    if port == 0:
        return "the port is not a number from 1 to 65535"
    host = parts.hostname or ""
    netloc = parts.netloc.rpartition("@")[2]
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} in brackets is not an IPv6 address"
        return None
    if not host or not all(host.removesuffix(".").split(".")):  # "", "a..b", ".a"
        return f"no host, or an empty label in {host!r}"
    return None
