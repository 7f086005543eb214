"""The svc kind's count of a unit's starts, against the unit's own start limit.

systemd refuses a start once a unit was started StartLimitBurst times within
StartLimitIntervalSec; the agent's reset-failed (before its start of a failed
unit) zeroes systemd's count, so the agent keeps one of its own: every start
counts, the agent's and systemd's own restarts (Restart=) alike, as systemd
counts them. Each change of the unit wakes a check, so each start is seen.
"""

import collections
import time
from typing import Deque, Mapping, Optional

from mgmt.resources.unitctl import describe_state, timespan


class StartHistory:
    """The unit's recent activations, as a check of it saw them."""

    def __init__(self) -> None:
        self._starts: Deque[float] = collections.deque()  # CLOCK_MONOTONIC seconds
        self._last_activation = ""

    def count(self, props: Mapping[str, str]) -> None:
        """Note the unit's last activation (``props``: its properties), if new."""
        activation = props.get("InactiveExitTimestampMonotonic", "")
        if activation.isdigit() and int(activation) and activation != self._last_activation:
            self._last_activation = activation
            self._starts.append(int(activation) / 1e6)  # µs of CLOCK_MONOTONIC, as time's
        burst = props.get("StartLimitBurst", "")
        while burst.isdigit() and len(self._starts) > max(int(burst), 1):
            self._starts.popleft()  # only the last StartLimitBurst can ever count

    def limited(self, props: Mapping[str, str]) -> Optional[str]:
        """Why the unit must not be started again (it was started StartLimitBurst
        times within StartLimitIntervalSec already), None if it may. Said once: the
        count starts anew after it."""
        burst = props.get("StartLimitBurst", "")
        interval = props.get("StartLimitIntervalUSec") or props.get("StartLimitInterval", "")
        seconds = float("inf") if interval == "infinity" else timespan(interval)
        if not burst.isdigit() or not int(burst) or not seconds:
            return None  # no limit, as for systemd
        now = time.monotonic()
        while self._starts and self._starts[0] < now - seconds:
            self._starts.popleft()
        if len(self._starts) < int(burst):
            return None
        self._starts.clear()
        return (
            f"started {burst} times within {interval}, now {describe_state(props)}: not"
            " started again (its StartLimitBurst and StartLimitIntervalSec)"
        )
