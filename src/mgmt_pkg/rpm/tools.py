"""Finding and running the system's rpm tools (rpmbuild, createrepo_c).

One place for what every call needs: the package to install when a tool is
missing (Debian and Fedora name them differently), stdin closed so a tool can
never wait for input, output merged so a failure carries its tail, and a clean
stop: the tool runs in a process group of its own, and if we are interrupted
(^C, SIGTERM; see mgmt_pkg.cli) the whole group is stopped before the
exception goes on, so that nothing is left writing into a directory the caller
is about to remove.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from mgmt_pkg.errors import ToolFailed, ToolMissing

__all__ = ["find_tool", "run_tool"]

# How long a stopped tool gets to exit after SIGTERM before it is killed.
STOP_GRACE = 5.0


def find_tool(name: str, debian_package: str, fedora_package: str) -> str:
    """The tool's path; ToolMissing naming the package for this system if absent."""
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(name, debian_package if shutil.which("apt-get") else fedora_package)
    return found


def run_tool(
    name: str,
    command: Sequence[str],
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[Path] = None,
) -> str:
    """Run ``command`` and return its output (stdout and stderr together).

    Raises ToolFailed with the output's tail when it exits non-zero or cannot start.
    """
    held = _HeldSignals()
    try:
        process = subprocess.Popen(
            list(command),
            cwd=None if cwd is None else str(cwd),
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own group: a ^C reaches us, and we stop it
        )
    except OSError as error:
        held.release()
        raise ToolFailed(name, -1, str(error)) from error
    except BaseException:
        held.release()
        raise
    try:
        held.release()  # a signal that came while it started is raised here: it is stopped
        output, _ = process.communicate()
    except BaseException:
        _stop_group(process)
        raise
    if process.returncode != 0:
        raise ToolFailed(name, process.returncode, output)
    return output


class _HeldSignals:
    """SIGINT and SIGTERM held while a tool starts, then handed on.

    A signal whose handler raises (mgmt_pkg.cli's) and that landed inside Popen,
    after the fork, unwound without the process to stop: the tool ran on, into
    a build folder being removed. Held, it is handed to that handler once the
    process is known. Only the main thread sets handlers: elsewhere, nothing is held.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._came: List[int] = []
        self._previous: Dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            with self._blocked():
                for signum in self.SIGNALS:
                    if signal.getsignal(signum) is not None:  # None: not Python's to put back
                        self._previous[signum] = signal.signal(signum, self._hold)

    def _hold(self, signum: int, _frame: object) -> None:
        self._came.append(signum)

    @contextlib.contextmanager
    def _blocked(self) -> Iterator[None]:
        """The handlers change together: a signal between two changes, whose handler
        raised, left the other signal's handler half-way (held for ever after)."""
        before = signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)

    def release(self) -> None:
        with self._blocked():
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous = {}
        if not self._came:
            return
        signum, handler = self._came[0], signal.getsignal(self._came[0])
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            os.kill(os.getpid(), signum)  # the default action, as if it came now


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the tool and its children (rpmbuild's scripts), then SIGKILL
    to whatever is left of the group: a script that ignores SIGTERM is not spared."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_GRACE)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
