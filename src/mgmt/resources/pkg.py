"""The pkg kind: a package installed, removed, at its newest or at a given version.

Fields as mgmt 0.0.5's, applied through the host's dnf (see mgmt.resources.dnf
for why not PackageKit). Packages autogroup by default (``meta: {autogroup:
true}``): the engine hands the first pkg resource the others (see
mgmt.engine.autogroup) and it checks them with one rpm query and fixes them
with one dnf transaction, which is several times faster than one transaction
per package and lets dnf solve them together.

The watch is inotify on the rpm database directory (``%_dbpath``): whoever
changes the database (``dnf remove`` in a shell, a cron job), the resource
checks again at once and undoes it. No polling.
"""

import os
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from mgmt.resources.base import Field, Init, Resource, ResourceError
from mgmt.resources.dnf import (
    Dnf,
    DnfError,
    Transaction,
    uninstallable,
    unmatched,
)
from mgmt.resources.pkganswer import (
    Applied,
    answered_by_others,
    members_failed,
    refused_specs,
    still_missing,
)
from mgmt.resources.pkgkeep import kept, refuse_taking
from mgmt.resources.pkgname import check_name, check_pinned, check_version, identities
from mgmt.resources.pkgnoop import would_fail, would_miss
from mgmt.resources.pkgplan import STATES, plan_members
from mgmt.resources.pkgwants import Fight, PkgWants, undone


def _db_signature(dbpath: str) -> Tuple[Tuple[str, int, int], ...]:
    """(name, size, mtime) of the rpm database's data files: lock and -shm files aside."""
    out = []
    try:
        names = sorted(os.listdir(dbpath))
    except OSError:
        return ()
    for name in names:
        if name.endswith(("-shm", ".lock")) or name.startswith("."):
            continue
        try:
            st = os.stat(os.path.join(dbpath, name))
        except OSError:
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


class PkgRes(Resource):
    kind = "pkg"
    fields = {
        "name": Field(str, doc="package name; defaults to the resource's name"),
        "state": Field(
            str,
            default="installed",
            doc="installed, uninstalled, newest, or a version (1.2, 1.2-3, 2:1.2-3)",
        ),
        "allowuntrusted": Field(
            bool, default=False, doc="accept packages whose signature is not checked (--nogpgcheck)"
        ),
        "allownonfree": Field(bool, default=False, doc="accepted for mgmt; dnf has no such filter"),
        "allowunsupported": Field(
            bool, default=False, doc="accepted for mgmt; dnf has no such filter"
        ),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        if params.get("name") is not None:
            check_name("name", params["name"])
        if params["state"] not in STATES:
            check_version("state", params["state"])
            if params.get("name") is not None:
                check_pinned(params["name"], params["state"])

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        # The package is its identity: two resources for one package (installed
        # and uninstalled) would undo each other; the graph refuses them, also
        # when one names it NAME and the other NAME.ARCH.
        return identities(params.get("name") or name), []

    @classmethod
    def autogroup_key(cls, name: str, params: Mapping[str, Any]) -> Optional[str]:
        # Only packages with the same trust setting share a transaction.
        return "nogpgcheck" if params.get("allowuntrusted") else "checked"

    def __init__(self, name: str, params: Mapping[str, Any], meta: Any = None):
        super().__init__(name, params, meta)
        self.package = self.params.get("name") or name
        check_name("name", self.package)  # the resource's name, when it is the package's
        if self.params["state"] not in STATES:
            check_pinned(self.package, self.params["state"])
        self.state = self.params["state"]
        self.members: List[PkgRes] = [self]
        self._cancel: Optional[Callable[[], None]] = None
        self._dbpath = ""
        self._in_transaction = False
        self._seen: Tuple[Tuple[str, int, int], ...] = ()
        self._fight: Optional[Fight] = None  # see mgmt.resources.pkgwants
        self._stood_in: Set[str] = set()  # names dnf installed another package for

    def merge(self, members: List[Resource]) -> None:
        self.members.extend(m for m in members if isinstance(m, PkgRes))

    @property
    def packages(self) -> str:
        return ", ".join(m.package for m in self.members)

    def setup(self, init: Init) -> None:
        super().setup(init)
        wanted = {m.package: (m.state != "uninstalled", repr(m)) for m in self.members}
        init.services.get(PkgWants).add(self, wanted)

    def watch(self) -> None:
        dnf = self.init.services.get(Dnf)
        try:
            dbpath = dnf.dbpath()
        except DnfError as err:
            self.init.log.warning("cannot watch the rpm database: %s", err)
            return
        self._dbpath = dbpath
        self._seen = _db_signature(dbpath)
        self._cancel = self.init.watcher.watch_tree(dbpath, self._on_db_event)

    def _on_db_event(self) -> None:
        # Our own rpm queries touch the database's lock and shared-memory
        # files: only a change of the data itself (another transaction) counts,
        # or every check would wake the next one. Our own transaction is not
        # heard (check_apply turns the watch off) and is checked right after it.
        if self._in_transaction:
            return
        seen = _db_signature(self._dbpath)
        if seen != self._seen:
            self._seen = seen
            self.init.event()

    def close(self) -> None:
        self._stop_watch()
        if hasattr(self, "init"):
            self.init.services.get(PkgWants).discard(self)

    def _stop_watch(self) -> None:
        if self._cancel is not None:
            self._cancel()
            self._cancel = None

    # -- check and apply ----------------------------------------------------------

    def plan(self) -> "Tuple[List[Tuple[PkgRes, str, str, str]], Dict[str, str]]":
        """What is wrong with the members, and those whose state cannot be told
        (see mgmt.resources.pkgplan)."""
        return plan_members(self.init.services.get(Dnf), self.members, self._stood_in)

    def _first_plan(self) -> "Tuple[List[Tuple[PkgRes, str, str, str]], Dict[str, str]]":
        """plan(), keeping the watch quiet about a database our own query creates.

        On a host whose rpm database does not exist yet, the first ``rpm -q``
        creates it: that is no one else's change and must not wake a re-check.
        Where the database exists, queries change no data file, and a change
        seen meanwhile is someone else's.
        """
        fresh = bool(self._dbpath) and not _db_signature(self._dbpath)
        if not fresh:
            return self.plan()
        self._in_transaction = True
        try:
            return self.plan()
        finally:
            self._seen = _db_signature(self._dbpath)
            self._in_transaction = False

    def _own_transaction(
        self, transaction: Transaction, dry: bool = False, keep: Sequence[str] = ()
    ) -> Tuple[Tuple[Tuple[str, int, int], ...], str]:
        """Run ``transaction``, unheard by the watch; the database as dnf left it,
        and what dnf said.

        Our own transaction writes the database thousands of times: the watch
        is off meanwhile (the agent's one watcher thread would otherwise wake
        for each write, taking CPU from dnf). It is back on before the snapshot
        is taken, so a change made by someone else after that wakes a check.
        ``dry`` (--noop): dnf changes nothing, and the watch stays on. ``keep``:
        installed packages it must not remove (see mgmt.resources.pkgkeep).
        """
        dnf = self.init.services.get(Dnf)
        if dry:
            output = dnf.run(transaction, dry=True)
            refuse_taking(dnf, transaction, keep, repr(self), self.members, output)
            return self._seen, output
        refuse_taking(dnf, transaction, keep, repr(self), self.members)
        watching = self._cancel is not None
        self._in_transaction = True
        self._stop_watch()
        try:
            output = dnf.run(transaction)
        finally:
            if watching:
                self._cancel = self.init.watcher.watch_tree(self._dbpath, self._on_db_event)
            if self._dbpath:
                self._seen = _db_signature(self._dbpath)
            self._in_transaction = False
        return self._seen, output

    def check_apply(self, apply: bool) -> bool:
        try:
            wrong, untold = self._first_plan()
        except DnfError as err:
            raise ResourceError(repr(self), f"{self.packages}: {err}") from None
        if not wrong:
            if untold:  # the group's other members are right: they did not fail
                raise ResourceError(repr(self), "; ".join(untold.values()), members=untold)
            return True
        by_action: Dict[str, List[str]] = {}
        for m, now, action, spec in wrong:
            self.note("state", m.state, now, member=m.name)
            by_action.setdefault(action, []).append(spec)
        if apply:  # one line per action: a group may hold hundreds of packages
            for action, specs in by_action.items():
                self.init.log.info(f"{action} {' '.join(specs)}")
        if not apply:
            return self._noop(wrong, untold)
        started = int(time.time())  # rpm's install times are whole seconds
        dnf = self.init.services.get(Dnf)
        try:
            applied = self._apply_watching_others(wrong)
            still, _ = self.plan()  # after the snapshot: a change made since is seen here
            answered = answered_by_others(dnf, still, applied.already, started)
            learned = {m.package for m, *_ in wrong if m.package in answered} - self._stood_in
            self._stood_in.update(answered)
            still = [w for w in still if not (w[2] == "install" and w[0].package in answered)]
        except DnfError as err:  # of those it was about, only those still wrong failed
            still = self._still_wrong(wrong)
            if still or untold:
                raise members_failed(repr(self), err, still, untold) from None
            # All as wanted, though dnf failed (a scriptlet after the install): changed.
            self.init.log.warning("%s: as wanted, but dnf said: %s", self.packages, err)
            return False
        except ResourceError as err:
            raise members_failed(repr(self), err, wrong, untold) from None
        unknown, said = applied.refused, applied.said
        still = [w for w in still if w[3] not in unknown]
        if still and self._dbpath and _db_signature(self._dbpath) != applied.left_by_dnf:
            # Someone changed the database after our transaction (a `dnf remove`
            # right after ours): not dnf's failure. The next check undoes it.
            self.init.log.info("the rpm database changed after our transaction: checking again")
            self.init.event()
            still = []
        # A name whose stand-in dnf found there already was right before this check.
        right = {m.name for m, *_ in wrong if answered.get(m.package)}
        self.notes = [note for note in self.notes if note.get("resource") not in right]
        failed = dict(untold)
        for m, _, action, spec in wrong:
            if spec in unknown:
                failed[m.name] = f"{spec}: dnf {action}: {unknown[spec]}"
        for m, now, *_ in still:
            # dnf4's shell says why it did nothing (an install it cannot resolve)
            # and exits 0: its words, not "it succeeded".
            failed[m.name] = f"dnf left {m.package} {now}, wanted {m.state}" + (
                f"; dnf said: {said}" if said else ""
            )
        if failed:  # the group's other members are right now: they did not fail
            raise ResourceError(
                repr(self), "; ".join(dict.fromkeys(failed.values())), members=failed
            )
        if any(m.state == "newest" and m.package in learned for m, *_ in wrong):
            # The package standing for it, known now, may have a newer version.
            return self.check_apply(apply) and len(right) == len(wrong)
        return len(right) == len(wrong)

    def _noop(self, wrong: "List[Tuple[PkgRes, str, str, str]]", untold: Dict[str, str]) -> bool:
        """--noop: what the real run would do, dnf asked without changing anything
        (see mgmt.resources.pkgnoop): the members it would fail fail with its words."""
        failed, right, why = dict(untold), set(), ""
        if self.changed_before:  # they may set up its repositories: not what dnf says now
            why = f"; not asked of dnf: after {self.changed_before_said()}, which would change"
        else:
            try:
                applied = self._apply(wrong, dry=True)
            except (DnfError, ResourceError) as err:
                raise members_failed(repr(self), err, wrong, untold) from None
            failed = would_fail(wrong, applied, untold)
            # A name dnf answers with a package there already is right, as the real run finds.
            there = answered_by_others(self.init.services.get(Dnf), wrong, applied.already, 2**62)
            right = {m.name for m, *_ in wrong if m.package in there}
            self.notes = [note for note in self.notes if note.get("resource") not in right]
            self._stood_in.update(there)  # as the real run learns it: is that one newest?
            if any(m.state == "newest" and m.name in right for m, *_ in wrong):
                return self.check_apply(False) and len(right) == len(wrong)
        for m, now, action, spec in wrong:
            if m.name not in failed and m.name not in right:
                self.init.log.info(f"would {action} {spec}: {m.package} is {now} (noop{why})")
        if failed:
            message = "; ".join(dict.fromkeys(failed.values()))
            raise ResourceError(repr(self), message, members=failed)
        return len(right) == len(wrong)

    def _still_wrong(
        self, wrong: "List[Tuple[PkgRes, str, str, str]]"
    ) -> "List[Tuple[PkgRes, str, str, str]]":
        """Those of ``wrong`` still wrong after a failed transaction: rpm applies
        what it can (a package whose %pre fails stays out, the others go in)."""
        try:
            still = {m.name for m, *_ in self.plan()[0]}
        except DnfError:
            return wrong
        return [w for w in wrong if w[0].name in still]

    def _apply_watching_others(self, wrong: "List[Tuple[PkgRes, str, str, str]]") -> "Applied":
        """:meth:`_apply`, failing if it undid what another pkg resource wants
        (applied apart, see mgmt.resources.pkgwants), or would again."""
        actions = [f"{action} {spec}" for _m, _now, action, spec in wrong]
        others = self.init.services.get(PkgWants).others(self)
        failed = [m.name for m, *_ in wrong]
        if self._fight is not None and self._fight.holds(actions, others):
            message = f"{self._fight.message} (not run again while both want this)"
            raise ResourceError(repr(self), message, members=failed)
        self._fight = None
        dnf = self.init.services.get(Dnf)
        if not others:
            return self._apply(wrong)
        with dnf.lock:  # no other transaction of this agent's between the two looks
            before = dnf.installed(list(others))
            applied = self._apply(wrong)
            try:
                after = dnf.installed(list(others))
            except DnfError as err:  # applied; whether it undid another's is unknown
                self.init.log.warning("cannot tell what the transaction did to others: %s", err)
                return applied
        self._fight = undone(actions, others, before, after)
        if self._fight is not None:
            raise ResourceError(repr(self), self._fight.message, members=failed)
        return applied

    def _apply(self, wrong: "List[Tuple[PkgRes, str, str, str]]", dry: bool = False) -> "Applied":
        """One dnf transaction for ``wrong``, and what came of it (see Applied).

        dnf refuses a whole transaction when one argument matches nothing or
        needs what no repository has (dnf4's shell, for several actions, skips
        the first and does nothing at all for the second), and one such package
        must not keep the group's others from being fixed: they run again, in
        one transaction, without it. (A package that conflicts with another of
        the group fails the group: applied apart, the two would undo each other.)
        ``dry``: as the real run would go, dnf changing nothing (mgmt.resources.pkgnoop).
        """
        dnf = self.init.services.get(Dnf)
        try:
            keep = kept(self.members, wrong)
            left_by_dnf, output = self._own_transaction(self._transaction(wrong), dry, keep)
            unknown, broken = unmatched(output), uninstallable(output)
            missing = would_miss(dnf, broken, output) if dry else still_missing(dnf, broken)
            refused = refused_specs(wrong, unknown, missing)
            if not set(refused) - set(unknown):  # only skipped: the rest is applied
                return Applied(left_by_dnf, refused, output)
        except DnfError as err:
            refused = refused_specs(wrong, err.unmatched, err.uninstallable)
            if not refused:
                raise
        rest = [w for w in wrong if w[3] not in refused]
        if not rest:
            return Applied(self._seen, refused, "")
        try:
            left_by_dnf, output = self._own_transaction(self._transaction(rest), dry, keep)
            return Applied(left_by_dnf, refused, output)
        except DnfError as err:  # each failure named with its own packages
            names = ", ".join(m.package for m, *_ in rest)
            said = "; ".join(f"{spec}: {line}" for spec, line in refused.items())
            failed = [m.name for m, *_ in wrong]  # not the members already right
            raise ResourceError(repr(self), f"{names}: {err}; {said}", members=failed) from None

    def _transaction(self, wrong: "List[Tuple[PkgRes, str, str, str]]") -> Transaction:
        transaction = Transaction()
        transaction.nogpgcheck = any(m.params["allowuntrusted"] for m in self.members)
        for _m, _now, action, spec in wrong:
            getattr(transaction, action).append(spec)
        return transaction
