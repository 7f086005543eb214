"""A signal to one thread of a process, not the main one (tgkill(2)).

The kernel gives a process's signal (kill(2)) to any of its threads that does not
block it; a test makes the case the main thread does not get it happen at will.
"""

from __future__ import annotations

import ctypes
import os


def signal_another_thread(pid: int, sig: int) -> int:
    """Send ``sig`` to a thread of ``pid`` other than its main one; that thread's id."""
    threads = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    if not threads:
        raise AssertionError(f"process {pid} runs no thread beside its main one")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(pid, threads[0], sig) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill {pid} {threads[0]}")
    return threads[0]
