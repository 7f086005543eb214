"""What every pkg resource of the agent wants, by package, so that one applied
alone can tell when its transaction undid another's.

dnf installs what a package requires and removes what requires a package it
removes. Two pkg resources applied in two transactions (``autogroup: false``,
or different ``allowuntrusted``) can so undo each other: installing r
installs c, which another resource wants removed; removing c removes r; each
change wakes the other, for ever. Grouped, dnf refuses the one transaction
and both fail once. Apart, the resource whose transaction undid another's
fails, naming both (:func:`undone`), and does not run that transaction again
while the other still wants the same (:class:`Fight`): an edit of either, or
a new agent, lets it try again.
"""

import threading
from typing import Collection, Dict, FrozenSet, List, NamedTuple, Optional, Tuple

# package -> (wanted present, the resource that wants it, as shown in errors)
Wanted = Dict[str, Tuple[bool, str]]


class PkgWants:
    """The agent's one registry (a Services item) of what its pkg resources want."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id(resource) -> (it, what it and its members want); holding the resource
        # keeps its id from being reused while it is here.
        self._by_owner: Dict[int, Tuple[object, Wanted]] = {}

    def add(self, owner: object, wanted: Wanted) -> None:
        with self._lock:
            self._by_owner[id(owner)] = (owner, dict(wanted))

    def discard(self, owner: object) -> None:
        with self._lock:
            self._by_owner.pop(id(owner), None)

    def others(self, owner: object) -> Wanted:
        """What the other pkg resources want (of packages ``owner`` does not manage)."""
        with self._lock:
            own = self._by_owner.get(id(owner), (owner, {}))[1]
            out: Wanted = {}
            for key, (_, wanted) in self._by_owner.items():
                if key != id(owner):
                    out.update((p, w) for p, w in wanted.items() if p not in own)
            return out


class Fight(NamedTuple):
    """A transaction that undid another resource's package, not to be run again
    while that resource still wants it so."""

    specs: FrozenSet[str]  # the transaction's (action, spec) pairs, as "action spec"
    package: str
    wanted: Tuple[bool, str]
    message: str

    def holds(self, specs: Collection[str], others: Wanted) -> bool:
        return frozenset(specs) == self.specs and others.get(self.package) == self.wanted


def undone(
    actions: List[str], others: Wanted, before: Collection[str], after: Collection[str]
) -> Optional[Fight]:
    """The first package of ``others`` that was as wanted ``before`` the transaction
    ``actions`` ("install r", ...) and is not ``after`` it (``before`` and ``after``:
    the installed ones among them), as a Fight; None if there is none."""
    for package, (present, owner) in sorted(others.items()):
        if (package in before) == present and (package in after) != present:
            did = "removed" if present else "installed"
            wants = "installed" if present else "uninstalled"
            message = (
                f"{', '.join(actions)} also {did} {package}, which {owner} wants {wants}:"
                " applied apart, the two undo each other (dnf installs what a package"
                " requires and removes what requires a package removed); apply them in"
                " one transaction (meta: {autogroup: true}, one allowuntrusted) or change one"
            )
            return Fight(frozenset(actions), package, (present, owner), message)
    return None
