"""A throw-away ssh-agent holding a pool's key: what a via: run forwards to its
secondaries (the pool's own env() has no agent, so nothing else uses one)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from support.polling import wait_until


def _accepts(sock: Path) -> bool:
    """Whether the agent listens: its socket file appears at bind(), before
    listen(), and an ssh-add in between finds no agent (exit 2)."""
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(sock))
    return True


@contextlib.contextmanager
def ssh_agent(identity: Optional[Path]) -> Iterator[str]:
    """An ``ssh-agent -D`` with ``identity`` added (None: holding no key); yields
    its socket (SSH_AUTH_SOCK)."""
    folder = Path(tempfile.mkdtemp(prefix="mgmt-agent-", dir="/run"))
    sock = folder / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _accepts(sock), what="ssh-agent's socket")
        if identity is None:
            yield str(sock)
            return
        subprocess.run(
            ["ssh-add", "-q", str(identity)],
            env={"SSH_AUTH_SOCK": str(sock), "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
        )
        yield str(sock)
    finally:
        agent.terminate()
        agent.wait(5)
        with contextlib.suppress(OSError):
            sock.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
