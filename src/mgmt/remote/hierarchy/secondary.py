"""The secondary mode of the bundle: a fan-out run on a host, for the hosts behind it.

Started by START like an agent (see :mod:`.upstream`), with its plan as the
graph file, its run dir beside it, and a settings line that carries the run's
etcd tunnel (``seeds``: the secondary's end of its tunnel to the initiator),
the run's credentials and the agents' options. It runs the same fan-out as
the initiator (mgmt.remote.orchestration.fanout: sessions, --cconns slots,
stop) with the system's OpenSSH client (no paramiko, which is not pure
Python), so every host below gets its bundle from here, cached by sha256 as
usual, and its etcd tunnel leads to this secondary's tunnel, and on to the
initiator's etcd: the credentials are checked there, end to end.

Trust stays with the initiator: the hosts below are logged in to through the
initiator's forwarded ssh-agent (no key is ever written here), their host keys
are the initiator's known_hosts lines, written to a private file in the run
dir (``StrictHostKeyChecking yes``, or ``accept-new`` with --ssh-accept-new).

What goes upward (mgmt.remote.protocol.relay): every host's output as relay
lines, ``converged true`` only while every host below runs and has converged
(the initiator decides when the cluster has converged for long enough, and
stops the secondary, which stops its hosts), each host's result as soon as it
ends (also one a secondary further down says of a host below it), and all of
them again, completed, when the fan-out ends. SIGINT/SIGTERM (START's guard,
told by the initiator or seeing its connection go) stop every host below first.

Runs on hosts: Python 3.6+, standard library and the bundle only.
"""

import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from mgmt.errors import InputError
from mgmt.log import get_logger
from mgmt.remote.hierarchy.hops import group_by_first_hop
from mgmt.remote.hierarchy.plan import grace_below, load_plan, plan_payload, update_graphs
from mgmt.remote.hierarchy.upstream import Hierarchy, SecondarySession, SudoSecret
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.context import RunContext
from mgmt.remote.orchestration.fanout import ConvergedStates, Fanout, RunControl, SignalStop
from mgmt.remote.orchestration.graphwatch import GraphWatcher
from mgmt.remote.orchestration.results import HostResult
from mgmt.remote.orchestration.session import Session
from mgmt.remote.protocol import SECONDARY_SETTING, SUDO_SECRET_SETTING, converged_line
from mgmt.remote.protocol.relay import (
    leaf_converged_line,
    leaf_result_line,
    new_host_key_line,
    relay_line,
    sudo_verdict_line,
)
from mgmt.remote.transport.password_gate import RIGHT, TRYING, UNTRIED, WRONG
from mgmt.settings import Settings, agent_settings

log = get_logger("remote")


def secondary_settings(line: str) -> Tuple[str, Optional[SudoSecret]]:
    """The settings line without its ``secondary`` key (what is left is an agent's),
    and the run's sudo token and password if hosts below run through sudo."""
    try:
        fields = json.loads(line)
    except ValueError as err:
        raise InputError(f"secondary settings on stdin: {err}") from None
    fields.pop(SECONDARY_SETTING, None)
    sudo = fields.pop(SUDO_SECRET_SETTING, None)
    if sudo is not None:
        valid = isinstance(sudo, list) and len(sudo) in (2, 3) and isinstance(sudo[0], str)
        if not valid or not isinstance(sudo[1], (str, type(None))) or not _gate_ok(sudo[2:]):
            raise InputError(f"secondary settings on stdin: {SUDO_SECRET_SETTING}: invalid")
        sudo = tuple(sudo)
    return json.dumps(fields), sudo


def _gate_ok(gate: List[Any]) -> bool:
    """The level above's password gate, if any: [user, state, where it was refused]."""
    if not gate:
        return True
    found = gate[0]
    return (
        isinstance(found, list)
        and len(found) == 3
        and isinstance(found[0], str)
        and found[1] in (TRYING, RIGHT, WRONG)
        and isinstance(found[2], (str, type(None)))
    )


class Upward:
    """This secondary's stdout: whole lines, one writer at a time."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def relay(self, host: str, text: str) -> None:
        self.line(relay_line(host, text))


class SecondaryFanout(Fanout):
    """The fan-out, but the run's convergence is the initiator's to judge: this
    one says upward whether every host below has converged, whenever that
    changes. With --converged-timeout, a host that has converged still hands its
    --cconns slot to a host waiting here, as at the top."""

    def __init__(self, specs: List[HostSpec], ctx: RunContext, control: RunControl, **kw):
        self.say: Callable[[str], None] = kw.pop("say")
        self.trying = kw.pop("trying")  # the gate the level above waits on, if any
        timeout = kw.pop("converged_timeout")
        self.hands_over_slots = timeout >= 0
        self._said: Optional[bool] = None
        # A timeout of 0 without --converged-timeout only makes the loop call
        # _converge at every turn.
        super().__init__(specs, ctx, control, converged_timeout=max(timeout, 0), **kw)
        # Each host's own state goes upward too: if this secondary is lost, the
        # initiator still knows which of its hosts had applied their graphs.
        self.converged = ConvergedStates(control.wake, self._publish)

    def ended(self, session: Session, result: HostResult) -> None:
        """A host's result goes upward at once, not only at the end: a stop (or a
        drop) of this secondary right after it must not lose what it said (a lost
        host was reported "never started"). A secondary's own row, and those of
        its hosts, go at the end (see :meth:`Hierarchy.expand`); a row said twice
        is the same row."""
        if not isinstance(session, SecondarySession):
            self.say(leaf_result_line(result._asdict()))

    def _publish(self, host: str, converged: bool) -> None:
        self.ctx.endpoint.publish_converged(host, converged)
        self.say(leaf_converged_line(host, converged))

    def _converge(self, slots_wanted: bool) -> Optional[float]:
        due = None
        if slots_wanted and self.hands_over_slots:
            due = super()._converge(True)  # stops converged hosts for the waiting ones
        states = self.converged.snapshot()
        active = self._active()
        now = (
            bool(active)
            and not slots_wanted
            and all(s.running.is_set() and states.get(s.host) for s in active)
        )
        if now is not self._said:
            self._said = now
            self.say(converged_line(now))
        self._untried()
        return due

    def _untried(self) -> None:
        """The level above gave this secondary the sudo password to try first: once
        every host started here runs (or ended) and none was asked for it, say so,
        so that the next one up there tries it (a verdict goes up as it settles).
        Hosts still waiting for a --cconns slot do not hold it: without
        --converged-timeout no slot may ever free, and the others would wait."""
        gate = self.trying
        if gate is None or gate.state != UNTRIED:
            return
        if all(s.running.is_set() for s in self._active()):
            self.trying = None
            self.say(sudo_verdict_line(gate.user, UNTRIED, ""))


class AcceptedKeys:
    """With --ssh-accept-new: the keys ssh added to the run's known_hosts file here
    go upward, once each, for the initiator's own known_hosts."""

    def __init__(self, path: Path, upward: Upward):
        self.path = path
        self.upward = upward
        self.lock = threading.Lock()
        self.seen = set(self._lines())

    def _lines(self) -> List[str]:
        with open(str(self.path), encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]

    def check(self) -> None:
        with self.lock:
            for line in self._lines():
                if line not in self.seen:
                    self.seen.add(line)
                    self.upward.line(new_host_key_line(line))


def ssh_config_text(
    known_hosts: Path, forward_to: List[HostSpec], aliases: Dict[str, Dict[str, Any]]
) -> str:
    """The private ssh_config for the hosts below: the run's known_hosts only, the
    forwarded agent passed on to secondaries below (and to no one else), and the
    initiator's aliases for them (HostName, Port, User: nothing of its keys)."""
    lines = []
    for hop in forward_to:
        lines += [f"Host {hop.target}", "    ForwardAgent yes", ""]
    for alias, where in sorted(aliases.items()):
        lines += [f"Host {alias}", f"    HostName {where['hostname']}"]
        lines += [f"    Port {where['port']}"] if where.get("port") else []
        lines += [f"    User {where['user']}"] if where.get("user") else []
        lines.append("")
    lines += [
        "Host *",
        f"    UserKnownHostsFile {known_hosts}",
        "    GlobalKnownHostsFile /dev/null",
        "    ForwardAgent no",
        "    LogLevel ERROR",
        "",
    ]
    return "\n".join(lines)


def _private_file(path: Path, text: str) -> Path:
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def run_secondary(settings: Settings, sudo: Optional[SudoSecret] = None) -> int:
    """Run the plan's hosts; 0 once every host's result went upward (theirs say
    whether they failed), or an error line and 1 or 2 before any host ran.
    ``sudo``: the run's sudo token and password, for the hosts that use it."""
    from mgmt.remote.orchestration.etcd import SeedsEtcd
    from mgmt.remote.transport.openssh import OpenSshRunner
    from mgmt.remote.transport.password_gate import PasswordGates
    from mgmt.remote.transport.sudo import Sudo

    # A process group of our own, our ssh clients in it: START ends the group
    # with us, so no master connection to a host outlives us, even after SIGKILL.
    os.setpgrp()
    plan = Path(settings.file)
    run_dir = plan.parent
    # The ssh control sockets too go in the run dir, which START removes after us.
    tempfile.tempdir = str(run_dir)
    specs, trust, options = load_plan(plan, run_dir)
    direct, subtrees = group_by_first_hop(specs)
    known = _private_file(run_dir / "known_hosts", trust["known_hosts"])
    hops = [tree.hop for tree in subtrees]
    config = _private_file(run_dir / "ssh_config", ssh_config_text(known, hops, trust["aliases"]))
    if subtrees and not os.environ.get("SSH_AUTH_SOCK"):
        log.warning("no forwarded ssh-agent: the secondaries below cannot log in further")

    upward = Upward()
    accepted = AcceptedKeys(known, upward) if options["accept_new"] else None
    # The hosts below try a password one at a time; what one found goes upward.
    password_gates = PasswordGates(
        lambda user, verdict, host: upward.line(sudo_verdict_line(user, verdict, host))
    )
    trying = None
    if sudo is not None and len(sudo) > 2:  # the level above's gate (see upstream)
        user, state, where = sudo[2]
        trying = password_gates.for_user(user)
        if state != TRYING:
            trying.preset(state, where)
            trying = None
        sudo = (sudo[0], sudo[1])

    def connect(spec: HostSpec) -> OpenSshRunner:
        runner = OpenSshRunner(  # it logs in with its first command (START)
            spec,
            lost_timeout=options["lost_timeout"],
            accept_new=options["accept_new"],
            ssh_config=str(config),
            on_login=accepted.check if accepted is not None else None,
        )
        if spec.sudo:  # the plan names the user; the token and password came on stdin
            token, password = sudo or (None, None)
            runner.become = Sudo(
                spec.name, spec.user, spec.sudo, password, token, gates=password_gates
            )
        return runner

    ctx = RunContext(
        bundle=Path(sys.argv[0]),  # the launcher's: this very bundle, as the host keeps it
        bundle_sha256=options["bundle_sha256"],
        endpoint=SeedsEtcd(settings.seeds, settings.credentials),
        connect=connect,
        bundle_build_id=options["bundle_build_id"],
        caching=options["caching"],
        agent_options=agent_settings(settings),
        output=upward.relay,
        payload=plan_payload,  # the plan's graphs are sent as they are
    )
    hierarchy = Hierarchy(
        subtrees,
        run_dir,
        lambda tree: trust,
        dict(options, stop_grace=grace_below(options["stop_grace"])),  # for the level below
        on_new_host_key=lambda _below, key: upward.line(new_host_key_line(" ".join(key))),
        on_leaf_converged=lambda path, now: upward.line(leaf_converged_line(path, now)),
        on_leaf_result=lambda path, row: upward.line(
            leaf_result_line(row._replace(host=path)._asdict())
        ),
        stop_grace=options["stop_grace"],
        sudo=sudo,
        payload=plan_payload,
        gates=password_gates,
    )
    control = RunControl()
    fanout = SecondaryFanout(
        direct + hierarchy.specs(),
        ctx,
        control,
        cconns=options["cconns"],
        converged_timeout=options["converged_timeout"],
        session_factory=hierarchy.session,
        say=upward.line,
        trying=trying,
        watch_graphs=not settings.no_watch,
    )
    plan_watcher = None
    if not settings.no_watch:
        # An edit on the initiator comes as a new plan (START's guard renames it
        # into place): its changed graphs are rewritten here, and the fan-out's
        # watcher sends them on, to hosts and to the secondaries below.
        plan_watcher = GraphWatcher(
            [HostSpec("plan", plan)], lambda _spec: update_graphs(plan, run_dir)
        )
        hierarchy.watch()
    # A stop while the results go upward (the initiator's ^C as a host's failure
    # came) must not cut them short: they are said within SignalStop too.
    with SignalStop(control):
        try:
            results = fanout.run()
        finally:
            if plan_watcher is not None:
                plan_watcher.close()
            hierarchy.close()
        for row in hierarchy.expand(results):
            upward.line(leaf_result_line(row._asdict()))
    return 0
