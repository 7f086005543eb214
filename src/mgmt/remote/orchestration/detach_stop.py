"""A detached cluster's hosts stopped: by ``mgmt stop`` (:mod:`.control`), and by a
hand-over that fails (:mod:`.detach`): the agents first (they would only log etcd
errors), then the members and the cluster's directories, on every host whatever
another's error.
"""

from typing import Dict, List, Tuple

from mgmt.errors import RemoteError
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.hosts import Hosts, Lost


def stop_all(
    hosts: Hosts, caching: bool
) -> Tuple[Dict[str, List], Dict[str, RemoteError], List[str]]:
    """Agents first (they would only log etcd errors), then the members and the dirs,
    on every host whatever another's error: what each host stopped, why it could
    not (host -> error; a host lost in the first step is left out of the second),
    and the cluster's hosts not among ``hosts`` (they run on)."""

    def agents(spec: HostSpec) -> Dict:
        return hosts.call(spec.name, "stop", {"what": ["agent"]})

    def rest(spec: HostSpec) -> Dict:
        return hosts.call(spec.name, "stop", {"what": ["etcd"], "clean": True, "caching": caching})

    first, failures = hosts.each_apart(agents, own_threads=True)
    reachable = [s for s in hosts.specs if not isinstance(failures.get(s.name), Lost)]
    second, more = hosts.each_apart(rest, reachable, own_threads=True)
    for name, err in more.items():
        failures.setdefault(name, err)
    stopped = {
        s.name: first.get(s.name, {}).get("stopped", []) + second.get(s.name, {}).get("stopped", [])
        for s in hosts.specs
        if s.name not in failures
    }
    named = {s.name for s in hosts.specs}
    left = [h for h in unnamed([*first.values(), *second.values()]) if h not in named]
    return stopped, failures, left


def unnamed(answers: List[Dict]) -> List[str]:
    """The hosts of the clusters that ``answers`` (of ``prepare`` or ``stop``) come
    from that none of them is, as the clusters' initiators named them (a host
    already stopped answers as none)."""
    named = {a.get("cluster_host") for a in answers}
    return sorted({h for a in answers for h in a.get("cluster_hosts") or []} - named)
