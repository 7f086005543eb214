"""What the HTTP and TFTP servers hand out: files under a root, plus extra entries.

A served tree is a directory (read-only, nothing outside it reachable) plus an
overlay of extra entries keyed by URL path: a file elsewhere on disk, inline
bytes (a rendered kickstart from a graph), or a choice by MAC address for the
per-host kickstarts that anaconda asks for with ``inst.ks.sendmac``.
"""

import hashlib
import io
import os
import re
import time
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, Mapping, NamedTuple, Optional, Tuple, Union

from mgmt.net.http_range import make_etag

__all__ = [
    "Content",
    "MacSelector",
    "Overlay",
    "OverlayEntry",
    "Source",
    "load",
    "normalize_mac",
    "parse_address",
    "resolve_under",
]

_MAC = re.compile(r"([0-9a-f]{2})[:-]?" * 5 + r"([0-9a-f]{2})")


class Content(NamedTuple):
    """One servable body: a file (streamed with sendfile) or bytes in memory."""

    size: int
    mtime: float
    etag: str
    path: Optional[Path] = None
    data: Optional[bytes] = None

    @classmethod
    def from_path(cls, path: Union[str, Path]) -> "Content":
        info = os.stat(path)
        etag = make_etag(info.st_size, info.st_mtime_ns, info.st_ino)
        return cls(info.st_size, info.st_mtime, etag, Path(path))

    @classmethod
    def from_bytes(cls, data: bytes, mtime: Optional[float] = None) -> "Content":
        # The digest makes the ETag strong: the same bytes always give the same tag.
        digest = hashlib.sha256(data).hexdigest()[:32]
        return cls(len(data), time.time() if mtime is None else mtime, f'"{digest}"', data=data)

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")


def normalize_mac(value: str) -> Optional[str]:
    """``AA-BB-CC-DD-EE-FF`` / ``aabbccddeeff`` -> ``aa:bb:cc:dd:ee:ff``; None if not a MAC."""
    match = _MAC.fullmatch(value.strip().lower())
    return ":".join(match.groups()) if match else None


# A body: fixed bytes (Content) or a file read afresh at every request (Path).
Source = Union[Content, Path]


def load(source: Optional[Source]) -> Optional[Content]:
    """The Content of a source now; None if it is missing or unreadable."""
    if source is None or isinstance(source, Content):
        return source
    try:
        if not source.is_file():
            return None
        return Content.from_path(source)
    except OSError:
        return None


class MacSelector:
    """Pick a body by the MAC addresses a client announces (``X-RHN-Provisioning-MAC-N``).

    dracut with ``inst.ks.sendmac`` sends one header per interface, valued
    ``eth0 aa:bb:cc:dd:ee:ff``; the first interface with an entry wins, and
    ``default`` (or a 404 when None) serves everyone else.
    """

    def __init__(
        self, by_mac: Optional[Dict[str, Source]] = None, default: Optional[Source] = None
    ) -> None:
        normalized: Dict[str, Source] = {}
        for mac, content in (by_mac or {}).items():
            key = normalize_mac(mac)
            if key is None:
                raise ValueError(f"not a MAC address: {mac!r}")
            normalized[key] = content
        self.by_mac = normalized
        self.default = default

    def select(self, headers: Iterable[Tuple[str, str]]) -> Optional[Source]:
        for name, value in headers:
            if not name.lower().startswith("x-rhn-provisioning-mac-"):
                continue
            mac = normalize_mac(value.split()[-1]) if value.split() else None
            if mac in self.by_mac:
                return self.by_mac[mac]
        return self.default


OverlayEntry = Union[Content, Path, MacSelector]
Overlay = Mapping[str, OverlayEntry]


def resolve_under(root: Path, relative: str) -> Optional[Path]:
    """The real path of ``relative`` inside ``root``, or None if it would escape.

    ``relative`` is already percent-decoded and split by the caller; here ``..``
    segments, NUL bytes and symlinks pointing out of the root are all refused.
    """
    if "\0" in relative or "\\" in relative:
        return None
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        return None
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, *parts))
    if candidate != real_root and not candidate.startswith(real_root.rstrip("/") + "/"):
        return None
    return Path(candidate)


def parse_address(value: str, default_port: int) -> Tuple[str, int]:
    """``host:port``, ``:port`` (all interfaces), ``[v6]:port`` or ``host`` -> (host, port)."""
    host, port = value, ""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    if port and not port.isdigit():
        raise ValueError(f"bad port in {value!r}")
    number = int(port) if port else default_port
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return host or "0.0.0.0", number
