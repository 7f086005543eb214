"""Getting the agent and its graph onto a host, safely and only once.

Layout on the host (every directory 0700, made with umask 077):

    ~/.cache/mgmt/bundles/<sha256>.pyz   the agent, cached by content
    ~/.cache/mgmt/shiv/                  where the bundle unpacks (SHIV_ROOT)
    $TMPDIR/mgmt-XXXXXXXXXX/             this run: graph, agent state (mktemp)

The bundle's name is its sha256 and it is written under an unpredictable temp
name then renamed, so two initiators pushing at once never see a half-written
file (salt #28124). A cached copy is hashed again until shiv has unpacked it
(the agent runs from that copy after); a stale or damaged one is replaced.
With --no-caching the bundle and its unpacked files live in the run directory
and go away with it.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import paramiko
from fabric import Connection

from mgmt.errors import RemoteError
from mgmt.log import get_logger
from mgmt.remote.connect import run_command

log = get_logger("remote")

CACHE_DIR = "$HOME/.cache/mgmt"
COPYING_BUNDLE = "Copying bundle ({size} bytes), please be patient..."
BUNDLE_CACHED = "Skipping bundle copy, file was cached."
GRAPH_COPIED = "Copied over new graph definition: {path}"


def sh(script: str, *args: str) -> str:
    """A command line running ``script`` with ``args`` as $1.., everything quoted."""
    return " ".join(
        ["/bin/sh", "-c", shlex.quote(script.strip()), "mgmt-remote"]
        + [shlex.quote(a) for a in args]
    )


class Interrupted(RemoteError):
    """The run is stopping; the copy under way was abandoned (and its temp file removed)."""


@dataclass
class RemotePaths:
    run_dir: str
    bundle: str
    shiv_root: str
    bundle_cached: bool

    def graph(self, local: Path) -> str:
        return f"{self.run_dir}/{local.name}"

    @property
    def state_dir(self) -> str:
        return f"{self.run_dir}/state"


class Uploader:
    """SFTP uploads to a temp name then a rename; abandoned at once when asked to stop."""

    def __init__(self, conn: Connection, host: str, stopping: Callable[[], bool]):
        self.conn = conn
        self.host = host
        self.stopping = stopping
        self._sftp: Optional[paramiko.SFTPClient] = None
        self._lock = threading.Lock()  # the graph watcher and the session share it
        self.pending: Optional[str] = None  # temp name being written, for cleanup

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self.conn.client.open_sftp()
        return self._sftp

    def put(self, source: Path, dest: str, mode: int = 0o600) -> None:
        with self._lock:
            directory, _, name = dest.rpartition("/")
            temp = f"{directory}/.{name}.{secrets.token_hex(8)}"
            self.pending = temp
            try:
                with source.open("rb") as local, self.sftp.open(temp, "wbx") as remote:
                    remote.set_pipelined(True)
                    remote.chmod(mode)
                    while True:
                        if self.stopping():
                            raise Interrupted(self.host, "stopped while copying")
                        chunk = local.read(256 * 1024)
                        if not chunk:
                            break
                        remote.write(chunk)
                self.sftp.posix_rename(temp, dest)
                self.pending = None
            except OSError as err:
                raise RemoteError(self.host, f"copying {source.name} failed: {err}") from None
            finally:
                if self.pending is not None:
                    self._remove_quietly(temp)

    def _remove_quietly(self, path: str) -> None:
        try:
            self.sftp.remove(path)
            self.pending = None
        except (OSError, paramiko.SSHException, EOFError):
            pass  # cleanup() removes it with the rest if the link is still there

    def close(self) -> None:
        if self._sftp is not None:
            with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
                self._sftp.close()
            self._sftp = None


def push_bundle(up: Uploader, local: Path, paths: RemotePaths) -> bool:
    """Copy the bundle unless the host has it; True when it was copied."""
    if paths.bundle_cached:
        log.info("%s: %s", up.host, BUNDLE_CACHED)
        return False
    log.info("%s: %s", up.host, COPYING_BUNDLE.format(size=local.stat().st_size))
    up.put(local, paths.bundle, mode=0o700)
    return True


def push_graph(up: Uploader, local: Path, paths: RemotePaths) -> None:
    up.put(local, paths.graph(local))


_CLEANUP = r"""
rm -rf -- "$1"
[ -n "${2:-}" ] && rm -f -- "$2"
exit 0
"""


def cleanup(conn: Connection, paths: RemotePaths, pending: Optional[str]) -> None:
    """Remove the run dir (with --no-caching the bundle is in it) and any half copy."""
    run_command(conn, sh(_CLEANUP, paths.run_dir, pending or ""), timeout=10)
