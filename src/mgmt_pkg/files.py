"""Output files written whole or not at all (house rule: never half-written).

One implementation for the whole repository: the agent's atomic writer
(:func:`mgmt.resources.atomic.atomic_write`: a new file in the same directory,
fsynced, then linked or renamed over the target). mgmt_pkg may import mgmt,
never the reverse, so the toolkit adapts to the agent's interface here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional, Union

from mgmt.resources.atomic import atomic_write

__all__ = ["write_atomically"]


def write_atomically(target: Path, data: Union[bytes, str], mode: Optional[int] = None) -> None:
    """Write ``data`` (``str`` as UTF-8) to ``target`` atomically.

    Without ``mode`` the file gets the permissions a shell's ``>`` would leave:
    those of the regular file it replaces, else 0666 less the umask. A fixed
    0644 made a kickstart the user had made 0600 (it holds the root password's
    hash) readable by everyone at the next render, and ignored a umask of 077.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if mode is None:
        mode = _replaced_mode(target)
    atomic_write(str(target), data, mode)


def _replaced_mode(target: Path) -> int:
    try:
        info = os.stat(target, follow_symlinks=False)
    except OSError:
        info = None
    if info is not None and stat.S_ISREG(info.st_mode):
        return stat.S_IMODE(info.st_mode) & 0o777  # never set-id bits on a new file
    umask = os.umask(0o022)  # read it the only portable way: set, then put back
    os.umask(umask)
    return 0o666 & ~umask
