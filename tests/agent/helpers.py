"""Helpers for the agent tests: an in-memory World, a running `mgmt run`, polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional

from mgmt.log import get_logger
from mgmt.resources.base import Init
from mgmt.world.api import ExportedResource
from support.polling import wait_for

SRC = Path(__file__).resolve().parents[2] / "src"


def _pythonpath() -> str:
    """This checkout's src first, then whatever the caller had (e.g. another Python's deps)."""
    return os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)


def read(path: Path) -> Optional[str]:
    try:
        return path.read_text()
    except (FileNotFoundError, IsADirectoryError):
        return None


class MemWorld:
    """The World protocol in memory, shared by several 'hosts' in one process.

    For engine unit tests only; the integration tests use real etcd.
    """

    def __init__(self, hostname: str, store: Optional[dict] = None):
        self.hostname = hostname
        self.store = (
            store if store is not None else {"exported": {}, "converged": {}, "watchers": []}
        )
        self.converged_log: List[bool] = []
        self.failures_log: List[list] = []  # what each converged report said had failed

    def export(self, resources) -> None:
        mine = {(k[0], k[1]): dict(v) for k, v in resources.items()}
        before = self.store["exported"].get(self.hostname)
        self.store["exported"][self.hostname] = mine
        if before != mine:
            for callback in list(self.store["watchers"]):
                threading.Thread(target=callback, daemon=True).start()

    def collect(self, kinds) -> List[ExportedResource]:
        kinds = set(kinds)
        return [
            ExportedResource(host, kind, name, params)
            for host, items in sorted(self.store["exported"].items())
            for (kind, name), params in sorted(items.items())
            if kind in kinds
        ]

    def watch_exported(self, callback):
        self.store["watchers"].append(callback)
        return lambda: self.store["watchers"].remove(callback)

    def set_converged(self, converged: bool, failures=()) -> None:
        self.converged_log.append(converged)
        self.failures_log.append(list(failures))
        self.store["converged"][self.hostname] = converged

    def converged_hosts(self) -> Dict[str, bool]:
        return dict(self.store["converged"])

    def watch_converged(self, callback):
        return lambda: None

    def close(self) -> None:
        pass


# Runs "$@" in a mount namespace of its own where / is read-only but for "$0".
CONFINE = 'mount --bind "$0" "$0" && mount -o bind,remount,ro / && exec "$@"'


class AgentProcess:
    """`mgmt run ...` in a child process, its log in a file we can poll.

    ``confined``: a folder, the only one the agent may write (a mount namespace
    with / read-only, needs root): a graph that writes or removes files must not
    reach this machine's own when a path in it is wrong. The agent keeps its pid
    (unshare and sh exec it), so signals sent to ``proc`` reach it."""

    def __init__(
        self,
        args: List[str],
        log_path: Path,
        stdin: Optional[str] = None,
        confined: Optional[Path] = None,
        wrap: Optional[List[str]] = None,
    ):
        self.log_path = log_path
        env = dict(os.environ, PYTHONPATH=_pythonpath(), PYTHONUNBUFFERED="1")
        argv = [sys.executable, "-m", "mgmt", "run", *args]
        if confined is not None:
            from support import require_root, require_tools

            require_root()
            require_tools("unshare")
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", CONFINE,
                    str(confined), *argv]  # fmt: skip
        if wrap is not None:  # a confinement of the caller's own, which execs argv
            argv = [*wrap, *argv]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            env=env,
        )
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin.encode())
            self.proc.stdin.close()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 10.0) -> bool:
        return wait_for(lambda: text in self.log, timeout)

    def wait(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def run_mgmt(args: List[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=_pythonpath())
    return subprocess.run(
        [sys.executable, "-m", "mgmt", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def make_init(watcher, tmp_path, world=None, event=None):
    """An Init for a resource used on its own (outside an engine)."""
    return Init(
        hostname="test",
        log=get_logger("test"),
        state_dir=tmp_path / "state",
        watcher=watcher,
        event=event or (lambda: None),
        world=world,
        stopping=threading.Event(),
    )
