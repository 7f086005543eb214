"""What only the initiator does for a via: run: host keys handed down, the
agent-forwarding login to secondaries, the top level's :class:`.upstream.Hierarchy`.

Host keys: every host below a secondary is checked against the initiator's
own known_hosts (the files ssh_config names for it, and the global one), and
exactly those lines go down in the secondary's plan. A host known_hosts does
not list gets no line: the secondary's ssh refuses it ("Host key verification
failed"), unless --ssh-accept-new, as for a direct host.

Initiator-only (paramiko): Python 3.9+ allowed here.
"""

import base64
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from mgmt.errors import GraphError
from mgmt.log import get_logger
from mgmt.remote.hierarchy.hops import Subtree, group_by_first_hop
from mgmt.remote.hierarchy.upstream import Hierarchy, SudoSecret
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.graphcheck import CheckedGraphs
from mgmt.remote.transport.connect import ConnectOptions
from mgmt.remote.transport.password_gate import PasswordGates
from mgmt.remote.transport.runner import Runner
from mgmt.remote.transport.same_host import Endpoint
from mgmt.remote.transport.trust import (
    GLOBAL_KNOWN_HOSTS,
    _load_known_hosts,
    host_key_entry,
    known_hosts_files,
)

log = get_logger("remote")


def hosts_below(tree: Subtree) -> List[HostSpec]:
    """Every host a secondary logs in to, itself or through secondaries below it."""
    direct, subtrees = group_by_first_hop(tree.hosts)
    found = list(direct)
    for sub in subtrees:
        found += [sub.hop, *hosts_below(sub)]
    return found


class ConfigLookups:
    """The initiator's ssh_config for each host below, looked up once per run.

    paramiko's lookup reads every Host block (asking getpass.getuser() for each
    one): with the 120 aliases of the 60-leaf bench that was 2 ms a lookup, and
    each leaf was looked up three times, on the main thread, before the first
    secondary was logged in to (0.4 s of the run, measured with py-spy).
    """

    def __init__(self, options: ConnectOptions):
        self.options = options
        self._found: Dict[str, Any] = {}

    def __call__(self, target: str):
        found = self._found.get(target)
        if found is None:
            found = self.options.config().base_ssh_config.lookup(target)
            self._found[target] = found  # two threads may both look: the same answer
        return found


def resolved(spec: HostSpec, lookup: Callable[[str], Any]) -> Tuple[str, int, Optional[str]]:
    """Where ``ssh spec.target`` would go from here: HostName, Port, User
    (``lookup``: the ssh_config of a host, a :class:`ConfigLookups`)."""
    found = lookup(spec.target)
    port = spec.port or int(found.get("port") or 22)
    return found.get("hostname") or spec.target, port, spec.user or found.get("user")


def check_one_name_per_host(subtrees: List[Subtree], lookup: Callable[[str], Any]) -> None:
    """GraphError for two names below one secondary that reach one host (an address
    and an alias of it, a hop and a host with a graph): two agents there would fight,
    or one host would be both; and for a host below a secondary that is the secondary
    itself under another name. Compared as the secondary will reach them, through the
    aliases handed down (:func:`trust_below`); one level at a time, as two bastions
    may well each have a 10.0.0.5 behind them. (Direct hosts are compared by the
    address their connection reached, see mgmt.remote.transport.same_host.)"""
    for tree in subtrees:
        direct, below = group_by_first_hop(tree.hosts)
        hop = Endpoint.of(*resolved(tree.hop, lookup)[:2])
        seen: Dict[Endpoint, HostSpec] = {}
        for spec in [*direct, *(sub.hop for sub in below)]:
            reach = Endpoint.of(*resolved(spec, lookup)[:2])
            if reach == hop:  # the same name in both places is refused at load (hops.py)
                raise GraphError(
                    f"via: the host {spec.name} is reached through {tree.hop.name}, which is "
                    f"the same host (both reach {reach}): a host cannot be its own hop",
                    str(spec.graph),
                )
            first = seen.setdefault(reach, spec)
            if first.name != spec.name:
                raise GraphError(
                    f"{spec.name} is the same host as {first.name} of {first.graph} (both "
                    f"reach {reach} through {tree.hop.name}): two agents there would fight "
                    "over its resources; give the host one graph, or reach it one way",
                    str(spec.graph),
                )
        check_one_name_per_host(below, lookup)


def trust_below(tree: Subtree, lookup: Callable[[str], Any]) -> Dict[str, Any]:
    """What ``tree``'s secondary is told of the hosts below it: the initiator's
    known_hosts lines for them, and what its ~/.ssh/config says of their names
    (HostName, Port, User only), so that they mean the same there."""
    lines = []
    aliases: Dict[str, Dict[str, Any]] = {}
    for spec in hosts_below(tree):
        hostname, port, user = resolved(spec, lookup)
        # A block that only sets Port or User (``Host 10.0.3.*``, no HostName) is
        # handed down too: without it the secondary would log in on port 22.
        if (hostname, port, user) != (spec.target, spec.port or 22, spec.user):
            aliases[spec.target] = {"hostname": hostname, "port": port, "user": user}
        files = known_hosts_files(lookup(spec.target))
        keys, _revoked = _load_known_hosts([*files, GLOBAL_KNOWN_HOSTS])  # left out of keys
        entry = host_key_entry(hostname, port)
        for key_type, key in (keys.lookup(entry) or {}).items():
            lines.append(f"{entry} {key_type} {key.get_base64()}\n")
    return {"known_hosts": "".join(lines), "aliases": aliases}


class NewKeys:
    """Keys secondaries accepted with --ssh-accept-new, added to the initiator's
    known_hosts as for a host it logs in to itself: only for a host below that
    secondary, and never over a key known_hosts already has (a secondary cannot
    vouch for any other host, nor replace a key)."""

    def __init__(
        self, subtrees: List[Subtree], options: ConnectOptions, lookup: Callable[[str], Any]
    ):
        self.options = options
        self.entries: Dict[str, Dict[str, HostSpec]] = {}
        for tree in subtrees:
            below = {host_key_entry(*resolved(h, lookup)[:2]): h for h in hosts_below(tree)}
            self.entries[tree.name] = below

    def __call__(self, secondary: str, key: Tuple[str, str, str]) -> None:
        entry, key_type, blob = key
        spec = self.entries.get(secondary, {}).get(entry)
        if spec is None or not self.options.accept_new:
            log.warning("%s: ignored a host key for %s, not a host below it", secondary, entry)
            return
        files = known_hosts_files(self.options.config().base_ssh_config.lookup(spec.target))
        keys, revoked = _load_known_hosts([*files, GLOBAL_KNOWN_HOSTS])
        if keys.lookup(entry):
            return  # known already (then the secondary was handed it): never replaced
        if blob in revoked:
            log.warning("%s: ignored a revoked host key for %s", secondary, entry)
            return
        files[0].parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(files[0], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(f"{entry} {key_type} {blob}\n")
        digest = base64.b64encode(hashlib.sha256(base64.b64decode(blob)).digest())
        fingerprint = "SHA256:" + digest.decode().rstrip("=")
        log.warning(
            "%s: added new host key %s %s to %s (accepted through %s)",
            spec.name,
            key_type,
            fingerprint,
            files[0],
            secondary,
        )


def top_hierarchy(
    subtrees: List[Subtree],
    plan_dir: Path,
    options: ConnectOptions,
    plan_options: Dict[str, Any],
    connect: Callable[[HostSpec], Runner],
    checked: CheckedGraphs,
    sudo: Optional[SudoSecret] = None,
    gates: Optional[PasswordGates] = None,
) -> Hierarchy:
    """The initiator's level: secondaries logged in to with the agent forwarded;
    ``checked``: what the hosts below are sent for their graphs (edits checked);
    ``sudo``: the run's sudo token and password, for the hosts below that use it;
    ``gates``: the run's password gates, which the secondaries take too."""
    lookup = ConfigLookups(options)
    check_one_name_per_host(subtrees, lookup)
    return Hierarchy(
        subtrees,
        plan_dir,
        lambda tree: trust_below(tree, lookup),
        plan_options,
        connect=connect,
        on_new_host_key=NewKeys(subtrees, options, lookup),
        sudo=sudo,
        payload=checked,
        standing=checked.standing,
        gates=gates,
    )
