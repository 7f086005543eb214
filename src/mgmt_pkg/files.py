"""Output files written whole or not at all (house rule: never half-written).

One implementation for the whole repository: the agent's atomic writer
(:func:`mgmt.resources.atomic.atomic_write`: a new file in the same directory,
fsynced, then linked or renamed over the target). mgmt_pkg may import mgmt,
never the reverse, so the toolkit adapts to the agent's interface here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from mgmt.resources.atomic import atomic_write

__all__ = ["write_atomically"]


def write_atomically(target: Path, data: Union[bytes, str], mode: int = 0o644) -> None:
    """Write ``data`` (``str`` as UTF-8) to ``target`` with ``mode``, atomically."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    atomic_write(str(target), data, mode)
