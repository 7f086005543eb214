"""Leaving a finished command at once, without tearing the interpreter down.

Once a command's work is done, Python still spends 10-25 ms freeing every
module it imported (click and Jinja2 for ``mgmt-pkg fake-rpm``, paramiko and
Fabric for a remote run): a tenth of a phony build, for nothing. The output is
flushed first; everything else (files, temp dirs, child processes, etcd) was
closed by the code that opened it, in its own ``with`` block.
"""

import contextlib
import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Flush stdout and stderr, then end the process with ``code``."""
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream: nothing more can be said. None: the process
        # was started with that descriptor closed (`cmd >&-`).
        with contextlib.suppress(OSError, ValueError):
            if stream is not None:
                stream.flush()
    os._exit(code)


def exit_interrupted() -> NoReturn:
    """End a command that a ^C stopped before the agent took SIGINT over (while
    Python imported the command line, or the flags were read): the line a later
    ^C logs, exit 130 as a shell reports a ^C, and no traceback. Another ^C
    meanwhile ends the process at once, as SIGINT's default does."""
    import signal  # a ^C's path only

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from mgmt.log import get_logger

    # A warning, not the info line a later ^C gives: the verbosity is not known yet.
    get_logger("main").warning("interrupted by SIGINT")
    exit_now(130)
