"""The detached agents' logs, followed live on the initiator (``host | line``).

A detached agent writes its output to agent.log in the cluster's directory on
its host, not to an SSH session; while an initiator is there (``--detach``
until the hand-over, ``--attach``) it follows those logs, one command per host
on the connection it already has, so the output looks as an attached run's.
The command ends with the connection: nothing of it stays on the host.
"""

import threading
import time
from typing import Callable, Dict, List, Optional, TextIO, Tuple

from mgmt.log import OUTPUT_LOCK
from mgmt.remote import protocol
from mgmt.remote.orchestration.results import printable
from mgmt.remote.transport.runner import Process, Runner

# From byte $2 (1: the start) until the initiator goes (its stdin closes), then end.
FOLLOW = 'tail -c +"$2" -F "$1" 2>/dev/null & t=$!; cat >/dev/null; kill "$t"'


def shown_line(line: str) -> str:
    """A line of a detached agent's log as shown: the launcher's protocol lines (its
    Python, which an attached run's initiator reads, or the agent that runs
    already) in words."""
    python = protocol.parse_python_line(line)
    if python is not None:
        return f"running on Python {python.version} ({python.path})"
    busy = protocol.parse_busy_line(line)  # the supervisor tries again later
    return line if busy is None else f"the agent did not start: {busy}"


class Printer:
    """Whole lines, prefixed with their host, from any thread. A line is shown as
    the host wrote it but for its control characters, escaped: an ESC sequence in
    what a host prints (a `python:` wrapper, a login script) must not drive the
    initiator's terminal, nor a carriage return overwrite the line."""

    def __init__(self, out: TextIO):
        self.out = out
        self.lock = OUTPUT_LOCK  # the log's: its lines and these never interleave
        self.closed = False

    def __call__(self, host: str, line: str) -> None:
        shown = line if line.isprintable() else printable(line)
        with self.lock:
            if self.closed:
                return
            try:
                self.out.write(f"{host} | {shown}\n")
                self.out.flush()
            except (OSError, ValueError):
                # Read no more (`| head` ended, a pager quit): the run goes on, its
                # lines dropped. Raised into a session's reader, it ended that
                # reader: the host's output was no longer read, and its agent hung
                # on a full channel.
                self.closed = True


class LogFollower:
    """Follows ``logs`` (host -> (path on that host, from which byte offset)) over
    ``runners`` until closed. An offset known before anything new can be written
    (0 for a log just started; its size, for an attach) loses no line to the
    time the command takes to start. ``ended(host)`` is called when a host's
    follow ends (its connection dropped, or :meth:`close`)."""

    def __init__(
        self,
        runners: Dict[str, Runner],
        logs: Dict[str, Tuple[str, int]],
        out: TextIO,
        ended: Optional[Callable[[str], None]] = None,
    ):
        self._printer = Printer(out)
        self._ended = ended
        self._processes: List[Process] = []
        self._readers: List[threading.Thread] = []
        self._shown = {host: offset for host, (_path, offset) in logs.items()}  # bytes, by host
        self._progress = threading.Condition()
        for host, (path, offset) in logs.items():
            process = runners[host].start(protocol.sh(FOLLOW, path, str(offset + 1)))
            self._processes.append(process)
            reader = threading.Thread(
                target=self._follow, args=(host, process), name="follow-" + host, daemon=True
            )
            reader.start()
            self._readers.append(reader)

    def _follow(self, host: str, process: Process) -> None:
        try:
            for raw in process.stdout:
                self._printer(host, shown_line(raw.decode(errors="replace").rstrip("\r\n")))
                with self._progress:
                    self._shown[host] += len(raw)
                    self._progress.notify_all()
        except (OSError, EOFError, ValueError):
            pass  # the connection went: whoever runs the initiator's loop finds out
        if self._ended is not None:
            self._ended(host)

    def close(self, sizes: Optional[Dict[str, int]] = None, wait: float = 5.0) -> None:
        """Stop following; with ``sizes`` (host -> bytes of its log), once those have
        been shown (or after ``wait`` seconds), so no line written before is lost."""
        deadline = time.monotonic() + wait
        with self._progress:
            while sizes and any(self._shown.get(h, 0) < n for h, n in sizes.items()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._progress.wait(left)
        for process in self._processes:
            try:
                process.close_stdin()
                process.wait(5)
            except (OSError, EOFError):
                pass
            process.close()
        for reader in self._readers:
            reader.join(2)
