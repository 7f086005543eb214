"""What the file kind does before it touches a path: never through a symlink, never a system tree.

The agent runs as root, so a symlink at a managed path (planted before the run
or swapped in during it) must never redirect a check or a change to another
file. Every check and change therefore works on a descriptor opened with
O_NOFOLLOW: what was checked is what gets chmod-ed, chown-ed or read, and a
link found there is reported as a link, never followed. Names (path
components above the managed path) are the graph author's responsibility,
as with ``rm`` and ``install``.

The second guard, against removing a system tree, is mgmt.resources.fileremove's.
"""

import errno
import os
import pwd
import stat
from typing import Any, Dict, Optional, Tuple, Union

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Opened:
    """What lives at a path, looked at without following a link there.

    ``st`` is None when nothing is there; ``fd`` is an open descriptor on it
    (read-only, O_NOFOLLOW) for a regular file or a directory, None for a link
    or a special file. Use as a context manager so the descriptor is closed.
    """

    def __init__(self, path: str):
        self.path = path
        self.fd: Optional[int] = None
        self.st: Optional[os.stat_result] = None
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return
        except OSError as err:
            # ELOOP: a symlink is there (O_NOFOLLOW refuses it); ENXIO: a socket
            # or a FIFO without a writer. Report what is there, open nothing.
            if err.errno not in (errno.ELOOP, errno.ENXIO, errno.EWOULDBLOCK):
                raise
            self.st = lstat_or_none(path)
            return
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
            self.fd, self.st = fd, st
        else:  # a device or a FIFO: never read from it
            os.close(fd)
            self.st = st

    @property
    def is_link(self) -> bool:
        return self.st is not None and stat.S_ISLNK(self.st.st_mode)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "Opened":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def lstat_or_none(path: str) -> Optional[os.stat_result]:
    """None when nothing is at ``path``, also when a parent is not a directory."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


# The file kind holds what it copies in memory (to compare it, diff it, write it
# whole); a bigger file is a package's job, not a configuration file's.
MAX_SOURCE = 256 * 1024 * 1024


def read_source(path: str, follow: bool = True) -> bytes:
    """The bytes of a file to copy (``source``, followed if a link: the graph names
    it; a file of a source tree is not, see mgmt.resources.filetree); ValueError
    saying why not when it is no regular file (a device or a FIFO would be read
    without end, or wait for a writer) or is over MAX_SOURCE."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    fd = os.open(path, flags if follow else flags | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
            raise ValueError(f"source {path} is not a regular file ({kind})")
        size = info.st_size
        if size <= MAX_SOURCE:
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read(MAX_SOURCE + 1)
            size = len(data)  # it may have grown since
    finally:
        os.close(fd)
    if size > MAX_SOURCE:
        raise ValueError(
            f"source {path} is {size} bytes, over the file kind's limit of {MAX_SOURCE}"
            " (copy it with a package)"
        )
    return data


def is_device(path: str) -> bool:
    """Whether ``path`` leads to a character or block device (False if it is not there)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def holds(fd: int, data: bytes, block: int = 1 << 20) -> bool:
    """Whether the open regular file ``fd`` holds exactly ``data`` (read from its start)."""
    view = memoryview(data)
    offset = 0
    while True:
        # No more than is left to compare, and a byte to see the file end: a block's
        # buffer for a short file was a mapping made and dropped at each check.
        chunk = os.pread(fd, min(block, len(data) - offset + 1), offset)
        if not chunk:
            return offset == len(data)
        if view[offset : offset + len(chunk)] != chunk:
            return False
        offset += len(chunk)


# -- ownership ------------------------------------------------------------------


def parse_owner(field: str, value: Union[str, int, None]) -> Optional[int]:
    """A user or group given as a name or an id -> the id (None: not managed).

    Names are looked up on the host that applies the graph, each time, so a
    user created earlier in the same run (by a pkg's scriptlet, say) is found.
    Raises KeyError with a message when the name is unknown there.
    """
    if value is None:
        return None
    if isinstance(value, int):
        return value
    if is_id(value):
        return int(value)
    import grp  # only graphs that name owners pay for it

    try:
        if field == "owner":
            return pwd.getpwnam(value).pw_uid
        return grp.getgrnam(value).gr_gid
    except KeyError:
        kind = "user" if field == "owner" else "group"
        raise KeyError(f"{field}: no {kind} named {value!r} on this host") from None


def shown_owner(field: str, given: Union[str, int], actual: int) -> Tuple[Any, Any]:
    """(wanted, actual) of an owner or group for --noop and --json, as the graph
    gave it: a name and the actual one's name (its id if it has none), or two ids."""
    if isinstance(given, int) or is_id(given):
        return int(given), actual
    import grp  # as in parse_owner

    try:
        name = pwd.getpwuid(actual).pw_name if field == "owner" else grp.getgrgid(actual).gr_name
    except KeyError:
        return given, actual
    return given, name


def is_id(value: str) -> bool:
    """Whether an owner/group given as text is a number: ASCII digits only (str.isdigit
    takes other scripts' digits too, and int() reads "٣" as 3)."""
    return bool(value) and not value.strip("0123456789")


# useradd allows 32 characters; generous, but no megabyte name reaches a log line.
MAX_OWNER_NAME = 256


def check_owner_value(field: str, value: Union[str, int, None]) -> Optional[str]:
    """Why ``value`` can never be an owner/group (checked at graph load), or None."""
    if value is None:
        return None
    # An id is below 2**32 - 1, which chown(2) takes as "leave it as it is".
    if isinstance(value, int) or is_id(value):
        return None if 0 <= int(value) < 2**32 - 1 else f"{value} is not a valid id"
    # A plain `owner: -5` in YAML reaches here as the text written (mgmt.graph.scalars):
    # a signed number is an id out of range, not a name to look up at every run.
    if value[:1] in ("-", "+") and is_id(value[1:]):
        return f"{value} is not a valid id"
    if not value or "\0" in value or ":" in value or value != value.strip():
        return f"{value!r} is not a valid {'user' if field == 'owner' else 'group'} name"
    if len(value) > MAX_OWNER_NAME:
        return f"a name of {len(value)} characters is over the limit of {MAX_OWNER_NAME}"
    return None


# -- extended attributes --------------------------------------------------------

# Namespaces worth keeping across a content change: SELinux labels
# (security.*), ACLs (system.posix_acl_*), and user/trusted metadata.
_KEPT_PREFIXES = ("security.", "system.posix_acl_", "user.", "trusted.")


def read_xattrs(fd: int) -> Dict[str, bytes]:
    """The kept extended attributes of an open file (empty where unsupported)."""
    if not hasattr(os, "listxattr"):
        return {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return {}
    out = {}
    for name in names:
        if not name.startswith(_KEPT_PREFIXES) or name == "security.capability":
            # A file capability must never outlive the content it was granted to.
            continue
        try:
            out[name] = os.getxattr(fd, name)
        except OSError:
            continue
    return out


def write_xattrs(fd: int, attrs: Dict[str, bytes]) -> Tuple[str, ...]:
    """Set ``attrs`` on an open file; the names the file system refused."""
    refused = []
    for name, value in attrs.items():
        try:
            os.setxattr(fd, name, value)
        except OSError:
            refused.append(name)
    return tuple(refused)
