"""One remote run from the initiator's side: settings in, exit code out.

Reads the --remote graphs, finds the bundle, starts the run's etcd with a
per-run user, runs the fan-out, prints the per-host summary. The same function
serves ``mgmt run --remote`` and ``fab deploy`` (which passes its Fabric config).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO

from mgmt.errors import InputError
from mgmt.log import get_logger
from mgmt.remote.hostspec import HostSpec
from mgmt.settings import Settings
from mgmt.statedir import state_dir

log = get_logger("remote")

CCONNS_WITHOUT_TIMEOUT = (
    "{waiting} remote(s) wait for one of {cconns} slot(s), and without --converged-timeout "
    "a running remote never frees its slot: they start only when one ends"
)


def agent_options(settings: Settings) -> Dict[str, Any]:
    """Settings handed on to every remote agent.

    --converged-timeout is not among them: an agent that exits by itself stops
    collecting what hosts starting later export. Agents report their idle state
    in etcd instead, and the initiator decides (see :mod:`mgmt.remote.fanout`).
    """
    return {"noop": settings.noop, "no_watch": settings.no_watch, "verbosity": settings.verbosity}


class _Printer:
    """Agent output, one whole line at a time, prefixed with its host."""

    def __init__(self, out: TextIO):
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, host: str, line: str) -> None:
        with self.lock:
            self.out.write(f"{host} | {line}\n")
            self.out.flush()


def run(
    settings: Settings,
    fabric_config=None,
    bundle: Optional[Path] = None,
    out: Optional[TextIO] = None,
    specs: Optional[List[HostSpec]] = None,
) -> int:
    """``specs`` (fab deploy): hosts given directly, instead of the graphs' remote: keys."""
    from mgmt.remote.bundlefile import find_bundle
    from mgmt.remote.cluster import RunCluster
    from mgmt.remote.connect import ConnectOptions
    from mgmt.remote.fanout import Fanout, SignalStop, print_summary
    from mgmt.remote.hostspec import RemoteSet, load_remotes
    from mgmt.remote.session import FAILED, HostResult, RunContext

    out = out or sys.stdout
    if settings.no_server or settings.seeds:
        raise InputError("--remote runs its own etcd: --seeds and --no-server cannot be used")
    remotes = RemoteSet(list(specs), {}) if specs else load_remotes(settings.remotes)
    if settings.cconns and settings.converged_timeout < 0 and len(remotes.specs) > settings.cconns:
        waiting = len(remotes.specs) - settings.cconns
        log.warning(CCONNS_WITHOUT_TIMEOUT.format(waiting=waiting, cconns=settings.cconns))
    found = find_bundle(bundle)
    log.info("bundle %s (%d bytes, sha256 %s)", found.path, found.size, found.sha256[:12])

    results: List[HostResult] = []
    with state_dir(settings, "initiator") as state:
        cluster = RunCluster(state)
        ctx = RunContext(
            bundle=found.path,
            bundle_sha256=found.sha256,
            bundle_build_id=found.build_id,
            cluster=cluster,
            connect=ConnectOptions(
                identity=settings.ssh_identity,
                accept_new=settings.ssh_accept_new,
                allow_interactive=settings.allow_interactive,
                fabric_config=fabric_config,
            ),
            caching=not settings.no_caching,
            agent_options=agent_options(settings),
            depth=settings.depth,
            output=_Printer(out),
        )
        fanout = Fanout(
            remotes.specs,
            ctx,
            cconns=settings.cconns,
            converged_timeout=settings.converged_timeout,
            converged_source=cluster.converged_hosts,
            watch_graphs=not settings.no_watch,
        )
        if settings.converged_timeout >= 0:
            cluster.watch_converged(fanout.converged_changed)
        # Hosts that exchange resources cannot work without it: end the run, and
        # cluster.close() below raises why.
        cluster.on_failure = fanout.request_stop
        try:
            with SignalStop(fanout):
                results = fanout.run()
        finally:
            cluster.close()
    for path, why in remotes.refused.items():
        results.append(HostResult(str(path), FAILED, message=why))
    print_summary(results, out)
    return 1 if any(r.failed for r in results) else 0
