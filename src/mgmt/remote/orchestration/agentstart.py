"""The moment the agent starts on a host: did START get that far, did an
interpreter run the launcher, and if it ended at once, why?

The launcher's first line names its interpreter (PYTHON_MARK, see
mgmt.remote.protocol). A ``python:`` (or ``--python``) naming something that
is not Python never says it: /bin/false ends at once, perl prints the whole
launcher back in its error. Without that line no agent ran, so the host fails
with one line saying so, and only a few lines of what the program printed are
shown (the whole of it is the launcher's source, not news to anyone).

Imported by secondaries too (mgmt.remote.hierarchy): Python 3.6, standard library.
"""

import collections
import threading
from typing import BinaryIO, Callable, Deque, Iterator, List, Optional, Tuple

from mgmt.errors import RemoteError
from mgmt.remote import protocol
from mgmt.remote.transport.runner import Process, refused_by_login_shell

NO_PYTHON = "no Python 3.6+ found; install python3 (dnf install python3) or give --python"
NO_PYTHON_AT = "no Python at {path} (python: / --python); install it or give another"
OLD_PYTHON = "{python} is older than 3.6; install python3 (dnf install python3) or give --python"
PRUNED = "a newer mgmt pruned this bundle from the host's cache as it started; run again"
NO_GRAPH = "the host could not write the graph in its run dir (no room?); see its output"
# The launcher says which Python it is first thing, long before anything slow.
START_TIMEOUT = 60.0
KILL_GRACE = 5.0  # then the output is dropped: a child may hold it open
SILENT_START = "{python} said nothing for {seconds:.0f} s: not the agent's Python? (stopped)"
NOT_PYTHON = "{python} did not start the agent: not a Python 3.6+ interpreter? (status {status})"
NOT_STARTED = "the agent did not start (status {status})"
SHOWN_LINES = 3  # of a failed start's output: enough to see what ran, not the launcher
SHOWN_WIDTH = 200


# What a host's stderr may hold before anything reads it (the lines before the
# launcher runs): more is dropped, and a line says how much.
HELD_STDERR = 4 * 1024 * 1024


class DrainedStream:
    """A stream (a host's stderr) read in a thread of its own from the start, its
    lines held until they are read (iterated, or :meth:`read`). Until the launcher
    says which Python it is, the initiator reads only stdout; unread, what a
    ``python:`` wrapper or a login script wrote to stderr filled the SSH channel's
    window, which stdout shares: past 2 MiB the start stalled, and the host failed
    with "said nothing for 60 s: not the agent's Python?". Once read, a reader
    slower than the host holds the host back again, as the channel did: nothing
    is dropped then."""

    def __init__(self, stream: BinaryIO, held_max: int = HELD_STDERR):
        self._lines: Deque[Optional[bytes]] = collections.deque()
        self._held = 0  # bytes not yet read
        self._max = held_max
        self._reading = False
        self._changed = threading.Condition()
        thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        thread.name = "stderr"
        thread.start()

    def _put(self, raw: Optional[bytes]) -> None:
        with self._changed:
            self._lines.append(raw)
            self._held += len(raw or b"")
            self._changed.notify_all()

    def _pump(self, stream: BinaryIO) -> None:
        dropped = 0
        try:
            for raw in stream:
                with self._changed:
                    while self._reading and self._held + len(raw) > self._max and self._held:
                        self._changed.wait()
                    if not self._reading and self._held + len(raw) > self._max:
                        dropped += len(raw)
                        continue
                if dropped:
                    self._put(b"... (%d bytes of stderr dropped)\n" % dropped)
                    dropped = 0
                self._put(raw)
        except Exception:  # the connection went: whoever waits on the process says so
            pass
        finally:
            if dropped:
                self._put(b"... (%d bytes of stderr dropped)\n" % dropped)
            self._put(None)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            with self._changed:
                self._reading = True
                while not self._lines:
                    self._changed.wait()
                raw = self._lines[0]
                if raw is None:  # the end, left for any later reader
                    return
                self._lines.popleft()
                self._held -= len(raw)
                self._changed.notify_all()
            yield raw

    def read(self) -> bytes:
        """The rest, until the stream ends."""
        return b"".join(self)


def _text(raw: bytes) -> str:
    return raw.decode(errors="replace").rstrip("\r\n")


def read_python_within(
    stdout: BinaryIO, seconds: float, kill: Callable[[], None], drop: Callable[[], None]
) -> Tuple[Optional[protocol.Python], List[str], bool]:
    """:func:`read_python`, and whether the line had not come within ``seconds`` (a
    ``python:`` that hangs, e.g. a wrapper waiting on something: the run would wait
    for ever). Then ``kill()`` ends what runs, and ``drop()``, KILL_GRACE later,
    the output it may leave open (a child of a wrapper that did not exec), so that
    the read ends. Once the line came, neither is called."""
    overdue = threading.Event()
    done = threading.Event()
    decided = threading.Lock()

    def expire() -> None:
        with decided:  # not after the line came
            if done.is_set():
                return
            overdue.set()
        kill()
        if not done.wait(KILL_GRACE):
            drop()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        python, held = read_python(stdout)
    finally:
        with decided:
            done.set()
        timer.cancel()
    return python, held, overdue.is_set()


def read_python(stdout: BinaryIO) -> Tuple[Optional[protocol.Python], List[str]]:
    """The launcher's first line, and the lines before it (START's pid line, and
    whatever else came), held back: shown once the line came, a few of them if not."""
    held: List[str] = []
    while True:
        raw = stdout.readline()
        if not raw:
            return None, held
        line = _text(raw)
        python = protocol.parse_python_line(line)
        if python is not None:
            return python, held
        held.append(line)


def not_started(
    host: str,
    given: Optional[str],
    held: List[str],
    stderr: BinaryIO,
    wait: Callable[[], int],
    show: Callable[[str], None],
) -> RemoteError:
    """Why no agent runs (the launcher never said which Python it is), after showing
    the first few lines of output; ``wait()`` is the exit status (or raises "lost").
    Another agent running on the host says so in a line of its own: that alone."""
    for line in held:
        busy = protocol.parse_busy_line(line)
        if busy is not None:
            wait()
            return RemoteError(host, busy)
    output = [line for line in held if protocol.parse_pid_line(line) is None]
    output += [_text(raw) for raw in stderr]  # START exited (stdout ended): so will this
    started = any(protocol.parse_pid_line(line) is not None for line in held)
    for line in output[:SHOWN_LINES]:
        show(line if len(line) <= SHOWN_WIDTH else line[:SHOWN_WIDTH] + "...")
    if len(output) > SHOWN_LINES:
        show(f"... ({len(output) - SHOWN_LINES} more lines)")
    status = wait()
    if not started:  # START ended before it started anything (its own exit status)
        return RemoteError(host, NOT_STARTED.format(status=status))
    python = given or "the Python found on the host"
    return RemoteError(host, NOT_PYTHON.format(python=python, status=status))


def why_it_ended(status: int, python: Optional[protocol.Python]) -> Optional[str]:
    """Why the agent did not run, from an exit status of the launcher's or the
    agent's own before it started (None: another status)."""
    if status == protocol.EXIT_DETACHED_HERE:
        return protocol.DETACHED_HERE
    if status == protocol.EXIT_NEED_BUNDLE:
        return PRUNED
    if status == protocol.EXIT_NO_GRAPH:
        return NO_GRAPH
    if status == protocol.EXIT_OLD_PYTHON:
        found = python.path + " " + python.version if python is not None else "Python"
        return OLD_PYTHON.format(python=found)
    return None


def start_failed(host: str, given: Optional[str], process: Process, what: str) -> RemoteError:
    """Why START ended before the agent (it said neither "ready" nor "need-bundle"):
    in one line, a row of the run's summary; ``given``: the host's ``python:``."""
    error = process.stderr.read().decode(errors="replace").strip()
    status = process.wait(10)
    if status == protocol.EXIT_NO_PYTHON:
        return RemoteError(host, NO_PYTHON_AT.format(path=given) if given else NO_PYTHON)
    # Each line once: `mkdir -p A B` says the same of a parent both need.
    error = "; ".join(dict.fromkeys(line.strip() for line in error.splitlines() if line.strip()))
    what = refused_by_login_shell(error, status) or what
    return RemoteError(host, "{} (status {}): {}".format(what, status, error or "no output"))
