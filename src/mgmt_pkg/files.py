"""Output files written whole or not at all (house rule: never half-written)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

__all__ = ["write_atomically"]


def write_atomically(target: Path, data: Union[bytes, str], mode: int = 0o644) -> None:
    """Write through a temp file in the same directory, then rename over ``target``.

    The rename is atomic only within one filesystem, hence the same directory;
    ``str`` data is written as UTF-8.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, mode)  # mkstemp makes it 0600
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
