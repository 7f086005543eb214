"""What is wrong with a pkg group's packages: one rpm query, and dnf for ``newest``.

The check half of mgmt.resources.pkg: it looks and changes nothing, under
``--noop`` and for the real run alike; the resource fixes what it lists.
"""

from typing import Any, Dict, List, Sequence, Set, Tuple

from mgmt.resources.dnf import Dnf, DnfError
from mgmt.resources.pkgname import pinned

STATES = ("installed", "uninstalled", "newest")


def plan_members(
    dnf: Dnf, members: Sequence[Any], stood_in: Set[str]
) -> Tuple[List[Tuple[Any, str, str, str]], Dict[str, str]]:
    """What is wrong: (member, what it is now, dnf action, spec) for each of the
    group's ``members`` (PkgRes) that is not as wanted; and the members whose state
    cannot be told -> why (``newest`` while the repositories cannot be read: the
    others are checked all the same). ``stood_in``: the names dnf installed another
    package for before (see mgmt.resources.pkganswer)."""
    # The name and, for a pinned version, name-version: "installed 1.0" is
    # not "the pinned 2.0 is installed". One rpm run answers each apart.
    queries = [m.package for m in members]
    queries += [pinned(m.package, m.state) for m in members if m.state not in STATES]
    installed = dnf.installed(list(dict.fromkeys(queries)))
    # The package that stands for each name wanted installed: the one of that
    # name, else the one dnf installed for it before (see mgmt.resources.pkganswer).
    bearer = {name: (name, version) for name, version in installed.items()}
    asked = {m.package for m in members if m.state in ("installed", "newest")}
    asked = sorted((asked & stood_in) - set(bearer))
    bearer.update({n: found[:2] for n, found in dnf.standing_in(asked).items()})
    newest = [bearer[m.package][0] for m in members
              if m.state == "newest" and m.package in bearer]  # fmt: skip
    nogpg = any(m.params["allowuntrusted"] for m in members)
    untold: Dict[str, str] = {}
    try:
        upgradable = set(dnf.upgradable(newest, nogpg)) if newest else set()
    except DnfError as err:
        upgradable = set()
        for m in members:
            if m.state == "newest" and m.package in bearer:
                untold[m.name] = f"{m.package}: {err}"
    wrong = []
    for m in members:
        name, now = bearer.get(m.package, (m.package, ""))
        is_now = f"installed {now}" if now else "not installed"
        is_now = f"installed as {name} {now}" if name != m.package else is_now
        if m.state == "uninstalled":
            if m.package in installed:
                wrong.append((m, is_now, "remove", m.package))
        elif m.state in ("installed", "newest") and not now:
            wrong.append((m, is_now, "install", m.package))
        elif m.state == "newest" and name in upgradable and m.name not in untold:
            wrong.append((m, f"{is_now}, a newer one is available", "upgrade", name))
        elif m.state not in STATES and pinned(m.package, m.state) not in installed:
            wrong.append((m, is_now, "install", pinned(m.package, m.state)))
    return wrong, untold
