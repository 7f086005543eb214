"""``mgmt run --remote ... --attach``: take a detached cluster back.

The initiator connects to every host of the cluster, pushes the graphs as they
are now (edited while it was away or not), streams each agent's log as it
grows (``host | line``, as an attached run shows its agents' output) and pushes
every saved graph, as an attached run does. ^C ends it: the cluster is then
stopped and removed as ``mgmt stop`` does, or, with ``--detach`` as well, left
running ("detach again").
"""

import threading
from typing import Callable, List, TextIO

from mgmt.errors import MgmtError, RemoteError
from mgmt.log import get_logger
from mgmt.remote import protocol
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.detach import Hosts, stop_all
from mgmt.remote.orchestration.fanout import RunControl, SignalStop
from mgmt.remote.orchestration.graphwatch import GraphWatcher
from mgmt.remote.orchestration.session import GRAPH_COPIED
from mgmt.remote.transport.runner import Process, Runner

log = get_logger("remote")

# Follows the agent's log until the initiator goes (its stdin closes), then ends:
# nothing of an attach stays on the host.
FOLLOW = 'tail -n 0 -F "$1" 2>/dev/null & t=$!; cat >/dev/null; kill "$t"'
DETACHED_AGAIN = (
    "detached again: the cluster runs on (mgmt status / mgmt stop with the same graphs)\n"
)
STOPPED = "cluster stopped and removed\n"


def attach(settings, specs: List[HostSpec], connect: Callable[[HostSpec], Runner], out) -> int:
    control = RunControl()
    printer = _Printer(out)
    with Hosts(specs, connect) as hosts:
        states = hosts.each(lambda s: hosts.call(s.name, "status", {}))
        missing = [name for name, state in states.items() if not state.get("exists")]
        if missing:
            raise MgmtError(f"no detached cluster on {', '.join(missing)}")
        streams: List[Process] = []
        readers: List[threading.Thread] = []
        for spec in specs:
            log_path = states[spec.name]["dir"] + "/agent.log"
            process = hosts.runners[spec.name].start(protocol.sh(FOLLOW, log_path))
            streams.append(process)
            reader = threading.Thread(
                target=_follow, args=(spec.name, process, printer), daemon=True
            )
            reader.start()
            readers.append(reader)

        def push(spec: HostSpec) -> None:
            text = spec.graph.read_text(encoding="utf-8")
            hosts.call(spec.name, "graph", {"graph": text})
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
                    lost = [r.host for r in hosts.runners.values() if r.lost() is not None]
                    if lost:
                        raise RemoteError(lost[0], "lost while attached; the cluster runs on")
        finally:
            if watcher is not None:
                watcher.close()
            for process in streams:
                try:
                    process.close_stdin()
                    process.wait(5)
                except (OSError, EOFError):
                    pass
                process.close()
            for reader in readers:
                reader.join(2)
        if settings.detach:
            out.write(DETACHED_AGAIN)
        else:
            stop_all(hosts, caching=not settings.no_caching)
            out.write(STOPPED)
        out.flush()
    return 0


class _Printer:
    def __init__(self, out: TextIO):
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, host: str, line: str) -> None:
        with self.lock:
            self.out.write(f"{host} | {line}\n")
            self.out.flush()


def _follow(host: str, process: Process, printer: _Printer) -> None:
    try:
        for raw in process.stdout:
            printer(host, raw.decode(errors="replace").rstrip("\r\n"))
    except (OSError, EOFError, ValueError):
        pass  # the connection went: the loop above finds out
