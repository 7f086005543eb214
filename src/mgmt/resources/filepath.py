"""How a file resource names its path and mode: mgmt's dirname/basename rule, octal modes,
its checks across fields, where a collect pattern puts another host's file."""

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from mgmt.resources.base import FieldError
from mgmt.resources.fields import shown
from mgmt.resources.filesafe import check_owner_value

__all__ = [
    "check_basename",
    "check_file_fields",
    "check_one_line",
    "clean_path",
    "collected_under",
    "folders_above",
    "parse_mode",
    "real_folder",
    "real_path",
    "resolve_path",
    "wanted_mode",
]


# A mode as what it clears and what it sets: wanted = (current & ~clear) | set.
# An octal mode clears everything; a symbolic one (u=rw,go=r) only its subjects.
ModeSpec = Tuple[int, int]

# What ``who=`` clears for each subject: its rwx bits, and its set-id bit for u
# and g, the sticky bit for o (mgmt's never clears it, so u=rw,g=r,o=r on a sticky
# file would not be 0644); each comes back when the letters after = ask for it.
_CLEARS = {"u": 0o4700, "g": 0o2070, "o": 0o1007}
_SHIFT = {"u": 6, "g": 3, "o": 0}
_BITS = {"r": 4, "w": 2, "x": 1}


def parse_mode(value: Any) -> Optional[ModeSpec]:
    """ "0644" / "644" -> (0o7777, 0o644); "u=rw,go=r" -> what it clears and sets;
    None stays None.

    A YAML file's ``mode: 0644`` or ``mode: 644`` arrives as its text, as mgmt
    reads it (see mgmt.graph.scalars). A number is refused: a JSON graph's 644,
    or YAML's ``!!int 0644`` (420), cannot say which digits were meant.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(
            "mode",
            f"{shown(value)} is a number, not the octal digits of a mode: "
            "give it as text, such as '0644'",
        )
    if not value or value[0] in "0123456789":
        # Octal digits only: int(value, 8) also reads "0o644", " 0644", "0_644" and
        # other scripts' digits ("٠٦٤٤").
        if not value or value.strip("01234567"):
            raise FieldError("mode", f"{shown(value)} is not an octal mode like '0644'")
        mode = int(value, 8)
        if not 0 <= mode <= 0o7777:
            raise FieldError("mode", f"{shown(value)} is out of range")
        return 0o7777, mode
    return _symbolic(value)


def _symbolic(value: str) -> ModeSpec:
    """mgmt's symbolic modes: assignments only (``u=rw,g=r,o=``; ``a=`` or ``=``
    alone for all three), each subject once; the subjects not named keep what
    the file has (a file being made has nothing)."""

    def bad(why: str) -> FieldError:
        return FieldError("mode", f"{shown(value)} is not an octal mode like '0644' {why}")

    clear = set_bits = 0
    pieces = value.split(",")
    seen = ""
    for piece in pieces:
        who, equals, what = piece.partition("=")
        if not equals or "=" in what:
            if "+" in piece or "-" in piece:
                raise bad("nor an assignment: + and - are not taken, as in mgmt (write u=rwx)")
            raise bad("nor a symbolic one like 'u=rw,g=r,o='")
        if who in ("", "a"):
            if len(pieces) > 1:
                raise bad("nor a symbolic one: 'a' (or no subject) must stand alone")
            who = "ugo"
        if who.strip("ugo") or what.strip("rwxst"):
            raise bad("nor a symbolic one like 'u=rw,g=r,o=' (subjects u g o a, modes r w x s t)")
        for subject in who:
            if subject in seen:
                raise bad(f"nor a symbolic one: {subject!r} is given twice")
            seen += subject
            clear |= _CLEARS[subject]
            for letter in what:
                if letter in _BITS:
                    set_bits |= _BITS[letter] << _SHIFT[subject]
                elif letter == "s" and subject in "ug":
                    set_bits |= 0o4000 if subject == "u" else 0o2000
            if "t" in what:
                set_bits |= 0o1000
    return clear, set_bits


def wanted_mode(spec: Optional[ModeSpec], current: Optional[int]) -> Optional[int]:
    """The mode ``spec`` asks of a file whose mode is ``current`` (None: being made)."""
    if spec is None:
        return None
    clear, set_bits = spec
    return ((current or 0) & ~clear & 0o7777) | set_bits


def clean_path(path: str) -> str:
    """``path`` with its leading slashes made one: POSIX lets "//" mean something of
    its own, Linux reads it as "/", and os.path keeps it ("//" is its own dirname,
    normpath leaves "//x"), so a path must never reach a comparison or a walk up
    its folders that way. A trailing "/" (a directory) is kept."""
    return "/" + path.lstrip("/") if path.startswith("//") else path


def folders_above(path: str) -> List[str]:
    """The folders above ``path`` (normalized, absolute), nearest first, "/" left out.
    Ends by construction: it stops where dirname stops shortening the path."""
    folders = []
    parent = os.path.dirname(os.path.normpath(clean_path(path)))
    while parent not in ("", "/"):
        folders.append(parent)
        above = os.path.dirname(parent)
        if len(above) >= len(parent):
            break
        parent = above
    return folders


def resolve_path(name: str, params: Mapping[str, Any]) -> str:
    """mgmt's rule: ``dirname`` replaces the directory of ``path``, ``basename`` its last
    part; leading slashes made one (see clean_path)."""
    path = params.get("path") or name
    dirname, basename = params.get("dirname") or "", params.get("basename") or ""
    if not dirname and not basename:
        return clean_path(path)
    head, tail = os.path.split(path)
    head = head + "/" if head and not head.endswith("/") else head
    if not dirname:
        dirname = head
    if not dirname.endswith("/"):
        dirname += "/"
    return clean_path(dirname + (basename or tail))


def check_basename(basename: Optional[str]) -> None:
    """A basename is one name: no '/', and never '.' or '..' (which would climb out)."""
    if basename and ("/" in basename or basename in (".", "..")):
        raise FieldError("basename", f"{shown(basename)} must be a single name, without '/'")


def real_folder(path: str) -> str:
    """``path`` with its folder's real path: one folder reached by two names (a
    symlink on the way, /lib and /usr/lib) is watched under one, as inotify
    watches inodes; the last part stays as named (a link there is the path's)."""
    folder, name = os.path.split(os.path.normpath(os.path.abspath(path)))
    return os.path.join(real_path(folder), name)


def real_path(path: str) -> str:
    """os.path.realpath that never raises: a link on the way this user may not read
    (EACCES: /proc/1/root, a non-root agent's) leaves the path as named, as realpath
    itself does for a missing part or a loop. What the path is shows when it is
    used: the open or the write fails, naming it."""
    try:
        return os.path.realpath(path)
    except OSError:
        return os.path.normpath(os.path.abspath(path))


def collected_under(name: str, params: Mapping[str, Any], pattern: str) -> Dict[str, Any]:
    """A collected file's params (FileRes.collected_params): the pattern directory
    plus the last part of the exporter's path, nothing else.

    What arrives was written by another host: its basename and path must not
    lead out of the pattern (``../../etc/cron.d/x``) or onto the pattern
    directory itself (``path: /x/``, which state: absent would remove).
    """
    out = dict(params)
    if not pattern:
        return out
    check_basename(params.get("basename"))
    exported = resolve_path(name, params)
    last = os.path.basename(os.path.normpath(exported))
    directory = os.path.normpath(clean_path(pattern))
    path = os.path.join(directory, last)
    if last in ("", ".", "..") or os.path.dirname(os.path.normpath(path)) != directory:
        raise FieldError(
            "path", f"{shown(exported)} does not fit under the pattern {shown(pattern)}"
        )
    out.pop("dirname", None)
    out.pop("basename", None)
    out["path"] = path + "/" if exported.endswith("/") else path
    return out


def check_one_line(field: str, value: Any) -> None:
    """A path or a name is logged as it is: a control character (a newline, ESC)
    would forge a log line or drive the terminal, as in a resource's name."""
    # Imported here: mgmt.graph imports this module (clash), so a top-level import
    # of mgmt.graph.limits would be a cycle for whoever imports the file kind first.
    from mgmt.graph.limits import first_control

    bad = first_control(value) if isinstance(value, str) else None
    if bad is not None:
        message = f"must not hold the control character U+{ord(bad):04X}: {shown(value)}"
        raise FieldError(field, message)


# Linux's PATH_MAX (4096) counts the final NUL: no longer path (or file name
# joined to a folder) can be opened, and a graph's 1 MB one would be repeated by
# every message that names it.
MAX_PATH_BYTES = 4095


def check_path_length(field: str, value: Any) -> None:
    if isinstance(value, str):
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_PATH_BYTES:
            raise FieldError(
                field, f"a path of {size} bytes is longer than Linux opens ({MAX_PATH_BYTES})"
            )


def check_file_fields(params: Mapping[str, Any]) -> None:
    """A file resource's checks across its fields (FileRes.validate): a mode, one of
    content and source, absolute paths, one name for basename, owner and group
    values that can ever be ones, paths Linux can open, no control character in a
    path or a name."""
    parse_mode(params.get("mode"))
    for key in ("path", "dirname", "basename", "source"):
        check_path_length(key, params.get(key))
    for key in ("path", "dirname", "basename", "source", "owner", "group"):
        check_one_line(key, params.get(key))
    if params.get("content") is not None and params.get("source") is not None:
        raise FieldError("source", "give content or source, not both")
    for key in ("path", "source", "dirname"):
        value = params.get(key)
        if value is not None and not value.startswith("/"):
            raise FieldError(key, f"{shown(value)} must be an absolute path")
    check_basename(params.get("basename"))
    for key in ("owner", "group"):
        problem = check_owner_value(key, params.get(key))
        if problem:
            raise FieldError(key, problem)
