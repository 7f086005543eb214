"""``mgmt status --remote GRAPH...`` and ``mgmt stop --remote GRAPH...``: a detached cluster
seen and ended from any initiator that can reach its hosts.

Both go on when a host cannot be reached: the others are shown or stopped, the
unreachable ones are named, and the exit code is 1. A login the graphs name twice
(a host's name and its address, one user) is shown and stopped once, under the
first name.
"""

from typing import Dict, List, TextIO

from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.detach_stop import stop_all
from mgmt.remote.orchestration.follow import shown_line
from mgmt.remote.orchestration.hosts import Hosts
from mgmt.remote.orchestration.results import describe_failures

CONVERGED = {True: "converged", False: "not converged", None: "unknown"}


def stop_detached(settings, specs: List[HostSpec], connect, out: TextIO) -> int:
    """Stop the agents, then the members, and remove what they left; 1 if a host
    could not be reached, or its stop failed (the others are stopped all the same)."""
    with Hosts(specs, connect, tolerant=True) as hosts:
        second_names = hosts.set_aside_second_names()
        done = stop_all(hosts, caching=not settings.no_caching)
    stopped, failures, left = done.stopped, done.failures, done.left
    for spec in specs:
        if spec.name in second_names:
            out.write(f"{spec.name}: {second_names[spec.name]}: stopped under that name\n")
            continue
        gone = "; its member left the cluster" if spec.name in done.members_left else ""
        if spec.name in hosts.unreachable:
            why = hosts.unreachable[spec.name]
            out.write(f"{spec.name}: UNREACHABLE, nothing stopped{gone}: {why}\n")
            continue
        if spec.name in failures:
            out.write(f"{spec.name}: NOT STOPPED{gone}: {failures[spec.name].message}\n")
            continue
        what = stopped[spec.name]
        out.write(
            f"{spec.name}: {'stopped ' + ', '.join(what) if what else 'nothing running'}{gone}\n"
        )
    if done.not_left:
        out.write(f"the cluster's members stopped here did NOT leave it: {done.not_left}\n")
    if left:  # asked for: one host taken out, say; but the others are not stopped
        lacks = "a member stopped here is one the cluster lacks"
        out.write(
            f"the cluster's other host(s), not named here, left as they are: {', '.join(left)}"
            f"{f' ({lacks})' if done.members_kept else ''}\n"
        )
    out.flush()
    return 1 if hosts.unreachable or failures or done.not_left else 0


def status_detached(settings, specs: List[HostSpec], connect, out: TextIO) -> int:
    """One block per host; 0 if every agent runs, none has failed resources and every
    member is healthy, else 1."""
    with Hosts(specs, connect, tolerant=True) as hosts:
        second_names = hosts.set_aside_second_names()
        states = hosts.each(lambda s: hosts.call(s.name, "status", {}))
    healthy = not hosts.unreachable
    for spec in specs:
        if spec.name in second_names:
            out.write(f"{spec.name}: {second_names[spec.name]}: shown under that name\n")
            continue
        if spec.name in hosts.unreachable:
            out.write(f"{spec.name}: UNREACHABLE: {hosts.unreachable[spec.name]}\n")
            continue
        state = states[spec.name]
        if not state.get("exists"):
            out.write(f"{spec.name}: no detached cluster\n")
            healthy = False
            continue
        # A member down is said too: the cluster runs on, but with one failure less to
        # spare (with one member, none), which a check of the exit code must see.
        member_down = bool(state["cluster"].get("member_url")) and not state["etcd"]["health"]
        healthy = healthy and state["agent"]["running"] and not state.get("failed")
        healthy = healthy and not member_down
        out.write(_describe(spec.name, state))
        if state.get("failed"):
            out.write(describe_failures(spec.name, state["failed"]))
    out.flush()
    return 0 if healthy else 1


def _describe(host: str, state: Dict) -> str:
    agent, etcd, cluster = state["agent"], state["etcd"], state["cluster"]
    member = "no member here"
    if cluster.get("member_url") and not etcd["running"]:  # its pid is a process gone
        last = f", last exit {etcd['exit']}" if etcd.get("exit") else ""
        member = f"member NOT RUNNING ({cluster['member_url']}, pid {etcd['pid']}{last})"
    elif cluster.get("member_url"):
        member = "member healthy" if etcd["health"] else "member UNHEALTHY"
        member += f" ({cluster['member_url']}, pid {etcd['pid']})"
    elif etcd["supervised"]:  # cluster.json gone: the member's address is not known
        member = f"member running (pid {etcd['pid']})"
    exit_status = f", last exit {agent['exit']}" if agent["exit"] else ""
    # Its converged key outlives a dead agent: it says what was, not what is.
    stale = state["converged"] and not agent["running"]
    converged = "no agent to converge" if stale else CONVERGED[state["converged"]]
    lines = [
        f"{host}: agent {'running' if agent['running'] else 'NOT RUNNING'} "
        f"(pid {agent['pid']}{exit_status}), {converged}, "
        f"mgmt {cluster.get('version', '?')} (bundle {cluster.get('bundle_sha256', '?')[:12]}), "
        f"etcd {member}"
    ]
    if not cluster:
        lines.append(
            f"  ({state['dir']}/cluster.json is missing or unreadable; `mgmt stop` ends it)"
        )
    lines += [f"  | {shown_line(line)}" for line in state.get("log", "").splitlines()]
    return "\n".join(lines) + "\n"
