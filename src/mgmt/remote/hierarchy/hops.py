"""``via:``: the hops to a host, parsed and checked, and hosts grouped by first hop.

A graph's ``via:`` names the secondaries its host is reached through, first
hop first: ``via: ssh://user@bastion[:port]`` (or an ~/.ssh/config alias), or
a list of them for a depth of three and more. Hosts whose graphs share a first
hop form one :class:`Subtree`: that secondary runs them (with the rest of
their hops), so the initiator opens one connection and copies one bundle per
secondary, whatever the number of hosts behind it.

Runs on secondaries too (they group their own hosts by the next hop): Python
3.6 and the standard library only.
"""

from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

from mgmt.errors import GraphError
from mgmt.remote.hostspec import HostSpec, parse_remote

BEHIND_PASSWORD = (
    "a password cannot be used for a host behind via: (a secondary logs in with "
    "keys, through your forwarded ssh-agent)"
)


def parse_via(spec: HostSpec, hops: Sequence[str], line: Optional[int]) -> HostSpec:
    """``spec`` with the parsed ``via:`` hops; a GraphError naming file and line."""

    def bad(message: str) -> GraphError:
        return GraphError("via: " + message, str(spec.graph), line)

    parsed = [parse_remote(hop, spec.graph, line, key="via") for hop in hops]
    if spec.password is not None:
        raise GraphError("remote: " + BEHIND_PASSWORD, str(spec.graph), line)
    for hop in parsed[1:]:
        if hop.password is not None:
            raise bad(hop.target + ": " + BEHIND_PASSWORD)
    names = [hop.name for hop in parsed]
    if spec.name in names:
        raise bad(f"the host {spec.name} cannot be its own hop")
    for i, name in enumerate(names):
        if name in names[:i]:
            raise bad(f"{name} is named twice (a loop)")
    return spec._replace(via=tuple(parsed))


class Subtree:
    """The hosts one secondary runs: ``hop`` is the secondary, ``hosts`` are
    reached through it (each with the hops after it still in its ``via``)."""

    def __init__(self, hop: HostSpec):
        self.hop = hop
        self.hosts = []  # type: List[HostSpec]

    @property
    def name(self) -> str:
        return self.hop.name

    def needs_sudo(self) -> bool:
        """Whether a host anywhere below runs through sudo."""
        return any(spec.sudo for spec in self.hosts)

    def sudo_login(self) -> Optional[str]:
        """The login of every host below that runs through sudo, if it is one and
        named (the user whose password sudo asks for, unless sudoers says
        targetpw): the run's password gate of this level is that user's."""
        users = {spec.user for spec in self.hosts if spec.sudo}
        return users.pop() if len(users) == 1 and None not in users else None

    def below(self) -> List[str]:
        """Every host below, secondaries included, as paths relative to this
        secondary (``leaf``, ``s2``, ``s2/leaf``): the summary's rows."""
        paths = []
        direct, subtrees = group_by_first_hop(self.hosts)
        paths += [spec.name for spec in direct]
        for sub in subtrees:
            paths += [sub.name] + [sub.name + "/" + path for path in sub.below()]
        return paths

    def __repr__(self) -> str:
        return f"Subtree({self.hop.name!r}, {len(self.hosts)} hosts)"


def _same_hop(a: HostSpec, b: HostSpec) -> bool:
    return (a.target, a.user, a.port) == (b.target, b.user, b.port)


def group_by_first_hop(specs: Sequence[HostSpec]) -> Tuple[List[HostSpec], List[Subtree]]:
    """The hosts reached directly, and one Subtree per first hop (in input order).

    A hop named with different users or ports in two graphs, or a host that is
    both a hop and a host with a graph of its own, is a GraphError: the run
    would not know which login (or which session) is meant.
    """
    direct = []  # type: List[HostSpec]
    trees = OrderedDict()  # type: Dict[str, Subtree]
    for spec in specs:
        if not spec.via:
            direct.append(spec)
            continue
        hop, rest = spec.via[0], spec.via[1:]
        tree = trees.get(hop.name)
        if tree is None:
            tree = trees[hop.name] = Subtree(hop)
        elif not _same_hop(tree.hop, hop):
            raise GraphError(
                f"via: {hop.name} is given as {hop} here and as {tree.hop} in {tree.hop.graph}",
                str(spec.graph),
            )
        tree.hosts.append(spec._replace(via=rest))  # the rest of it (python:) goes along
    # A host's name is the run's one name for it (one graph each, see load_remotes),
    # wherever it sits: a host behind s2 that is also a hop (s1 of "via: s1", or of
    # "via: [s2, s1]") would run an agent and a secondary side by side, each
    # started by another level, and two rows of one name in the summary.
    hops = OrderedDict()  # type: Dict[str, HostSpec]
    for spec in specs:
        for hop in spec.via:
            hops.setdefault(hop.name, spec)
    for spec in specs:
        if spec.name in hops:
            raise GraphError(
                f"host {spec.name} runs this graph and is also the via: of "
                f"{hops[spec.name].graph}: give its graph to another host, or reach it "
                "another way",
                str(spec.graph),
            )
    return direct, list(trees.values())
