"""What dnf's answer to a pkg group's transaction says of each of its packages.

dnf answers a whole transaction, and a group (see mgmt.resources.pkg) must
know which of its members that answer was about: the one dnf refused alone
(an argument it has no match for, a package that needs what no repository
has) fails alone while the others are applied; a name dnf answered with
another package (one that provides or obsoletes it) is right, though rpm -q
by that name never finds it.
"""

from typing import Any, Dict, List, NamedTuple, Set, Tuple

from mgmt.resources.base import ResourceError
from mgmt.resources.dnf import Dnf, already_installed, said_by_dnf
from mgmt.resources.pkgname import split_arch

# (member, what it is now, dnf action, spec), as PkgRes.plan lists what is wrong.
Wrong = Tuple[Any, str, str, str]


class Applied(NamedTuple):
    """What came of a group's transaction (see PkgRes._apply)."""

    left_by_dnf: Tuple[Tuple[str, int, int], ...]  # the rpm database as dnf left it
    refused: Dict[str, str]  # specs dnf refused alone -> its words
    output: str  # what dnf said

    @property
    def said(self) -> str:
        """The end of what dnf said, in one line."""
        return said_by_dnf(self.output) if self.output else ""

    @property
    def already(self) -> Set[str]:
        """The packages dnf said were installed already."""
        return already_installed(self.output)


def refused_specs(
    wrong: List[Wrong], unknown: Dict[str, str], broken: Dict[str, str]
) -> Dict[str, str]:
    """The specs of ``wrong`` dnf has no package for (``unknown``: by argument) or
    cannot install (``broken``: by package name) -> its words."""
    refused = {}
    for m, _now, action, spec in wrong:
        name = split_arch(spec if action == "upgrade" else m.package)[0]
        if spec in unknown:
            refused[spec] = unknown[spec]
        elif action != "remove" and name in broken:
            refused[spec] = broken[name]
    return refused


def still_missing(dnf: Dnf, broken: Dict[str, str]) -> Dict[str, str]:
    """Of ``broken`` (packages dnf said need what no repository has, in a run that
    succeeded), those still not installed: with best=False (dnf's own default)
    dnf says so of the newest version, and installs an older one."""
    there = dnf.installed(list(broken)) if broken else {}
    return {name: line for name, line in broken.items() if name not in there}


def answered_by_others(
    dnf: Dnf, still: List[Wrong], already: Set[str], since: int
) -> Dict[str, bool]:
    """The names of ``still`` (wrong after a transaction) to install that dnf
    answered with another package -> whether that one was there already (dnf
    said so: the name was right before the transaction) or this very transaction
    installed it (at ``since`` or later). That other package provides the name
    (``yum-utils`` is a name of dnf-plugins-core) or obsoletes it (a package
    renamed). rpm -q by name never finds such a name: each check would install it
    again and fail. Only dnf's answer counts: while a package of that very name
    exists, dnf installs it (curl, not the curl-minimal that provides curl)."""
    names = [m.package for m, _now, action, _spec in still if action == "install"]
    found = dnf.standing_in(names) if names else {}
    return {
        name: other in already for name, (other, _version, when) in found.items()
        if other in already or when >= since
    }  # fmt: skip


def members_failed(
    owner: str, err: Exception, wrong: List[Wrong], untold: Dict[str, str]
) -> ResourceError:
    """The group ``owner``'s error for ``err`` (its transaction failed): about the
    members of ``wrong`` it was about (those already right did not fail) and those
    ``untold``, each with its own line where ``err`` has one (what ResourceError
    said of it, or the scriptlet of its package that failed)."""
    failed = dict(untold)
    text = err.message if isinstance(err, ResourceError) else str(err)
    scriptlets = getattr(err, "scriptlets", {})
    for m, _now, action, spec in wrong:
        told = getattr(err, "said_of", {}).get(m.name)
        name = split_arch(spec if action == "upgrade" else m.package)[0]
        if told is None and name in scriptlets:
            told = f"{m.package}: dnf {action}: {scriptlets[name]}"
        about = getattr(err, "members", None)
        if told is not None or about is None or m.name in about:
            failed[m.name] = told or f"{m.package}: {text}"
    return ResourceError(owner, "; ".join(dict.fromkeys(failed.values())), failed)
