"""``mgmt run --remote ... --attach``: take a detached cluster back.

The initiator connects to every host of the cluster, pushes the graphs as they
are now (edited while it was away or not), streams each agent's log as it
grows (``host | line``, as an attached run shows its agents' output) and pushes
every saved graph that passes the checks, as an attached run does. ^C ends it:
the cluster is then stopped and removed as ``mgmt stop`` does, or, with
``--detach`` as well, left running ("detach again").
"""

from typing import Callable, List

from mgmt.errors import MgmtError, RemoteError
from mgmt.log import get_logger
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.detach import Hosts
from mgmt.remote.orchestration.fanout import RunControl, SignalStop
from mgmt.remote.orchestration.follow import LogFollower
from mgmt.remote.orchestration.graphcheck import CheckedGraphs
from mgmt.remote.orchestration.graphwatch import GraphWatcher
from mgmt.remote.orchestration.session import GRAPH_COPIED
from mgmt.remote.transport.runner import Runner

log = get_logger("remote")

DETACHED_AGAIN = (
    "detached again: the cluster runs on (mgmt status / mgmt stop with the same graphs)\n"
)
STOPPED = "cluster stopped and removed\n"
LOST = "{why} while attached; the cluster runs on"
DROPPED = "connection lost"  # closed under us: said at once, not after --lost-timeout
AGENT_DOWN = (
    "the cluster's agent does not run here (the host rebooted?): edits reach it but nothing "
    "applies them; `mgmt stop`, then --detach again, starts it anew"
)


def attach(
    settings,
    specs: List[HostSpec],
    connect: Callable[[HostSpec], Runner],
    out,
    stop: Callable[[], int],
) -> int:
    """``stop()``: what ^C does without --detach, ``mgmt stop`` on connections of its
    own (one of the attach's may be gone: a host rebooted), its exit code."""
    control = RunControl()
    with Hosts(specs, connect) as hosts:
        states = hosts.each(lambda s: hosts.call(s.name, "status", {}))
        missing = [name for name, state in states.items() if not state.get("exists")]
        if missing:
            raise MgmtError(f"no detached cluster on {', '.join(missing)}")
        # A host rebooted: its supervisor is gone, and nothing applies what is pushed.
        down = [spec.name for spec in specs if not states[spec.name]["agent"]["running"]]
        for name in down:
            log.error("%s: %s", name, AGENT_DOWN)
        logs = {s.name: (states[s.name]["dir"] + "/agent.log", states[s.name]["log_size"])
                for s in specs}  # fmt: skip
        # A follow ends when its connection does: the loop below looks at once.
        follower = LogFollower(hosts.runners, logs, out, ended=lambda _host: control.wake.set())

        # Checked as an attached run checks an edit: a bad one is said and not copied
        # (the cluster would restart its agent on it, after a reboot or a crash).
        checked = CheckedGraphs(spec.graph for spec in specs)

        def push(spec: HostSpec) -> None:
            payload, _json = checked(spec.graph)
            hosts.call(spec.name, "graph", {"graph": payload.decode("utf-8")})
            log.info("%s: %s", spec.name, GRAPH_COPIED.format(path=spec.graph))

        watcher = None
        try:
            with SignalStop(control):  # before anything is said: a ^C is never missed
                hosts.each(push)
                if not settings.no_watch:
                    watcher = GraphWatcher(specs, push)
                log.info("attached to %d host(s); ^C to %s", len(specs),
                         "detach again" if settings.detach else "stop the cluster")  # fmt: skip
                while control.stop_reason is None:
                    control.wake.wait(1.0)
                    control.wake.clear()
                    for name, runner in hosts.runners.items():
                        why = runner.lost() or (None if _connected(runner) else DROPPED)
                        if why is not None:
                            raise RemoteError(name, LOST.format(why=why))
        finally:
            if watcher is not None:
                watcher.close()
            follower.close()
        if settings.detach:
            out.write(DETACHED_AGAIN)
            out.flush()
            return 1 if down else 0
    code = stop()
    if code == 0:
        out.write(STOPPED)
        out.flush()
    return code


def _connected(runner: Runner) -> bool:
    """Whether the connection is still open (a runner that cannot tell: yes)."""
    return getattr(runner, "connected", True)
