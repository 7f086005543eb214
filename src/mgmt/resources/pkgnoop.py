"""What a pkg group's transaction would do, for ``--noop``, asked of dnf itself.

rpm -q tells what is wrong, not whether dnf can fix it: a name no enabled
repository has, a version none has, a package that needs what none has, a
repository that does not answer. ``--noop`` said "would install" for all of
them while the real run failed. So under ``--noop`` the group's transaction is
given to dnf as the real run gives it, with ``--assumeno`` instead of ``-y``:
dnf fetches metadata as the real run would, resolves, prints what it would
do, and is told no at its prompt. Its answer goes through the real run's own
reading (mgmt.resources.pkg: a package dnf refuses alone fails alone, with the
same words, and the others are resolved again without it).

The cost, and the other ways to ask, measured on a Debian 12 host with dnf
4.14 and its cache warm (a test repository of 15 packages, metadata_expire=0,
so each run fetches repomd.xml as the real one does; 5 runs each):
``dnf install --assumeno`` 0.17 s, ``dnf --assumeno shell`` (install and
remove in one) 0.23 s, against 0.01 s for the ``rpm -q`` a noop check ran
alone before (and 0.16 s for the ``dnf check-update`` it ran for ``newest``).
One such run per check of a group that has something to change; one more when
dnf refuses a package alone, as the real run runs again without it.
``dnf repoquery`` costs the same (0.17 s) but says only whether a name exists,
not whether it can be installed; ``--setopt=tsflags=test`` too (0.17 s here),
but it first downloads every package of the transaction into the cache (on a
real host, megabytes and minutes) and leaves them there: not the no-change a
noop run promises. dnf's own start (loading each repository's solv cache) is
most of the cost; on a host with Fedora's repositories it is that of any dnf
command.

What --noop cannot tell: a scriptlet that would fail (rpm runs none in a
resolve), a signing key dnf would refuse (it is imported after the prompt), and
a transaction that would undo another pkg resource's package
(mgmt.resources.pkgwants looks at what a real transaction did). Nor is dnf
asked after a resource that would change (Resource.changed_before): that one
may be what serves or configures the repository, so dnf's answer now is not
the real run's, and the log says "would install", not asked.
"""

from typing import Dict, List, Set

from mgmt.resources.dnf import Dnf
from mgmt.resources.pkganswer import Applied, Wrong
from mgmt.resources.pkgname import split_arch

# How dnf4 and dnf5 head the part of their transaction table a package is
# left out of; every other heading ("Installing:", "Upgrading:", "Removing:",
# "Installing dependencies:", ...) lists what the transaction would change.
_LEFT_OUT = "Skipping"
_TABLE_END = ("Transaction Summary", "Transaction Summary:")


def touched(output: str) -> Set[str]:
    """The names of the packages dnf's transaction table (4 and 5 alike) says it
    would install, upgrade, downgrade or remove: the first word of each row under
    a heading, but under "Skipping ..." (packages with broken dependencies)."""
    names: Set[str] = set()
    table = listing = False
    for line in output.splitlines():
        words = line.split()
        if not words or set(line.strip()) <= set("=-"):
            continue
        if words[:2] in (["Package", "Architecture"], ["Package", "Arch"]):
            table, listing = True, False  # the table's head: dnf4's shell may print several
        elif line.strip() in _TABLE_END:
            table = listing = False
        elif table and not line[0].isspace() and line.rstrip().endswith(":"):
            listing = not line.startswith(_LEFT_OUT)
        elif listing and line[0].isspace() and words[0] != "replacing":
            names.add(words[0])
    return names


def would_miss(dnf: Dnf, broken: Dict[str, str], output: str) -> Dict[str, str]:
    """Of ``broken`` (packages dnf says need what no repository has), those the
    transaction would leave not installed, as still_missing (mgmt.resources.pkganswer)
    finds them after a real one: with best=False dnf installs an older version."""
    names: List[str] = [name for name in broken if name not in touched(output)]
    there = dnf.installed(names) if names else {}
    return {name: broken[name] for name in names if name not in there}


def would_fail(wrong: List[Wrong], applied: Applied, untold: Dict[str, str]) -> Dict[str, str]:
    """The members of ``wrong`` the real run would fail -> its words (as PkgRes.check_apply
    says them): those dnf refuses alone, and a newer version dnf would not install (it
    needs what no repository has: the real run finds the package left as it was)."""
    failed = dict(untold)
    said = f"; dnf said: {applied.said}" if applied.said else ""
    for m, now, action, spec in wrong:
        if spec in applied.refused:
            failed[m.name] = f"{spec}: dnf {action}: {applied.refused[spec]}"
        elif action == "upgrade" and split_arch(spec)[0] not in touched(applied.output):
            failed[m.name] = f"dnf left {m.package} {now}, wanted {m.state}{said}"
    return failed
