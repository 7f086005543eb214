"""One remote run from the initiator's side: settings in, exit code out.

Reads the --remote graphs, finds the bundle, chooses the transport (paramiko)
and the etcd endpoint (the run's own, or --seeds), runs the fan-out, prints the
per-host summary. The same function
serves ``mgmt run --remote`` and ``fab deploy`` (which passes its Fabric config).
"""

import json
import sys
import threading
from pathlib import Path
from typing import List, Optional, TextIO

from mgmt.errors import InputError
from mgmt.log import get_logger
from mgmt.remote.hostspec import HostSpec
from mgmt.settings import Settings, agent_settings
from mgmt.statedir import state_dir

log = get_logger("remote")

CCONNS_WITHOUT_TIMEOUT = (
    "{waiting} remote(s) wait for one of {cconns} slot(s), and without --converged-timeout "
    "a running remote never frees its slot: they start only when one ends"
)


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
    from mgmt.remote.hostspec import RemoteSet, load_remotes
    from mgmt.remote.orchestration.bundlefile import find_bundle
    from mgmt.remote.orchestration.etcd import RunEtcd, SeedsEtcd
    from mgmt.remote.orchestration.fanout import Fanout, RunControl, SignalStop
    from mgmt.remote.orchestration.results import FAILED, HostResult, print_summary, run_document
    from mgmt.remote.orchestration.session import RunContext
    from mgmt.remote.transport.connect import ConnectOptions
    from mgmt.remote.transport.paramiko_ssh import ParamikoRunner

    out = out or sys.stdout
    # --json: stdout carries the one document; host output and the summary go to stderr.
    document_out, out = (out, sys.stderr) if settings.json else (None, out)
    if settings.no_server:
        raise InputError("--no-server cannot be used with --remote: the initiator runs etcd")
    remotes = RemoteSet(list(specs), {}) if specs else load_remotes(settings.remotes)
    if settings.detach or settings.attach or settings.cluster_command:
        return _detached(settings, remotes, bundle, fabric_config, out)
    if settings.cconns and settings.converged_timeout < 0 and len(remotes.specs) > settings.cconns:
        waiting = len(remotes.specs) - settings.cconns
        log.warning(CCONNS_WITHOUT_TIMEOUT.format(waiting=waiting, cconns=settings.cconns))
    found = find_bundle(bundle)
    log.info("bundle %s (%d bytes, sha256 %s)", found.path, found.size, found.sha256[:12])
    options = ConnectOptions(
        identity=settings.ssh_identity,
        accept_new=settings.ssh_accept_new,
        allow_interactive=settings.allow_interactive,
        fabric_config=fabric_config,
    )

    def connect(spec: HostSpec) -> ParamikoRunner:
        return ParamikoRunner(spec, options, lost_timeout=settings.lost_timeout)

    results: List[HostResult] = []
    control = RunControl()
    with state_dir(settings, "initiator") as state:
        if settings.seeds:
            endpoint = SeedsEtcd(settings.seeds, settings.credentials)
        else:
            # Hosts that exchange resources cannot work without it: a failure to
            # start ends the run, and endpoint.close() below raises why.
            endpoint = RunEtcd(state, on_failure=control.request_stop)
        ctx = RunContext(
            bundle=found.path,
            bundle_sha256=found.sha256,
            bundle_build_id=found.build_id,
            endpoint=endpoint,
            connect=connect,
            caching=not settings.no_caching,
            agent_options=agent_settings(settings),
            output=_Printer(out),
        )
        fanout = Fanout(
            remotes.specs,
            ctx,
            control,
            cconns=settings.cconns,
            converged_timeout=settings.converged_timeout,
            watch_graphs=not settings.no_watch,
        )
        try:
            with SignalStop(control):
                results = fanout.run()
        finally:
            endpoint.close()
    for path, why in remotes.refused.items():
        results.append(HostResult(str(path), FAILED, message=why))
    print_summary(results, out)
    if document_out is not None:
        document_out.write(json.dumps(run_document(results), ensure_ascii=False) + "\n")
        document_out.flush()
    return 1 if any(r.failed for r in results) else 0


def _detached(settings: Settings, remotes, bundle: Optional[Path], fabric_config, out) -> int:
    """--detach, --attach, `mgmt status`, `mgmt stop`: mgmt.remote.orchestration.detach."""
    from mgmt.remote.orchestration import attach, control, detach
    from mgmt.remote.orchestration.bundlefile import find_bundle
    from mgmt.remote.transport.connect import ConnectOptions
    from mgmt.remote.transport.paramiko_ssh import ParamikoRunner

    if remotes.refused:
        raise InputError("; ".join(f"{path}: {why}" for path, why in remotes.refused.items()))
    options = ConnectOptions(
        identity=settings.ssh_identity,
        accept_new=settings.ssh_accept_new,
        allow_interactive=settings.allow_interactive,
        fabric_config=fabric_config,
    )

    def connect(spec: HostSpec) -> ParamikoRunner:
        return ParamikoRunner(spec, options, lost_timeout=settings.lost_timeout)

    if settings.cluster_command == "status":
        return control.status_detached(settings, remotes.specs, connect, out)
    if settings.cluster_command == "stop":
        return control.stop_detached(settings, remotes.specs, connect, out)
    detach.check_flags(settings, remotes.specs)
    if settings.attach:
        return attach.attach(settings, remotes.specs, connect, out)
    found = find_bundle(bundle)
    return detach.run_detached(settings, remotes.specs, found, connect, out)
