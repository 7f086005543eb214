"""mgmt.wakeup: an Event-like wake-up that signal handlers and threads may set."""

from __future__ import annotations

import subprocess
import sys
import threading

from mgmt.wakeup import Wakeup


def test_set_wait_clear_and_timeout():
    wake = Wakeup()
    assert wake.wait(0) is False and wake.wait(0.01) is False
    for _ in range(100_000):  # far more than a pipe holds: set() never blocks
        wake.set()
    assert wake.wait(0) is True and wake.wait() is True  # stays set until cleared
    wake.clear()
    assert wake.wait(0) is False
    wake.close()
    wake.set()  # a late set() after the waiter has gone is harmless


def test_a_thread_wakes_the_waiter():
    wake = Wakeup()
    threading.Timer(0.05, wake.set).start()
    assert wake.wait(10) is True
    wake.close()


# The handler runs in the waiting thread itself, here while that thread is inside
# set(): with a threading.Event (and its lock) that is a deadlock.
SIGNAL_IN_SET = """
import os, signal
from mgmt.wakeup import Wakeup

wake = Wakeup()
calls = []
signal.signal(signal.SIGUSR1, lambda signum, frame: (calls.append(signum), wake.set()))

class Signalling:
    def write(self, data):
        wake._write = real
        os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs before this returns
        return real.write(data)

real, wake._write = wake._write, Signalling()
wake.set()
assert calls == [signal.SIGUSR1] and wake.wait(5)
print("woken")
"""


def test_a_signal_handler_can_set_it_while_its_thread_is_inside_set():
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_IN_SET], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "woken\n"
