"""What happened to one vertex during a run: the result, the differences found, the errors.

The scheduler records every check here; mgmt.engine.report turns them into
the ``--json`` document. Bounded, so a resource that flaps for hours keeps
the first differences and the last errors, not all of them.
"""

from typing import Any, Dict, FrozenSet, List, Optional

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
    __slots__ = ("changes", "checks", "error_members", "errors", "failed", "failed_members",
                 "result")  # fmt: skip

    def __init__(self) -> None:
        self.result = PENDING
        self.failed = False  # the last check failed
        # For a group: the members the last check's error was about (None: all of them).
        self.failed_members: Optional[FrozenSet[str]] = None
        self.checks = 0
        self.changes: List[Dict[str, Any]] = []
        self.errors: List[str] = []
        self.error_members: List[Optional[FrozenSet[str]]] = []  # each error's, as above

    def record(
        self,
        ok: bool,
        apply: bool,
        notes: List[Dict[str, Any]],
        error: Optional[str],
        members: Optional[FrozenSet[str]] = None,
    ) -> None:
        """One check: ``ok`` (the state was right), its differences, its error;
        ``members``: the group's members that error is about, when the others were
        checked and fixed all the same (see mgmt.resources.base.ResourceError)."""
        self.checks += 1
        if error is not None:
            self.failed = True
            self.failed_members = members
            self.errors = [*self.errors, error][-MAX_ERRORS:]
            self.error_members = [*self.error_members, members][-MAX_ERRORS:]
            if members is None:
                return
            # The other members' part of the check went through: it counts.
            notes = [note for note in notes if note.get("resource") not in members]
            ok = not notes
        else:
            self.failed = False
            self.failed_members = None
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

    def final_of(self, member: str) -> str:
        """A group member's result: failed when the last check's error was about it."""
        if self.failed and (self.failed_members is None or member in self.failed_members):
            return FAILED
        return self.result

    def errors_of(self, member: str) -> List[str]:
        """The errors that were about a group's ``member`` (or the whole group)."""
        return [e for e, m in zip(self.errors, self.error_members) if m is None or member in m]

    def copy(self) -> "Outcome":
        other = Outcome()
        other.result, other.failed, other.checks = self.result, self.failed, self.checks
        other.failed_members = self.failed_members
        other.changes, other.errors = list(self.changes), list(self.errors)
        other.error_members = list(self.error_members)
        return other
