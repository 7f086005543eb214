"""OpenSSH's ``Include`` in ssh_config, which paramiko's parser does not know.

paramiko takes ``Include conf.d/*.conf`` for an option it ignores, so an alias
defined in an included file (a common layout: one file per project, or what
tools such as Colima, OrbStack or Lima add) was no alias for mgmt: its graph
failed with "cannot connect to web1:22: Name or service not known" where
``ssh web1`` connected. The included files are read in their place, as ssh
does: globs, ``~``, several paths on a line, relative to ~/.ssh (to /etc/ssh in
the system's file), sorted, at most 16 deep; a file that is missing is skipped.
"""

import glob
import os
import re
import shlex
from typing import List, Optional, Tuple

MAX_DEPTH = 16  # as OpenSSH's READCONF_MAX_DEPTH
_KEYWORD = re.compile(r"\s*(\w+)\s*(?:=\s*|\s+)(.*)$")


def has_include(path: str) -> bool:
    """Whether the file holds an Include line (None of this is needed otherwise)."""
    return any(_keyword(line)[0] == "include" for line in _lines(path))


def expanded(path: str, relative_to: str, depth: int = 0) -> str:
    """The file's text with each Include line replaced by what it includes.
    After an Include inside a Host or Match block, that block's line is repeated,
    so that the lines after it stay in the block (an included Host line would
    otherwise take them)."""
    out: List[str] = []
    block: Optional[str] = None  # the Host or Match line the current lines are under
    for line in _lines(path):
        keyword, value = _keyword(line)
        if keyword in ("host", "match"):
            block = line
        if keyword != "include":
            out.append(line)
            continue
        if depth >= MAX_DEPTH:
            continue  # ssh refuses the whole file; mgmt reads on without it
        for included in _included(value, relative_to):
            out.append(expanded(included, relative_to, depth + 1))
        if block is not None:
            out.append(block)
    return "\n".join(out)


def _included(value: str, relative_to: str) -> List[str]:
    try:
        patterns = shlex.split(value)
    except ValueError:  # an unclosed quote: ssh says so; nothing to read here
        return []
    found: List[str] = []
    for pattern in patterns:
        pattern = os.path.expanduser(pattern)
        if not os.path.isabs(pattern):
            pattern = os.path.join(relative_to, pattern)
        found += sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
    return found


def _keyword(line: str) -> Tuple[Optional[str], str]:
    found = _KEYWORD.match(line)
    if found is None or line.lstrip().startswith("#"):
        return None, ""
    return found.group(1).lower(), found.group(2).strip()


def _lines(path: str) -> List[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()
    except OSError:  # missing or unreadable: as ssh, which skips it
        return []
