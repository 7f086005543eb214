"""Every host's exports, read from the world on a thread of its own.

While etcd hangs (stopped, a stalled tunnel: it takes the connection and says
nothing) a read waits for the client's timeouts, about 10 s. Read on the
planner, it held back the graph's own resources that long: at the start, at
an edit that changed the kinds collected, at any edit before a read ever
succeeded. The planner now asks (:meth:`ExportReader.ask`) and goes on with
the exports as last read; ``on_read`` tells it when an answer (or a failure)
came, to collect again from it.

A read asked counts as work until the planner has applied its answer
(:attr:`ExportReader.pending`, reported through ``on_pending``): an agent must
not say it converged while the resources it collects are not known yet.

A read that failed is an answer too (the exports as last read are kept, as
before), but it is tried again every RETRY seconds until one succeeds: the
exports' watch may have told of a change already, and would not again. Those
retries are not work (etcd may stay away: the agent would never converge).
"""

import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from mgmt.errors import MgmtError
from mgmt.log import get_logger

log = get_logger("exchange")

RETRY = 1.0


class ExportReader:
    """Reads for the planner; it owns what was read and which reads are asked."""

    def __init__(
        self,
        world: Any,
        on_read: Optional[Callable[[], None]] = None,
        on_pending: Optional[Callable[[bool], None]] = None,
    ):
        """``on_read()``: an answer came, from the reader's thread; ``on_pending(p)``:
        :attr:`pending` changed, called under the reader's lock, so in order
        (it must not call back into the reader)."""
        self.world = world
        self._on_read = on_read or (lambda: None)
        self._on_pending = on_pending or (lambda pending: None)
        self._cond = threading.Condition()
        self._kinds: Optional[List[str]] = None  # what the graph collects now
        # Reads asked are numbered: the newest asked, the newest a read answered
        # (a failure answers too), the newest whose answer the planner applied.
        self._asked = self._done = self._applied = 0
        self._floor = 0  # reads asked before forget(): their answers are dropped
        self._read: Optional[Tuple[List[str], List[Any]]] = None  # (kinds, exports) last read
        self._pending = False  # as last told to on_pending
        self._retry_at: Optional[float] = None  # set while reads fail
        self._error: Optional[str] = None  # the last read's failure, said once
        self._closed = False
        self._thread: Optional[threading.Thread] = None

    @property
    def pending(self) -> bool:
        """Whether a read asked has not been answered and applied yet."""
        with self._cond:
            return self._asked > self._applied

    def ask(self, kinds: Optional[List[str]] = None) -> None:
        """Read again (``kinds``: what the graph collects; None: as the last ask,
        nothing if none was made since :meth:`forget`). Returns at once."""
        with self._cond:
            if kinds is not None:
                self._kinds = list(kinds)
            if self._kinds is None or self._closed:
                return
            self._asked += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="collect", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            self._tell()

    def last(self) -> Tuple[int, Optional[Tuple[List[str], List[Any]]]]:
        """(the newest read answered, (kinds, exports) as last read or None)."""
        with self._cond:
            return self._done, self._read

    def applied(self, done: int) -> None:
        """The planner applied the answers up to ``done`` (from :meth:`last`)."""
        with self._cond:
            self._applied = max(self._applied, done)
            self._tell()

    def forget(self) -> None:
        """The graph collects nothing now: drop what was read (the watch may go on
        without anyone reading its news) and the reads asked."""
        with self._cond:
            self._kinds, self._read, self._retry_at, self._error = None, None, None, None
            self._floor = self._applied = self._done = self._asked
            self._tell()

    def close(self) -> None:
        """Stop; a read under way is not waited for (etcd may hang), its answer dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _tell(self) -> None:
        pending = self._asked > self._applied
        if pending != self._pending:
            self._pending = pending
            self._on_pending(pending)

    def _loop(self) -> None:
        while True:
            with self._cond:
                ask = self._next()
                if ask is None:
                    return
                kinds, floor, self._retry_at = list(self._kinds or ()), self._floor, None
            exports: Optional[List[Any]] = None
            error: Optional[str] = None
            try:
                exports = self.world.collect(kinds)
            except Exception as err:  # the thread must survive anything
                if not isinstance(err, MgmtError) and not self._closed:
                    log.exception("collecting exported resources failed")
                error = str(err)
            with self._cond:
                if self._closed:
                    return
                if self._floor != floor:  # forget() meanwhile: the graph collects nothing
                    continue
                if exports is not None:
                    self._read = (kinds, exports)
                else:
                    self._retry_at = time.monotonic() + RETRY
                if ask:  # 0: a retry, which answers no ask
                    self._done = ask
                said, self._error = self._error, error
            if error is not None and error != said:  # once, not at each retry
                log.error("cannot collect exported resources (keeping the last ones): %s", error)
            elif error is None and said is not None:
                log.info("collected exported resources again")
            if ask or exports is not None:
                self._on_read()

    def _next(self) -> Optional[int]:
        """Wait for a read to make: the ask it answers (0: a retry); None once closed."""
        while not self._closed:
            if self._done < self._asked:
                return self._asked
            wait = None if self._retry_at is None else self._retry_at - time.monotonic()
            if wait is not None and wait <= 0:
                return 0
            self._cond.wait(wait)
        return None
