"""A detached cluster's hosts stopped: by ``mgmt stop`` (:mod:`.control`), and by a
hand-over that fails (:mod:`.detach`).

In order, on every host whatever another's error: the agents (they would only
log etcd errors), then, when the stop takes some of the cluster's members and
leaves others, those members leave the cluster's membership (:func:`leave`),
then the members stop and the cluster's directories go.

A member stopped but left in the membership counts against the quorum of those
that stay: of three, two stopped leave one that has no quorum, and so no
cluster. So they leave it first, while they still run, one at a time, through a
member that stays; those whose etcd is down first (removing a running one first
would leave a membership where the dead one counts for more). A stop of all the
members has nothing to remove. The removal needs the cluster's root account,
which every member host holds (DIR/root.json): it runs on one of the hosts
stopped.
"""

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mgmt.errors import MgmtError, RemoteError
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.hosts import Hosts, Lost


class Stopped(NamedTuple):
    """What a stop did: what each host stopped (host -> names); why a host could not
    be stopped (host -> error; a host lost stopping its agent is left out of the
    rest); the cluster's hosts not among those stopped (they run on); the hosts
    whose members left the membership, those whose members stay in it (all the
    members stopped: the hosts left running have none), and why members that
    should have left it could not (None if none)."""

    stopped: Dict[str, List[str]]
    failures: Dict[str, RemoteError]
    left: List[str]
    members_left: List[str]
    members_kept: List[str]
    not_left: Optional[str]


def stop_all(hosts: Hosts, caching: bool, owner: Optional[str] = None) -> Stopped:
    """Stop what the cluster runs on ``hosts`` (see the module's docstring); with
    ``owner`` (a hand-over that failed: its cluster's token), only what that run
    started (another may have started a cluster on a host meanwhile)."""

    def agents(spec: HostSpec) -> Dict:
        return hosts.call(spec.name, "stop", {"what": ["agent"], "owner": owner})

    def rest(spec: HostSpec) -> Dict:
        request = {"what": ["etcd"], "clean": True, "caching": caching, "owner": owner}
        return hosts.call(spec.name, "stop", request)

    first, failures = hosts.each_apart(agents, own_threads=True)
    reachable = [s for s in hosts.specs if not isinstance(failures.get(s.name), Lost)]
    stopping = [s.name for s in reachable] + list(hosts.unreachable)
    # A hand-over that failed (``owner``) has no cluster to leave: a member its hosts
    # answer for is another run's.
    members_left, members_kept, not_left, gone_before = (
        leave(hosts, first, stopping) if owner is None else ([], [], None, [])
    )
    second, more = hosts.each_apart(rest, reachable, own_threads=True)
    for name, err in more.items():
        failures.setdefault(name, err)
    stopped = {
        s.name: first.get(s.name, {}).get("stopped", []) + second.get(s.name, {}).get("stopped", [])
        for s in hosts.specs
        if s.name not in failures
    }
    named = {s.name for s in hosts.specs}
    found = unnamed([*first.values(), *second.values()])
    left = [h for h in found if h not in named and h not in gone_before]
    return Stopped(stopped, failures, left, members_left, members_kept, not_left)


def leave(
    hosts: Hosts, answers: Dict[str, Dict], stopping: Sequence[str]
) -> Tuple[List[str], List[str], Optional[str], List[str]]:
    """The members of the hosts ``stopping`` (those whose etcd is stopped next, and
    those that cannot be reached, named to be stopped all the same) removed from
    the membership when members stay; ``answers``: the stops of the agents, which
    say the cluster's hosts and members. The hosts whose members left, those whose
    members stay, why these could not leave (None if none had to), and the
    cluster's other hosts whose members left it before (a stop of some hosts
    before: the cluster's records still name them)."""
    found = [a for a in answers.values() if a.get("cluster_members")]
    if not found:
        return [], [], None, []
    # The members are the cluster's first hosts, in order (cluster.HostsEtcd).
    members = dict(zip(found[0]["cluster_hosts"], found[0]["cluster_members"]))
    leaving = [h for h in stopping if h in members]
    staying = [url for host, url in members.items() if host not in stopping]
    if not leaving or not staying:  # none stopped, or all of them: nothing to remove
        return [], leaving, None, []
    holders = [h for h in leaving if answers.get(h, {}).get("root")]
    if not holders:
        why = f"no host stopped here holds the cluster's root account ({', '.join(leaving)})"
        return [], leaving, why, []
    request = {"leaving": [members[h] for h in leaving], "staying": staying}
    try:
        # Each removal may wait for the cluster to elect a leader (up to 30 s there).
        answer = hosts.call(holders[0], "leave", request, timeout=30 + 40 * len(leaving))
    except MgmtError as err:
        return [], leaving, str(err), []
    removed, now = set(answer["removed"]), set(answer.get("members", []))
    gone = [h for h in leaving if members[h] in removed]
    before = [h for h, url in members.items() if h not in stopping and url not in now]
    why = answer.get("not_removed")  # one could not be removed: those after it neither
    kept = [h for h in leaving if h not in gone]
    return gone, kept, why and f"{holders[0]}: leave: {why}", before


def unnamed(answers: List[Dict]) -> List[str]:
    """The hosts of the clusters that ``answers`` (of ``prepare`` or ``stop``) come
    from that none of them is, as the clusters' initiators named them (a host
    already stopped answers as none)."""
    named = {a.get("cluster_host") for a in answers}
    return sorted({h for a in answers for h in a.get("cluster_hosts") or []} - named)
