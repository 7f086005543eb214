"""The timer kind: every ``interval`` seconds, the resources after it run again.

As mgmt's timer: its check is fine except right after a tick, when it
reports a change, and the engine re-checks everything that depends on it.
One daemon thread per timer waits on an Event (so close() ends it at once);
ticks that fall due while the previous one is still being handled coalesce.
"""

import threading
from typing import Any, Mapping, Optional

from mgmt.resources.base import Resource
from mgmt.resources.fields import MAX_SECONDS, number_field


class TimerRes(Resource):
    kind = "timer"
    fields = {
        "interval": number_field(1, MAX_SECONDS, required=True, doc="seconds between two ticks")
    }

    def __init__(self, name: str, params: Mapping[str, Any], meta: Any = None):
        super().__init__(name, params, meta)
        self._stop = threading.Event()
        self._ticked = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def watch(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"timer-{self.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.params["interval"]):
            self._ticked.set()
            self.init.event()

    def check_apply(self, apply: bool) -> bool:
        if not self._ticked.is_set():
            return True
        self._ticked.clear()
        self.note("interval", self.params["interval"], "elapsed")
        self.init.log.debug("tick: the resources after this timer run again")
        return False

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
