"""What happened to one vertex during a run: the result, the differences found, the errors.

The scheduler records every check here; mgmt.engine.report turns them into
the ``--json`` document, and :meth:`Outcome.failures` into what a detached
cluster's world is told of what failed. Bounded, so a resource that flaps for hours keeps
the first differences and the last errors, not all of them.
"""

from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from mgmt.world.api import FAILURE_ERROR_MAX, Failure

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
        self, ok: bool, apply: bool, notes: List[Dict[str, Any]], error: Optional[Exception]
    ) -> None:
        """One check: ``ok`` (the state was right), its differences, its error. An
        error may name the group's members it is about (ResourceError.members),
        when the others were checked and fixed all the same: their part counts."""
        self.checks += 1
        if error is not None:
            members = getattr(error, "members", None) or None  # none named: all of them
            self.failed = True
            self.failed_members = members
            told = _told(error, members)
            # This check's are kept whole; the older ones as room allows.
            keep = max(0, MAX_ERRORS - len(told))
            older = list(zip(self.errors, self.error_members))[len(self.errors) - keep :]
            self.errors = [text for text, _ in older + told]
            self.error_members = [who for _, who in older + told]
            if members is None:
                return
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
        entries = [dict(note, applied=apply) for note in notes]
        if not apply:
            # A noop check says what would change as things are; checked again (an
            # event: a touch, another namespace's hostname), the same differences
            # are not new ones. A change made is made again, so those all count.
            entries = [entry for entry in entries if entry not in self.changes]
        room = MAX_CHANGES - len(self.changes)
        if room > 0:
            self.changes.extend(entries[:room])

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

    def failures(self, kind: str, name: str) -> List[Failure]:
        """What the world is told of this failed vertex (``kind``, ``name``): a
        group's members its last error was about, or the vertex; each with its
        last error, cut to what an etcd value holds."""
        names = sorted(self.failed_members) if self.failed_members is not None else [name]
        return [Failure(kind, n, cut_error((self.errors_of(n) or [""])[-1])) for n in names]

    def copy(self) -> "Outcome":
        other = Outcome()
        other.result, other.failed, other.checks = self.result, self.failed, self.checks
        other.failed_members = self.failed_members
        other.changes, other.errors = list(self.changes), list(self.errors)
        other.error_members = list(self.error_members)
        return other


def _told(
    error: BaseException, members: Optional[FrozenSet[str]]
) -> List[Tuple[str, Optional[FrozenSet[str]]]]:
    """What ``error`` says, as (message, the members it is about): each member's own
    where it tells them (ResourceError.said_of), one entry per distinct message."""
    said = getattr(error, "said_of", None) or {}
    by_text: Dict[str, List[str]] = {}
    for member in sorted(said):
        by_text.setdefault(said[member], []).append(member)
    return [(text, frozenset(who)) for text, who in by_text.items()] or [
        (message_of(error), members)
    ]


def message_of(error: BaseException) -> str:
    """What a check's error says. A ResourceError's message leaves out the
    resource's name, which the log line has."""
    return getattr(error, "message", None) or str(error) or type(error).__name__


def cut_error(text: str) -> str:
    """``text``, or its start and "..." to say the rest was cut, in FAILURE_ERROR_MAX."""
    limit = FAILURE_ERROR_MAX
    return text if len(text) <= limit else text[: limit - 3] + "..."
