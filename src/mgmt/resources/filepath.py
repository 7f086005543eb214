"""How a file resource names its path and mode: mgmt's dirname/basename rule, octal modes."""

import os
from typing import Any, Mapping, Optional

from mgmt.resources.base import FieldError

__all__ = ["check_basename", "parse_mode", "resolve_path"]


def parse_mode(value: Any) -> Optional[int]:
    """ "0644" / "644" / 420 -> 0o644; None stays None."""
    if value is None:
        return None
    if isinstance(value, int):
        mode = value
    else:
        try:
            mode = int(value, 8)
        except ValueError:
            raise FieldError("mode", f"{value!r} is not an octal mode like '0644'") from None
    if not 0 <= mode <= 0o7777:
        raise FieldError("mode", f"{value!r} is out of range")
    return mode


def resolve_path(name: str, params: Mapping[str, Any]) -> str:
    """mgmt's rule: ``dirname`` replaces the directory of ``path``, ``basename`` its last part."""
    path = params.get("path") or name
    dirname, basename = params.get("dirname") or "", params.get("basename") or ""
    if not dirname and not basename:
        return path
    head, tail = os.path.split(path)
    head = head + "/" if head and not head.endswith("/") else head
    if not dirname:
        dirname = head
    if not dirname.endswith("/"):
        dirname += "/"
    return dirname + (basename or tail)


def check_basename(basename: Optional[str]) -> None:
    """A basename is one name: no '/', and never '.' or '..' (which would climb out)."""
    if basename and ("/" in basename or basename in (".", "..")):
        raise FieldError("basename", f"{basename!r} must be a single name, without '/'")
