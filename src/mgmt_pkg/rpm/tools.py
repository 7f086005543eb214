"""Finding and running the system's rpm tools (rpmbuild, createrepo_c).

One place for what every call needs: the package to install when a tool is
missing (Debian and Fedora name them differently), stdin closed so a tool can
never wait for input, and output merged so a failure carries its tail.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Mapping, Optional, Sequence

from mgmt_pkg.errors import ToolFailed, ToolMissing

__all__ = ["find_tool", "run_tool"]


def find_tool(name: str, debian_package: str, fedora_package: str) -> str:
    """The tool's path; ToolMissing naming the package for this system if absent."""
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(name, debian_package if shutil.which("apt-get") else fedora_package)
    return found


def run_tool(name: str, command: Sequence[str], env: Optional[Mapping[str, str]] = None) -> str:
    """Run ``command`` and return its output (stdout and stderr together).

    Raises ToolFailed with the output's tail when it exits non-zero or cannot start.
    """
    try:
        result = subprocess.run(
            list(command),
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as error:
        raise ToolFailed(name, -1, str(error)) from error
    if result.returncode != 0:
        raise ToolFailed(name, result.returncode, result.stdout)
    return result.stdout
