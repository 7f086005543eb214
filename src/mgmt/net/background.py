"""What the HTTP and TFTP servers share: a serving loop in a daemon thread.

A resource starts its server with ``start(on_exit=init.event)``: if the loop
ever ends without being asked to (a crash), the engine hears of it and checks
the resource again, which starts a new server.
"""

import threading
from typing import Callable, ClassVar, Optional, TypeVar

__all__ = ["BackgroundServer"]

_Self = TypeVar("_Self", bound="BackgroundServer")


class BackgroundServer:
    """Run :meth:`serve_forever` in a daemon thread until :meth:`stop`.

    Subclasses write ``serve_forever`` (ending once :attr:`stopping` is set or
    :meth:`_interrupt` is called) and :meth:`_close`; :meth:`stop` calls them
    in that order.
    """

    thread_name: ClassVar[str] = "server"

    def __init__(self) -> None:
        self.stopping = threading.Event()  # set once stop() was asked for
        self._thread: Optional[threading.Thread] = None

    def serve_forever(self) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        """Make a running serve_forever() return; the default relies on it polling ``stopping``."""

    def _close(self) -> None:
        """Release the socket (and wait for what still uses it) after the loop ended."""

    def start(self: _Self, on_exit: Optional[Callable[[], None]] = None) -> _Self:
        """Serve in a daemon thread; ``on_exit`` is called if it ever ends unasked."""

        def run() -> None:
            try:
                self.serve_forever()
            finally:
                if on_exit is not None and not self.stopping.is_set():
                    on_exit()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def is_serving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._interrupt()
            self._thread.join()
            self._thread = None
        self._close()

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
