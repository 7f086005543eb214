"""One remote run from the initiator's side: settings in, exit code out.

Reads the --remote graphs, finds the bundle, chooses the transport (paramiko)
and the etcd endpoint (the run's own, or --seeds), runs the fan-out, prints the
per-host summary. The same function
serves ``mgmt run --remote`` and ``fab deploy`` (which passes its Fabric config).
"""

import functools
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, TextIO, TypeVar

from mgmt.errors import InputError, RemoteError
from mgmt.log import get_logger
from mgmt.remote.hostspec import HostSpec
from mgmt.settings import Settings, agent_settings
from mgmt.statedir import state_dir

if TYPE_CHECKING:
    from mgmt.remote.transport.connect import ConnectOptions
    from mgmt.remote.transport.paramiko_ssh import ParamikoRunner
    from mgmt.remote.transport.same_host import SameHostGuard

log = get_logger("remote")
R = TypeVar("R", bound="ParamikoRunner")

SUDO_PROMPT = "sudo password (for every host of this run): "
NO_SUDO_HOSTS = "--ask-sudo-password: no host runs through sudo (--sudo, or sudo: in a graph)"
CCONNS_WITHOUT_TIMEOUT = (
    "{waiting} remote(s) wait for one of {cconns} slot(s), and without --converged-timeout "
    "a running remote never frees its slot: they start only when one ends"
)
CCONNS_COLLECT = (
    "--cconns {cconns} with {hosts} hosts: a host stops when it hands over its slot, so "
    "{graph} collects no exports of the hosts started after it"
)


def connect_options(settings: Settings, fabric_config=None) -> "ConnectOptions":
    """How the initiator logs in to the hosts it reaches itself."""
    from mgmt.remote.transport.connect import ConnectOptions

    return ConnectOptions(
        identity=settings.ssh_identity,
        accept_new=settings.ssh_accept_new,
        allow_interactive=settings.allow_interactive,
        fabric_config=fabric_config,
    )


def become_user(spec: HostSpec, settings: Settings) -> Optional[str]:
    """Whom the agent runs as on this host through sudo (None: the login user).
    The graph's ``sudo:`` key wins for its host; ``--sudo-user`` implies --sudo."""
    wanted = spec.sudo if spec.sudo is not None else (settings.sudo or bool(settings.sudo_user))
    if wanted is False:
        return None
    return wanted if isinstance(wanted, str) else (settings.sudo_user or "root")


def ask_password(prompt: Callable[[str], str] = getpass.getpass) -> str:
    """The sudo password, asked once for the whole run (every host, now and later)."""
    try:
        return prompt(SUDO_PROMPT)
    except EOFError:  # (a ^C is not bad input: it stops the run, exit 130)
        raise InputError("--ask-sudo-password: no password given") from None


def run(
    settings: Settings,
    fabric_config=None,
    bundle: Optional[Path] = None,
    out: Optional[TextIO] = None,
    specs: Optional[List[HostSpec]] = None,
    sudo_password: Optional[str] = None,
) -> int:
    """``specs`` (fab deploy): hosts given directly, instead of the graphs' remote: keys.
    ``sudo_password`` (fab deploy: Fabric's sudo.password): instead of asking."""
    from mgmt.remote.hierarchy.hops import group_by_first_hop
    from mgmt.remote.hostspec import RemoteSet, load_remotes
    from mgmt.remote.orchestration.bundlefile import find_bundle
    from mgmt.remote.orchestration.context import RunContext
    from mgmt.remote.orchestration.etcd import RunEtcd, SeedsEtcd
    from mgmt.remote.orchestration.fanout import Fanout, RunControl, SignalStop
    from mgmt.remote.orchestration.follow import Printer
    from mgmt.remote.orchestration.graphcheck import CheckedGraphs
    from mgmt.remote.orchestration.results import HostResult, print_summary, run_document
    from mgmt.remote.transport.paramiko_ssh import ParamikoRunner
    from mgmt.remote.transport.password_gate import PasswordGates
    from mgmt.remote.transport.same_host import SameHostGuard
    from mgmt.remote.transport.sudo import Sudo, new_token

    out = out or sys.stdout
    # --json: stdout carries the one document; host output and the summary go to stderr.
    document_out, out = (out, sys.stderr) if settings.json else (None, out)
    if settings.no_server:
        raise InputError("--no-server cannot be used with --remote: the initiator runs etcd")
    remotes = RemoteSet(list(specs)) if specs else load_remotes(settings.remotes)
    if settings.python:  # the graphs' python: keys win for their hosts
        remotes.specs[:] = [s._replace(python=s.python or settings.python) for s in remotes.specs]
    # Whom each agent runs as, settled here once (a host behind a secondary takes it
    # in its plan): the user's name, or False for the login user.
    remotes.specs[:] = [s._replace(sudo=become_user(s, settings) or False) for s in remotes.specs]
    if settings.detach or settings.attach or settings.cluster_command:
        return _detached(settings, remotes, bundle, fabric_config, out)
    direct, subtrees = group_by_first_hop(remotes.specs)  # via: errors before connecting
    # Each graph's host and login as the run starts; bad edits stop there.
    checked = CheckedGraphs(s.graph for s in remotes.specs)
    sessions = len(direct) + len(subtrees)  # a secondary is one session here
    if settings.cconns and settings.converged_timeout < 0 and sessions > settings.cconns:
        waiting = sessions - settings.cconns
        log.warning(CCONNS_WITHOUT_TIMEOUT.format(waiting=waiting, cconns=settings.cconns))
    if settings.cconns and len(remotes.specs) > settings.cconns:
        _warn_cconns_collect(settings.cconns, remotes.specs)
    if settings.ask_sudo_password and sudo_password is None:
        if any(spec.sudo for spec in remotes.specs):
            sudo_password = ask_password()
        else:
            log.warning(NO_SUDO_HOSTS)
    token = new_token()  # sudo's prompt, the same for every host of the run
    password_gates = PasswordGates()  # a password is tried on one host before the others
    found = find_bundle(bundle)
    log.info("bundle %s (%d bytes, sha256 %s)", found.path, found.size, found.sha256[:12])
    options = connect_options(settings, fabric_config)

    # One host under two names is refused, whether it runs a graph or is a via: hop.
    same_host = SameHostGuard()

    @one_agent_per_host(same_host)
    def connect(spec: HostSpec) -> ParamikoRunner:
        runner = ParamikoRunner(spec, options, lost_timeout=settings.lost_timeout)
        if spec.sudo:  # the login as connected (ssh_config may have named it)
            login = runner.conn.user
            runner.become = Sudo(
                spec.name, login, spec.sudo, sudo_password, token, gates=password_gates
            )
        return runner

    results: List[HostResult] = []
    control = RunControl()
    with state_dir(settings, "initiator") as folder:
        state = Path(folder)
        if settings.seeds:
            endpoint = SeedsEtcd(settings.seeds, settings.credentials)
            endpoint.check()
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
            output=Printer(out),
            payload=checked,
            start_payload=checked.at_start,
        )
        sudo = (token, sudo_password)
        hierarchy = via_hierarchy(
            subtrees, state, options, settings, found, sudo, same_host, checked, password_gates
        )
        fanout = Fanout(
            direct + hierarchy.specs(),
            ctx,
            control,
            cconns=settings.cconns,
            converged_timeout=settings.converged_timeout,
            watch_graphs=not settings.no_watch,
            session_factory=hierarchy.session,
        )
        if not settings.no_watch:
            hierarchy.watch()  # graphs behind secondaries: their edits go down too
        try:
            with SignalStop(control):
                results = hierarchy.expand(fanout.run())
        finally:
            hierarchy.close()
            endpoint.close()
    print_summary(results, out)
    if document_out is not None:
        document_out.write(json.dumps(run_document(results), ensure_ascii=False) + "\n")
        document_out.flush()
    return 1 if any(r.failed for r in results) else 0


def _warn_cconns_collect(cconns: int, specs: List[HostSpec]) -> None:
    """Hosts run in turns (each stopped when the next takes its slot) cannot all
    see each other's exports: said once, up front, naming a graph that collects.
    Keeping a collecting host's slot instead would never start the others with
    --cconns 1, and the ones it waits for could not run beside it anyway."""
    from mgmt.graph.parse import load_graph  # read again: only with --cconns below the hosts

    collecting = [spec.graph for spec in specs if load_graph(spec.graph).collect]
    if collecting:
        more = len(collecting) - 1
        graph = str(collecting[0]) + (f" (and {more} more)" if more else "")
        log.warning(CCONNS_COLLECT.format(cconns=cconns, hosts=len(specs), graph=graph))


def via_hierarchy(
    subtrees, state: Path, options, settings: Settings, found, sudo, same_host, payload, gates=None
):
    """The secondaries of a via: run (mgmt.remote.hierarchy), logged in to with
    the ssh-agent forwarded; with no via: graphs, plain sessions only. ``sudo``:
    the run's sudo token and password, for the hosts below that run through it;
    ``same_host``: the run's SameHostGuard, which the secondaries claim too;
    ``payload``: what the hosts below are sent (the run's graphcheck); ``gates``:
    the run's sudo password gates (a typo is tried on one host of the whole run)."""
    from mgmt.remote.hierarchy.initiator import top_hierarchy
    from mgmt.remote.hierarchy.plan import grace_below
    from mgmt.remote.orchestration.session import STOP_GRACE
    from mgmt.remote.transport.agent_forward import AgentForwardingRunner

    @one_agent_per_host(same_host, hop=True)
    def connect(spec: HostSpec) -> AgentForwardingRunner:
        return AgentForwardingRunner(spec, options, lost_timeout=settings.lost_timeout)

    plan_options = {
        "stop_grace": grace_below(STOP_GRACE),
        "cconns": settings.cconns,
        "converged_timeout": settings.converged_timeout,
        "lost_timeout": settings.lost_timeout,
        "accept_new": settings.ssh_accept_new,
        "caching": not settings.no_caching,
        "bundle_sha256": found.sha256,
        "bundle_build_id": found.build_id,
    }
    return top_hierarchy(subtrees, state, options, plan_options, connect, payload, sudo, gates)


def _detached(settings: Settings, remotes, bundle: Optional[Path], fabric_config, out) -> int:
    """--detach, --attach, `mgmt status`, `mgmt stop`: mgmt.remote.orchestration.detach."""
    from mgmt.remote.orchestration import attach, control, detach
    from mgmt.remote.orchestration.bundlefile import find_bundle
    from mgmt.remote.transport.paramiko_ssh import ParamikoRunner
    from mgmt.remote.transport.password_gate import PasswordGates
    from mgmt.remote.transport.sudo import Sudo, new_token

    # Not yet combined with detached clusters: refused here rather than half-applied.
    for spec in remotes.specs:
        if spec.via:
            raise InputError(f"{spec.graph}: via: hosts cannot be in a detached cluster yet")
    options = connect_options(settings, fabric_config)
    # Through sudo as an attached run goes (the cluster is then the sudo user's: its
    # state in that user's home, systemd units when it is root).
    sudo_password = None
    if settings.ask_sudo_password:
        if any(spec.sudo for spec in remotes.specs):
            sudo_password = ask_password()
        else:
            log.warning(NO_SUDO_HOSTS)
    token, gates = new_token(), PasswordGates()

    def connect(spec: HostSpec) -> ParamikoRunner:
        runner = ParamikoRunner(spec, options, lost_timeout=settings.lost_timeout)
        if spec.sudo:  # the login as connected (ssh_config may have named it)
            runner.become = Sudo(
                spec.name, runner.conn.user, spec.sudo, sudo_password, token, gates=gates
            )
        return runner

    if settings.cluster_command == "status":
        return control.status_detached(settings, remotes.specs, connect, out)
    if settings.cluster_command == "stop":
        return control.stop_detached(settings, remotes.specs, connect, out)
    detach.check_flags(settings, remotes.specs)
    if settings.attach:
        stop = functools.partial(control.stop_detached, settings, remotes.specs, connect, out)
        return attach.attach(settings, remotes.specs, one_agent_per_host()(connect), out, stop)
    found = find_bundle(bundle)
    return detach.run_detached(settings, remotes.specs, found, one_agent_per_host()(connect), out)


def one_agent_per_host(
    guard: "Optional[SameHostGuard]" = None, hop: bool = False
) -> Callable[[Callable[[HostSpec], R]], Callable[[HostSpec], R]]:
    """A connect, refusing a host that another of the run reached under another
    name (see mgmt.remote.transport.same_host); ``guard``: the run's, shared by
    the secondaries (``hop``) and the hosts run directly, else a new one."""
    from mgmt.remote.transport.same_host import SameHostGuard

    claims = guard or SameHostGuard()

    def wrap(connect: Callable[[HostSpec], R]) -> Callable[[HostSpec], R]:
        def guarded(spec: HostSpec) -> R:
            runner = connect(spec)
            try:
                claims.claim(spec.name, runner.endpoint(), hop)
            except RemoteError:
                runner.close()
                raise
            return runner

        return guarded

    return wrap
