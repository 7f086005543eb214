"""SIGTERM and SIGHUP during a detached run's hand-over (mgmt.remote.orchestration.detach):
until the cluster is handed over they stop the run as a ^C does (what was started is
stopped, a second one stops waiting), and the run exits 128+N; after it, they end the
initiator as they would any program.
"""

import signal
import threading
from typing import Any, Dict


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP before the hand-over: handled as a ^C is (what was started
    is stopped; a second one stops waiting), and the run exits 128+N."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


class SignalsStop:
    """While in effect (until :meth:`over`), SIGTERM and SIGHUP raise :class:`Signalled`
    in the main thread, wherever it waits, as SIGINT raises KeyboardInterrupt."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> "SignalsStop":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, _frame) -> None:
        raise Signalled(signum)

    def over(self) -> None:
        """The cluster is handed over: the signals do what they did before."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __exit__(self, *exc_info) -> None:
        self.over()
