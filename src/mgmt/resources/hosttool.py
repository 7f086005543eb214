"""Running the host's own tools (dnf, rpm, systemctl, hostnamectl) the way kinds need it.

Output captured as text, in the C locale so that errors carry the tool's own
English words (and parse the same on every host), no pager, no colours,
stdin closed unless given. One place for the Python 3.6 spelling of all that.
"""

import os
import subprocess
from typing import Any, Dict, List, Optional

_ENV = {"LC_ALL": "C", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}


def _captured() -> Dict[str, Any]:
    """How every host tool runs: its output read as text, in the C locale, with
    systemctl's pager and colours off."""
    # Python 3.6 (RHEL 8 hosts): no capture_output= or text= yet.
    return {
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "universal_newlines": True,
        "env": dict(os.environ, **_ENV),
    }


def run_tool(
    argv: List[str], stdin: Optional[str] = None, timeout: Optional[float] = None
) -> "subprocess.CompletedProcess[str]":
    """Run ``argv`` to its end; OSError when it cannot start (not found, no permission)."""
    # Python 3.6 refuses stdin= beside input=, even None: one or the other.
    given = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(argv, timeout=timeout, **given, **_captured())


def start_tool(argv: List[str], **kwargs: Any) -> "subprocess.Popen[str]":
    """Start ``argv`` as :func:`run_tool` runs it (stdin closed), for a caller that may
    end it before its end; OSError when it cannot start."""
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, **_captured(), **kwargs)


def last_lines(text: str, count: int = 6) -> str:
    """The last ``count`` non-empty lines joined by "; ": where tools say why they failed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[-count:]) or "no output"
