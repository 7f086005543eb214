"""Detached clusters: ``mgmt run --remote ... --detach``, ``mgmt status`` and ``mgmt stop``.

The seed's Closure: "disconnect from the child hosts and let this new cluster
take on a new life". A detached run does not go through the initiator's etcd
at all, so there is nothing to move over at the hand-over and nothing exported
can be lost in it: the cluster's own etcd (:class:`~.cluster.HostsEtcd`) is
started on the hosts first, then every agent, dialling the members directly.
In order, one phase at a time on every host at once:

1. connect, and ``prepare`` (mgmt.remote.protocol.detached): is the bundle
   cached, which etcd binary, which address, is a cluster already there (what
   a cluster whose processes all ended left is removed);
2. copy what is missing: the bundle (cached by sha256, as an attached run
   caches it) and, for a member without etcd, the initiator's own etcd binary
   (cached by its sha256 the same way);
3. check that the members can listen on their addresses and reach each other
   (``probe``), start them, turn auth on once they have a quorum;
4. start the agents (supervised in a session of their own, restarted when
   they fail, output to DIR/agent.log);
5. follow the agents' logs (``host | line``) until every host says it
   converged (not with --converged-timeout 0), print how to see and stop the
   cluster, and exit 0 (1, naming them, if resources ended failed: the cluster
   runs on, and an event on such a resource, or an edit of it, retries it).

A run that fails half-way, or is interrupted (^C, or SIGTERM or SIGHUP: exit 128+N,
:mod:`.detach_signals`), stops what it started (:mod:`.detach_stop`; what it started
alone: another run may have started a cluster on a host since), once the commands
under way on the hosts have ended (one still on its way would start its process
after the stop); after the hand-over the signals end the initiator as they would
any program. ``status`` (:mod:`.status`) and ``stop`` (:mod:`.control`) take the
same graphs (they name the hosts). The hosts keep the cluster in
~/.local/state/mgmt/detached of the login user.
"""

import time
from typing import Any, Dict, List, Optional, TextIO, Tuple

from mgmt import __version__
from mgmt.errors import InputError, MgmtError, RemoteError
from mgmt.log import get_logger
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.cluster import (
    CLIENT_PORT,
    PEER_PORT,
    HostsEtcd,
    check_size,
    new_token,
    parse_addresses,
)
from mgmt.remote.orchestration.detach_signals import Signalled, SignalsStop
from mgmt.remote.orchestration.detach_stop import stop_all, unnamed
from mgmt.remote.orchestration.follow import LogFollower
from mgmt.remote.orchestration.hosts import DETACHED as DETACHED  # the hosts' program, for tests
from mgmt.remote.orchestration.hosts import Hosts
from mgmt.remote.orchestration.results import describe_failures
from mgmt.remote.protocol import programs

log = get_logger("remote")

SUPERVISOR = programs.read("supervise.py")

CONVERGE_POLL = 0.5
HANDED_OVER = (
    "cluster handed over: {hosts} host(s), etcd on {members}; the agents run on without "
    "this initiator.\n  see it:  mgmt status {graphs}\n  stop it: mgmt stop {graphs}\n"
)


def run_detached(settings, specs: List[HostSpec], bundle, connect, out: TextIO) -> int:
    """Start the cluster on ``specs`` and hand it over (see the module's docstring);
    128+N when SIGTERM or SIGHUP (N) ended it before the hand-over."""
    graphs = " ".join(f"--remote {s.graph}" for s in specs)
    # The cluster is the sudo user's: status and stop must go through sudo as well.
    if settings.sudo_user:
        graphs += f" --sudo-user {settings.sudo_user}"
    elif settings.sudo:
        graphs += " --sudo"
    if settings.ask_sudo_password:
        graphs += " --ask-sudo-password"
    try:
        with SignalsStop() as signals:
            cluster, failed = _hand_over(settings, specs, bundle, connect, out, graphs, signals)
    except Signalled as sig:
        if not getattr(sig, "said", False):
            log.error("interrupted by %s", sig.name)
        return 128 + sig.signum
    members = ", ".join(f"{m.host} ({m.client_url})" for m in cluster.members)
    out.write(HANDED_OVER.format(hosts=len(specs), members=members, graphs=graphs))
    for host, failures in failed.items():
        out.write(describe_failures(host, failures))
    out.flush()
    # As an attached run ends: 1 when a host converged with resources failed. The
    # cluster runs on (an event on one, or an edit of it, retries it); `mgmt status`
    # shows them.
    return 1 if failed else 0


def _hand_over(settings, specs, bundle, connect, out, graphs, signals: SignalsStop):
    """The phases, up to the hand-over (then ``signals`` are over): the cluster's
    members, and the hosts whose resources ended failed."""
    names = [s.name for s in specs]
    addresses = parse_addresses(settings.cluster_address, names)
    with Hosts(specs, connect) as hosts:
        prepared = hosts.each(
            lambda s: hosts.call(s.name, "prepare", _prepare_request(hosts, s, bundle))
        )
        busy = [n for n, p in prepared.items() if p["existing"]]
        if busy:
            raise MgmtError(_already_runs(busy, prepared, graphs))
        _remove_remains(hosts, prepared)
        token = new_token()  # what this run starts is known by it: see _stop_started
        try:
            for name, found in prepared.items():
                addresses.setdefault(name, found.get("address") or "")
            clocks = [found["time"] for found in prepared.values() if "time" in found]
            cluster = HostsEtcd(names, addresses, settings.cluster_size, token=token, clocks=clocks)
            _copy_missing(hosts, prepared, bundle, cluster)
            _start_members(hosts, prepared, cluster)
            first = cluster.members[0]
            log.info("cluster etcd: %s; turning auth on", ", ".join(cluster.seeds))
            auth = {
                "client_url": first.client_url,
                "peer_urls": [m.peer_url for m in cluster.members],
                "run": list(cluster.credentials),
                "bundle": prepared[first.host]["bundle"],
            }
            # Through each(), as every phase: a ^C waits for it to end (see there).
            on_first = [s for s in hosts.specs if s.name == first.host]
            answers = hosts.each(lambda s: hosts.call(s.name, "auth", auth, timeout=90), on_first)
            # Every member host keeps the root account: a stop of some of the hosts
            # removes their members through it (detach_stop.leave).
            root = answers[first.host].get("root")
            hosts.each(
                lambda spec: _start_agent(hosts, spec, prepared, cluster, settings, bundle, root)
            )
            # Their output, live, until the hand-over (as an attached run shows it).
            logs = {name: (found["dir"] + "/agent.log", 0) for name, found in prepared.items()}
            follower = LogFollower(hosts.runners, logs, out)
            sizes, failed = None, {}
            try:
                if settings.converged_timeout != 0:
                    sizes, failed = _wait_converged(hosts, max(settings.converged_timeout, 0))
            finally:
                follower.close(sizes)
            signals.over()
        except BaseException as err:
            if isinstance(err, Signalled):
                why = f"interrupted by {err.name}"
                err.said = True  # type: ignore[attr-defined]
            elif isinstance(err, KeyboardInterrupt):
                why = "interrupted"
            else:
                why = "the cluster did not start"
            log.error("%s before the hand-over; stopping what was started", why)
            _stop_started(hosts, token)
            raise
    return cluster, failed


def _already_runs(busy: List[str], prepared: Dict[str, Dict], graphs: str) -> str:
    """Why a run to hosts where a cluster runs is refused, and how to stop it: with
    the graphs of all its hosts (stopped with these alone, another of its hosts would
    run on, cut off from a cluster that lost its members)."""
    others = [h for h in unnamed([prepared[name] for name in busy]) if h not in prepared]
    if not others:
        return (
            f"a detached cluster already runs on {', '.join(busy)}: `mgmt stop {graphs}` "
            "first (or give it these graphs: `mgmt run --attach --detach` with them)"
        )
    return (
        f"a detached cluster already runs on {', '.join(busy)}, whose hosts are also "
        f"{', '.join(others)}, which these graphs do not name: stop it first with the graphs "
        f"of all its hosts, `mgmt stop {graphs}` and the graph of {', '.join(others)} (these "
        f"alone would leave {', '.join(others)} running, cut off from the cluster)"
    )


def _stop_started(hosts: Hosts, token: str) -> None:
    """What a failed or interrupted hand-over started goes, on every host still
    reachable; each one that is not is said, in one line. Only what this run
    started (its processes' owner is ``token``): another run may have started a
    cluster on one of the hosts since ``prepare``."""
    for host, err in stop_all(hosts, caching=True, owner=token).failures.items():
        log.error("could not stop what was started on %s: %s", host, err.message)


def _remove_remains(hosts: Hosts, prepared: Dict[str, Dict]) -> None:
    """What a cluster whose processes all ended left on a host goes before a new one
    starts there: etcd would take up the dead cluster's data (its own auth on) and
    ignore the new cluster's flags."""
    dead = [spec for spec in hosts.specs if prepared[spec.name].get("remains")]
    for spec in dead:
        log.warning(
            "%s: a detached cluster that no longer runs left its state here (%s); "
            "removing it to start anew", spec.name, prepared[spec.name]["dir"],
        )  # fmt: skip
    # Only remains: another run may have started a cluster there since (refused then).
    stop = {"what": ["agent", "etcd"], "clean": True, "caching": True, "remains": True}
    hosts.each(lambda spec: hosts.call(spec.name, "stop", stop), dead)


def _start_agent(
    hosts: Hosts, spec: HostSpec, prepared, cluster: HostsEtcd, settings, bundle, root=None
):
    """One host's agent: its graph, its settings (the cluster's seeds and credentials);
    on a member's host, the cluster's ``root`` account too (user, password)."""
    from mgmt.remote.orchestration.context import graph_payload
    from mgmt.settings import agent_settings

    text, _ = graph_payload(spec.graph)
    names = [s.name for s in hosts.specs]
    member = cluster.member(spec.name)
    fields = {
        **agent_settings(settings),
        "hostname": spec.name,
        "no_server": True,
        "seeds": cluster.seeds,
        "credentials": list(cluster.credentials),
    }
    hosts.call(spec.name, "agent", {
        "bundle": prepared[spec.name]["bundle"],
        "build_id": bundle.build_id,
        "graph_name": spec.graph.name,
        "graph": text.decode("utf-8"),
        "launcher": programs.LAUNCHER,
        "supervisor": SUPERVISOR,
        "owner": cluster.token,
        "settings": fields,
        "root": root if member else None,
        "cluster": {  # what `mgmt status` shows, and what `mgmt stop` removes
            "token": cluster.token,
            "members": cluster.seeds,
            "member_url": member.client_url if member else None,
            "bundle": prepared[spec.name]["bundle"],
            "bundle_sha256": bundle.sha256,
            "version": __version__,
            "etcd_copy": prepared[spec.name].get("etcd_copy"),
            "graph": spec.graph.name,
            "started": time.time(),
            "host": spec.name,  # and all the cluster's hosts: see unnamed()
            "hosts": names,
        },
    })  # fmt: skip
    log.info("%s: agent detached (log in its ~/.local/state/mgmt/detached)", spec.name)


def _prepare_request(hosts: Hosts, spec: HostSpec, bundle) -> Dict[str, Any]:
    """``address``: the one this initiator reached the host at, for when the host does
    not see SSH_CONNECTION (sudo resets the environment)."""
    endpoint = getattr(hosts.runners[spec.name], "endpoint", lambda: None)()
    return {
        "sha256": bundle.sha256,
        "etcd_sha256": _local_etcd()[1],
        "address": endpoint.address if endpoint else None,
    }


_ETCD: List[Any] = []


def _local_etcd():
    """The initiator's etcd binary and its sha256 (once), to copy to members without one."""
    if not _ETCD:
        from pathlib import Path

        from mgmt.remote.orchestration.bundlefile import sha256_file
        from mgmt.world.server import find_etcd

        try:
            found = Path(find_etcd())
            _ETCD.extend([found, sha256_file(found)])
        except MgmtError:
            _ETCD.extend([None, ""])
    return _ETCD[0], _ETCD[1]


def _copy_missing(hosts: Hosts, prepared: Dict[str, Dict], bundle, cluster: HostsEtcd) -> None:
    def copy(spec: HostSpec) -> None:
        found = prepared[spec.name]
        if not found["bundle_ok"]:
            log.info("%s: copying the bundle (%d bytes)", spec.name, bundle.size)
            hosts.copy(spec.name, bundle.path, found["bundle"], 0o700)
        if cluster.member(spec.name) is not None and found["etcd"] is None:
            binary, _sha = _local_etcd()
            if binary is None or not found.get("etcd_cache"):
                raise RemoteError(spec.name, "no etcd binary on the host, nor here to copy")
            log.info("%s: no etcd on the host; copying this one (%s)", spec.name, binary)
            hosts.copy(spec.name, binary, found["etcd_cache"], 0o700)
            found["etcd"] = found["etcd_copy"] = found["etcd_cache"]

    hosts.each(copy)


def _start_members(hosts: Hosts, prepared: Dict[str, Dict], cluster: HostsEtcd) -> None:
    members = [s for s in hosts.specs if cluster.member(s.name) is not None]

    def probe(spec: HostSpec) -> None:
        member = cluster.member(spec.name)
        others = [(m.address, PEER_PORT) for m in cluster.members if m != member]
        hosts.call(spec.name, "probe", {
            "address": member.address, "ports": [CLIENT_PORT, PEER_PORT], "others": others,
        })  # fmt: skip

    def start(spec: HostSpec) -> None:
        member = cluster.member(spec.name)
        hosts.call(spec.name, "etcd", {
            "binary": prepared[spec.name]["etcd"],
            "name": member.name,
            "address": member.address,
            "client_port": CLIENT_PORT,
            "peer_port": PEER_PORT,
            "peers": cluster.peers,
            "token": cluster.token,
            "tls": cluster.tls(member)._asdict(),
            "supervisor": SUPERVISOR,
            "owner": cluster.token,
        })  # fmt: skip

    hosts.each(probe, members)
    hosts.each(start, members)


def _wait_converged(hosts: Hosts, quiet: float) -> Tuple[Dict[str, int], Dict[str, List]]:
    """Until every agent has said it converged, together, for ``quiet`` seconds; the
    sizes of their logs then, and the hosts whose resources ended failed."""
    since: Optional[float] = None
    while True:
        states = hosts.each(lambda s: hosts.call(s.name, "status", {}))
        for name, state in states.items():
            if not state.get("exists") or not state["agent"]["supervised"]:
                raise RemoteError(name, "the agent is not running:\n" + state.get("log", ""))
        if all(state.get("converged") for state in states.values()):
            since = since or time.monotonic()
            if time.monotonic() - since >= quiet:
                log.info("every host converged")
                sizes = {name: state["log_size"] for name, state in states.items()}
                return sizes, {n: state["failed"] for n, state in states.items() if state["failed"]}
        else:
            since = None
        time.sleep(CONVERGE_POLL)


# Taken (the user asked for it), but said: a quorum of two needs both.
TWO_MEMBERS = (
    "--cluster-size 2: two etcd members survive no member's failure (both make the quorum);"
    " 1 or 3 would do better"
)


def check_flags(settings, specs: List[HostSpec]) -> None:
    """Flags that make no sense with a detached run, refused before connecting."""
    if settings.seeds:
        raise InputError("--detach cannot be used with --seeds: the cluster runs its own etcd")
    if settings.json:  # nothing would be printed: the hand-over has no run document
        flag = "--detach" if settings.detach else "--attach"
        raise InputError(f"--json cannot be used with {flag}: see `mgmt status` for the cluster")
    if settings.detach and not settings.attach and settings.no_watch:
        raise InputError(
            "--no-watch cannot be used with --detach: the cluster's agents must reload the "
            "graphs `mgmt run --attach` gives them (with --attach, it keeps your files unwatched)"
        )
    if settings.detach and check_size(settings.cluster_size, len(specs)) == 2:
        log.warning(TWO_MEMBERS)
    parse_addresses(settings.cluster_address, [s.name for s in specs])
