"""Logging in the write-up's format: ``HH:MM:SS component: message``.

A few lines of our own instead of the standard ``logging`` package: mgmt needs
one format, one stream and four levels, and importing ``logging`` (with
traceback, string and weakref) was about a tenth of a remote agent's start-up,
paid again on every host of a run. Each line is written whole under one lock,
so the threads of an agent never interleave their output.
"""

import contextlib
import sys
import threading
import time
from typing import Any, Dict, Optional, Set, TextIO

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40

# What a terminal would act on or break a line at: C0, DEL, C1 and the Unicode line
# breaks. No name or one-line value may hold them (mgmt.graph.limits); text from
# elsewhere (a command's output, a host's lines) is shown with them escaped.
CONTROL_CHARACTERS = frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]))


def escape_table(keep: str = "") -> Dict[int, str]:
    """A ``str.translate`` table showing CONTROL_CHARACTERS escaped (``\\r``,
    ``\\x1b``), but those in ``keep``: as unicode_escape writes them, without
    importing that codec (the agent's start)."""
    return {ord(char): repr(char)[1:-1] for char in CONTROL_CHARACTERS if char not in keep}


_ONE_LINE = escape_table()


def one_line(text: str) -> str:
    """``text`` with every control character shown escaped, a newline too: words from
    elsewhere (a host's line, a name found in a copied tree) kept on one line."""
    return text.translate(_ONE_LINE)


# A message may carry what a command printed: a progress bar's carriage return
# would overwrite the line (its time and resource), an ESC sequence drive the
# terminal. Shown escaped, as the initiator shows a host's lines, but for a
# multi-line message's \n and \t.
_ESCAPED = escape_table(keep="\n\t")


class _Output:
    """Where every logger writes; set by :func:`setup`."""

    level = WARNING  # until setup(), as the standard logging does
    stream: Optional[TextIO] = None  # None: sys.stderr as it is when a line is written
    # Reentrant: a signal handler that logs runs in the main thread, maybe while
    # that thread is inside a write (a plain Lock would deadlock it there).
    lock = threading.RLock()


# Held while a line is written: whoever else writes whole lines to the terminal
# (the initiator's host lines, mgmt.remote.orchestration.follow) takes it too, so
# that a log line on stderr never lands inside a long one on stdout (`2>&1 | tee`).
OUTPUT_LOCK = _Output.lock


def setup(verbosity: int = 0, stream: Optional[TextIO] = None) -> None:
    """Set the level for every logger (-1 quiet: warnings, 0 info, 1+ debug) and the stream."""
    _Output.level = WARNING if verbosity < 0 else DEBUG if verbosity > 0 else INFO
    _Output.stream = stream


class Logger:
    """One component's lines: ``log.info("copied %s", path)``.

    The arguments are formatted only if the line is printed; ``exc_info=True``
    (or :meth:`exception`) adds the traceback of the exception being handled.
    """

    def __init__(self, component: str, prefix: str = ""):
        self.component = component
        self.prefix = prefix

    def child(self, name: str) -> "Logger":
        """The same component, each line starting with ``name: `` (one resource's)."""
        return Logger(self.component, f"{self.prefix}{name}: ")

    def enabled(self, level: int) -> bool:
        return level >= _Output.level

    def debug(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        self._write(DEBUG, msg, args, exc_info)

    def info(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        self._write(INFO, msg, args, exc_info)

    def warning(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        self._write(WARNING, msg, args, exc_info)

    def error(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        self._write(ERROR, msg, args, exc_info)

    def exception(self, msg: str, *args: Any) -> None:
        self._write(ERROR, msg, args, True)

    def _write(self, level: int, msg: str, args: tuple, exc_info: bool) -> None:
        if level < _Output.level:
            return
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):  # a bad format is a bug, not a reason to fail
            text = f"{msg} {args!r}"
        text = text.translate(_ESCAPED)
        line = f"{time.strftime('%H:%M:%S')} {self.component}: {self.prefix}{text}\n"
        if exc_info:
            import traceback  # only when there is one to print

            line += traceback.format_exc()
        # As logging's handlers do, a line that cannot be written is dropped: a
        # closed stderr (the initiator gone) must not stop the agent mid-stop.
        with _Output.lock, contextlib.suppress(OSError, ValueError):
            stream = _Output.stream or sys.stderr
            stream.write(line)
            stream.flush()


def get_logger(component: str) -> Logger:
    """The logger for one component, e.g. ``get_logger("engine")``."""
    return Logger(component)


_adopted: Set[str] = set()  # the loggers adopt_library_logger() took over


def adopt_library_logger(name: str) -> None:
    """Route a library's standard-``logging`` logger (paramiko's) into ours, at debug.

    Without a handler, ``logging`` prints its warnings and errors to stderr as
    they are (paramiko logs a whole traceback that way for a port that does not
    speak SSH), before the one line in which we say the same. Shown at -v only.
    The initiator calls this; agents never import ``logging`` (see above).
    """
    import logging

    with _Output.lock:
        if name in _adopted:
            return
        _adopted.add(name)
    ours = Logger(name)

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            with contextlib.suppress(Exception):  # as logging's handlers: never raise
                ours.debug("%s", record.getMessage())

    logger = logging.getLogger(name)
    logger.addHandler(_Handler())
    logger.propagate = False  # nor through a handler someone put on the root logger
