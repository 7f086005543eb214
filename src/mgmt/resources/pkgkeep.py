"""A pkg group's removal that would take a package the group wants installed.

dnf removes with a package every package that requires it. A group's
transaction names only its members that are wrong: one right as it is (wanted
installed, and installed) that requires a package another member wants
removed was removed by the group's own transaction, which then failed that
member ("dnf left it not installed") and installed it again at the next
check, removing the other again: the group undid itself. So before a
transaction that removes packages, dnf is asked what it would do (the same
transaction with ``--assumeno``, as --noop asks it: no repository needed for a
removal), and one that would take such a member is not run: the members it
removes fail, naming what it would take, as dnf refuses a group that asks for
both at once.
"""

from typing import Any, List, Optional, Sequence

from mgmt.resources.base import ResourceError
from mgmt.resources.dnf import Dnf, Transaction
from mgmt.resources.pkgname import split_arch
from mgmt.resources.pkgnoop import touched


def kept(members: Sequence[Any], wrong: Sequence[Any]) -> List[str]:
    """The packages of the group's ``members`` (PkgRes) that are right as they are
    and wanted installed: those not in ``wrong`` (member, now, action, spec)."""
    acted = {id(w[0]) for w in wrong}
    return [m.package for m in members if id(m) not in acted and m.state != "uninstalled"]


def refuse_taking(
    dnf: Dnf,
    transaction: Transaction,
    keep: Sequence[str],
    owner: str,
    members: Sequence[Any],
    output: Optional[str] = None,
) -> None:
    """ResourceError when ``transaction`` would remove a package of ``keep``: about
    the ``members`` it removes. ``output``: what dnf said of it under --assumeno,
    asked here when not given (only for a transaction that removes packages)."""
    if not transaction.remove or not keep:
        return
    if output is None:
        output = dnf.run(transaction, dry=True)
    # dnf's table names packages without their architecture: one architecture of
    # a name removed is not told from another kept (which dnf leaves, unless it
    # requires the one removed).
    gone = touched(output) - {split_arch(spec)[0] for spec in transaction.remove}
    taken = [name for name in keep if split_arch(name)[0] in gone]
    if not taken:
        return
    removes = [m for m in members if m.package in transaction.remove]
    message = (
        f"remove {' '.join(transaction.remove)} would also remove {', '.join(taken)},"
        " which this group wants installed (dnf removes what requires a package"
        " removed): not done; remove both or keep both"
    )
    raise ResourceError(owner, message, members=[m.name for m in removes])
