"""What happened to one vertex during a run: the result, the differences found, the errors.

The scheduler records every check here; mgmt.engine.report turns them into
the ``--json`` document. Bounded, so a resource that flaps for hours keeps
the first differences and the last errors, not all of them.
"""

from typing import Any, Dict, List, Optional

MAX_CHANGES = 100
MAX_ERRORS = 20

# Results, from least to most telling: a later check never hides an earlier change.
PENDING, UNCHANGED, WOULD_CHANGE, CHANGED, FAILED = (
    "pending",
    "unchanged",
    "would-change",
    "changed",
    "failed",
)


class Outcome:
    __slots__ = ("changes", "checks", "errors", "failed", "result")

    def __init__(self) -> None:
        self.result = PENDING
        self.failed = False  # the last check failed
        self.checks = 0
        self.changes: List[Dict[str, Any]] = []
        self.errors: List[str] = []

    def record(
        self, ok: bool, apply: bool, notes: List[Dict[str, Any]], error: Optional[str]
    ) -> None:
        self.checks += 1
        if error is not None:
            self.failed = True
            self.errors = [*self.errors, error][-MAX_ERRORS:]
            return
        self.failed = False
        if ok:
            if self.result == PENDING:
                self.result = UNCHANGED
            return
        if apply:
            self.result = CHANGED
        elif self.result != CHANGED:
            self.result = WOULD_CHANGE
        room = MAX_CHANGES - len(self.changes)
        if room > 0:
            self.changes.extend(dict(note, applied=apply) for note in notes[:room])

    @property
    def final(self) -> str:
        """The result to report: failed when the last check failed."""
        return FAILED if self.failed else self.result

    def copy(self) -> "Outcome":
        other = Outcome()
        other.result, other.failed, other.checks = self.result, self.failed, self.checks
        other.changes, other.errors = list(self.changes), list(self.errors)
        return other
