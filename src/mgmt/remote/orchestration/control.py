"""``mgmt stop --remote GRAPH...`` (and ``mgmt status``: :mod:`.status`): a detached
cluster ended from any initiator that can reach its hosts.

It goes on when a host cannot be reached: the others are stopped, the
unreachable ones are named, and the exit code is 1. A login the graphs name twice
(a host's name and its address, one user) is stopped once, under the first name.
"""

from typing import List, TextIO

from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.detach_stop import stop_all
from mgmt.remote.orchestration.hosts import Hosts
from mgmt.remote.orchestration.status import status_detached as status_detached


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
