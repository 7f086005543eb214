"""What the HTTP and TFTP servers hand out: files under a root, plus extra entries.

A served tree is a directory (read-only, nothing outside it reachable) plus an
overlay of extra entries keyed by URL path: a file elsewhere on disk, inline
bytes (a rendered kickstart from a graph), or a choice by MAC address for the
per-host kickstarts that anaconda asks for with ``inst.ks.sendmac``.
"""

import errno
import hashlib
import io
import mimetypes
import os
import re
import stat
import time
from pathlib import Path
from typing import (
    BinaryIO,
    Callable,
    Dict,
    Iterable,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from mgmt.net.http_range import make_etag

__all__ = [
    "Content",
    "MacSelector",
    "NotServable",
    "Overlay",
    "OverlayEntry",
    "Source",
    "content_type",
    "http_path_problem",
    "normalize_mac",
    "open_source",
    "parse_address",
    "resolve_under",
    "url_key",
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
    def _described(cls, info: os.stat_result, path: Path) -> "Content":
        etag = make_etag(info.st_size, info.st_mtime_ns, info.st_ino)
        return cls(info.st_size, info.st_mtime, etag, path)

    @classmethod
    def from_bytes(cls, data: bytes, mtime: Optional[float] = None) -> "Content":
        # The digest makes the ETag strong: the same bytes always give the same tag.
        digest = hashlib.sha256(data).hexdigest()[:32]
        return cls(len(data), time.time() if mtime is None else mtime, f'"{digest}"', data=data)


def normalize_mac(value: str) -> Optional[str]:
    """``AA-BB-CC-DD-EE-FF`` / ``aabbccddeeff`` -> ``aa:bb:cc:dd:ee:ff``; None if not a MAC."""
    match = _MAC.fullmatch(value.strip().lower())
    return ":".join(match.groups()) if match else None


_TEXT_SUFFIXES = {".ks": "text/plain", ".cfg": "text/plain", ".repo": "text/plain"}


def content_type(name: str) -> str:
    """The Content-Type of a file of this name: kickstarts, configs and repo files as text."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _TEXT_SUFFIXES:
        return _TEXT_SUFFIXES[suffix]
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    # A .gz or .xz keeps its bytes: announce it as such, never as Content-Encoding.
    return "application/octet-stream" if guessed is None or encoding else guessed


# A body: fixed bytes (Content) or a file read afresh at every request (Path).
Source = Union[Content, Path]


class NotServable(Exception):
    """Why a body cannot be served: its ``kind`` (MISSING, FORBIDDEN or FAILED) and the
    reason; ``str()`` also names the file on disk, for the server's log only."""

    MISSING, FORBIDDEN, FAILED = "missing", "forbidden", "failed"

    def __init__(self, kind: str, reason: str, path: Optional[Path] = None):
        self.kind = kind
        self.reason = reason
        self.path = path
        super().__init__(f"cannot read {path}: {reason}" if path is not None else reason)

    @classmethod
    def from_error(cls, error: OSError, path: Optional[Path] = None) -> "NotServable":
        if error.errno in _FORBIDDEN:
            kind = cls.FORBIDDEN
        elif error.errno in _MISSING:
            kind = cls.MISSING
        else:
            kind = cls.FAILED
        return cls(kind, error.strerror or str(error), path)


# A name too long or a symlink loop cannot name a file that exists: missing, like ENOENT.
_MISSING = frozenset((errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP))
_FORBIDDEN = frozenset((errno.EACCES, errno.EPERM))


def open_source(source: Optional[Source], in_tree: bool = False) -> Tuple[Content, BinaryIO]:
    """A body opened now, with what was opened; NotServable if there is none to read.

    Servers call this before they answer anything, so that a file they cannot
    read is refused with a status of its own (403, TFTP access violation)
    instead of a success status followed by nothing.

    ``in_tree``: ``source`` is a path in a served tree, as :func:`resolve_under`
    checked it (a real path): it is opened without following any symlink, so
    that one swapped in since the check (by whoever may write in the tree) is not
    followed out of it. A file given by name (``serve --file``, a file kind's
    ``source``) is opened as it is, through its symlinks.
    """
    if source is None:
        raise NotServable(NotServable.MISSING, "file not found")
    if isinstance(source, Content):
        if source.data is not None:
            return source, io.BytesIO(source.data)
        assert source.path is not None
        source = source.path
    return _open_file(source, _open_no_symlinks if in_tree else os.open)


def _open_no_symlinks(path: Path, flags: int) -> int:
    """``os.open`` of a path with no symlinks in it, one folder at a time from /,
    none followed: ELOOP (so "missing") where a symlink took a folder's or the
    file's place since the path was resolved.

    The folders are opened with O_PATH, which needs only the right to pass
    through them (x), as a plain open() of the file does: opened for reading,
    a folder its user may pass but not list (mode 0711, a home) made every file
    below it a 403.
    """
    parts = [part for part in str(path).split("/") if part]
    through = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open("/", through)
    try:
        for part in parts[:-1]:
            folder = os.open(part, through, dir_fd=fd)
            os.close(fd)
            fd = folder
        return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def _open_file(path: Path, opener: Callable[[Path, int], int]) -> Tuple[Content, BinaryIO]:
    try:
        # stat first: a FIFO or device in the tree is never opened (opening one can
        # block or have effects); O_NONBLOCK in case one replaced the file since.
        # It changes nothing for a regular file.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise NotServable(NotServable.MISSING, "not a regular file", path)
        fd = opener(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise NotServable.from_error(error, path) from None
    try:
        # Described by the open file, not the name: size and ETag are those of what is sent.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotServable(NotServable.MISSING, "not a regular file", path)
        if info.st_size:
            # One byte read now: a file that cannot be read at all (EIO of a failing
            # disk, a sysfs attribute that answers EINVAL) is refused with a status of
            # its own, not a 200 cut short and a traceback in the log.
            os.pread(fd, 1, 0)
        return Content._described(info, path), os.fdopen(fd, "rb")
    except OSError as error:
        os.close(fd)
        raise NotServable.from_error(error, path) from None
    except BaseException:
        os.close(fd)
        raise


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


def http_path_problem(path: str) -> Optional[str]:
    """Why an HTTP overlay file given at ``path`` could never be asked for, or None.

    The server looks a request up by its path alone, the query cut off: a file
    given at ``/ks.cfg?host=node7`` would be answered 404 to every request.
    """
    if "?" in path:
        return (
            "holds '?': a request is looked up by its path alone, without the query "
            "(to give a host its own file, give its MAC)"
        )
    return None


def url_key(path: str) -> str:
    """The overlay key for a URL path or file name: empty and ``.`` segments dropped,
    as :func:`resolve_under` drops them in the tree, so ``/ks/./node.ks`` and
    ``ks//node.ks`` find ``/ks/node.ks`` in the overlay as ``/./f20`` finds f20 in
    the tree. ``..`` is kept: it names no overlay entry, and the tree refuses it."""
    return "/" + "/".join(part for part in path.split("/") if part not in ("", "."))


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
        host, bracket, rest = value[1:].partition("]")
        # "[::1:80" (no "]") or "[::1]x": not an address, though the split would make one.
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r}: an IPv6 address is written [ADDRESS] or [ADDRESS]:PORT")
        port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    if port.strip("0123456789"):  # ASCII digits: isdigit() and int() take "٨٠" too
        raise ValueError(f"bad port in {value!r}")
    number = int(port) if port else default_port
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return host or "0.0.0.0", number
