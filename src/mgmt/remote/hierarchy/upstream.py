"""Running secondaries: their sessions, and their hosts' rows in the summary.

A secondary is started exactly as an agent is (one START: the bundle cached by
sha256, the run dir, the guard that stops it when told or when the connection
goes); its "graph" is its plan (:mod:`.plan`) and its settings line says
``"secondary": true``, so the bundle runs :mod:`.secondary` instead of an
agent. Its session differs from an agent's only in what it reads back: relayed
output lines get the secondary's name in front of their path, and the per-host
results it sends are kept for the summary.

:class:`Hierarchy` makes the sessions of a fan-out (a plain
:class:`~mgmt.remote.orchestration.session.Session` for a host reached
directly) and turns the results into one row per host, leaves included, each
named by its path (``s1/leaf``). It is used on the initiator and on secondaries
alike (depth 3): standard library only, Python 3.6+.
"""

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from mgmt.errors import RemoteError
from mgmt.log import get_logger
from mgmt.remote.hierarchy.hops import Subtree
from mgmt.remote.hierarchy.plan import plan_for, write_plan
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration import agentstart
from mgmt.remote.orchestration.context import Payload, RunContext, graph_payload
from mgmt.remote.orchestration.graphwatch import GraphWatcher
from mgmt.remote.orchestration.results import CONVERGED, FAILED, STOPPED, HostResult
from mgmt.remote.orchestration.session import Interrupted, Session
from mgmt.remote.protocol import (
    EXIT_OLD_PYTHON,
    SECONDARY_SETTING,
    SUDO_SECRET_SETTING,
    RemotePaths,
)
from mgmt.remote.protocol.relay import (
    RESULT_FIELDS,
    parse_leaf_converged_line,
    parse_leaf_result_line,
    parse_new_host_key_line,
    parse_relay_line,
    parse_sudo_verdict_line,
)
from mgmt.remote.transport.password_gate import TRYING, UNTRIED, WRONG, PasswordGate, PasswordGates
from mgmt.remote.transport.runner import Runner

log = get_logger("remote")

NEVER_STARTED = "never started"
# A host below a secondary that failed or was lost, with no result of its own.
VIA = "via {secondary}: {why}"
CONVERGED_THEN_LOST = "converged, then lost via {secondary}: {why}"
# A host below a secondary that stopped, whose agent ran but whose own result never came.
STOPPED_WITH = "ran; stopped with {}, no result of its own"
# A secondary finds its own Python: --python and python: are its hosts' (the
# agent's advice, "or give --python", would not help).
NO_PYTHON_HERE = (
    "no Python 3.6+ found on this secondary; install python3 there (dnf install python3): "
    "--python and python: name the Python of the hosts with graphs, not of a secondary"
)
OLD_PYTHON_HERE = (
    "{python} is older than 3.6; install python3 3.6+ on this secondary (it runs the first"
    " python3 it finds; --python and python: are for the hosts with graphs)"
)
# The run's sudo prompt token and password (None if none was given), for the
# hosts below a secondary that run through sudo (see mgmt.remote.transport.sudo).
SudoSecret = Tuple[str, Optional[str]]


class SecondarySession(Session):
    """One secondary's life: started as an agent is, its subtree's output relayed up."""

    lock_kind = ""  # it applies no graph: the hosts below take their own locks

    def __init__(
        self,
        spec: HostSpec,
        ctx: RunContext,
        report: Callable[[str, bool], None],
        subtree: Subtree,
        on_new_host_key: Optional[Callable[[str, Tuple[str, str, str]], None]] = None,
        sudo: Optional[SudoSecret] = None,
        on_leaf_converged: Optional[Callable[[str, bool], None]] = None,
        on_leaf_result: Optional[Callable[[str, HostResult], None]] = None,
        gates: Optional[PasswordGates] = None,
    ):
        self.subtree = subtree
        self.gates = gates  # this level's: the password is tried by one host first
        self._trying: Optional[PasswordGate] = None  # taken to try it below
        self.on_new_host_key = on_new_host_key
        self.on_leaf_converged = on_leaf_converged  # (path from here, state): to go upward
        self.leaf_converged: Dict[str, bool] = {}  # path below -> as its agent last said
        self.on_leaf_result = on_leaf_result  # (path from here, row): to go upward
        self.sudo = sudo
        self.leaf_results: Dict[str, HostResult] = {}
        self.edited: Optional[Path] = None  # the user's graph the next plan sent carries
        self._output = ctx.output
        super().__init__(spec, ctx._replace(output=self._upward), report)

    def shown_graph(self) -> object:
        edited, self.edited = self.edited, None  # once: the next plan may carry another's
        return edited or self.spec.graph

    def agent_settings(self, port: int) -> Dict[str, Any]:
        settings = {SECONDARY_SETTING: True}  # first: see protocol.is_secondary_line
        settings.update(super().agent_settings(port))
        return settings

    def _failed_start(self, process, what: str) -> RemoteError:
        error = super()._failed_start(process, what)
        if error.message == agentstart.NO_PYTHON:
            return RemoteError(self.host, NO_PYTHON_HERE)
        return error

    def _judge(self, status: int) -> Tuple[str, str]:
        result, message = super()._judge(status)
        if status == EXIT_OLD_PYTHON and self._stop_reason is None:
            found = self.python.path + " " + self.python.version if self.python else "Python"
            message = OLD_PYTHON_HERE.format(python=found)
        return result, message

    def run(self) -> HostResult:
        try:
            return super().run()
        finally:  # ended without a verdict from below: the next one tries it
            gate, self._trying = self._trying, None
            if gate is not None:
                gate.settle(UNTRIED, self.host)

    def secret_settings(self) -> Dict[str, Any]:
        secrets = super().secret_settings()
        if self.sudo is not None and self.subtree.needs_sudo():
            secret: List[Any] = list(self.sudo)
            user = self.subtree.sudo_login()
            if self.sudo[1] is not None and self.gates is not None and user is not None:
                gate = self._take_gate(user)
                if gate[1] == WRONG:
                    secret[1] = ""  # never sent where it is known wrong: nothing tries it
                secret.append(gate)
            secrets[SUDO_SECRET_SETTING] = secret
        return secrets

    def _take_gate(self, user: str) -> List[Any]:
        """This level's password gate for ``user``, taken as a host takes it: the
        secondary's hosts try the password first (TRYING: their verdict comes
        back, see :meth:`_upward`), or use what another host found (RIGHT, or
        WRONG and where). Before the start lines go: a typo is tried once for
        the whole run, not once per secondary (IPA locks an account after 6)."""
        gate = self.gates.for_user(user)  # type: ignore[union-attr]
        state = gate.take(self.host, lambda: self.stopping)
        if state is None:
            raise Interrupted(self.host, "stopped before the agent started")
        if state == TRYING:
            self._trying = gate
        return [user, state, gate.wrong_on]

    def describe_start(self, paths: RemotePaths, settings: Dict[str, Any]) -> str:
        below = self.subtree.below()
        shown = ", ".join(below[:5]) + (f" and {len(below) - 5} more" if len(below) > 5 else "")
        return f"{paths.bundle} as the secondary of {len(below)} host(s): {shown}"

    def _upward(self, host: str, line: str) -> None:
        """A line from the secondary: a host's output, a host's result, or its own log."""
        relayed = parse_relay_line(line)
        if relayed is not None:
            if self._output is not None:
                self._output(self.host + "/" + relayed[0], relayed[1])
            return
        fields = parse_leaf_result_line(line)
        if fields is not None:
            row = {k: fields.get(k) for k in RESULT_FIELDS}
            row["seconds"] = float(row["seconds"] or 0.0)
            row["message"] = row["message"] or ""
            row["bundle"] = row["bundle"] or "-"
            result = self.leaf_results[fields["host"]] = HostResult(**row)
            log.debug("%s/%s: result: %s", self.host, row["host"], row["result"])
            if self.on_leaf_result is not None:
                self.on_leaf_result(self.host + "/" + row["host"], result)
            return
        converged = parse_leaf_converged_line(line)
        if converged is not None:
            path, now = converged
            self.leaf_converged[path] = now
            log.debug("%s/%s: %s", self.host, path, "converged" if now else "busy again")
            if self.on_leaf_converged is not None:
                self.on_leaf_converged(self.host + "/" + path, now)
            return
        verdict = parse_sudo_verdict_line(line)
        if verdict is not None:
            gate = self._trying
            if gate is not None and gate.user == verdict[0]:
                self._trying = None
                where = self.host + "/" + verdict[2] if verdict[2] else self.host
                gate.settle(verdict[1], where)
            return
        key = parse_new_host_key_line(line)
        if key is not None:
            if self.on_new_host_key is not None:
                self.on_new_host_key(self.host, key)
            return
        if self._output is not None:
            self._output(host, line)


class Hierarchy:
    """The sessions of one fan-out level, and its results with every leaf in them.

    ``trust(subtree)``: what that secondary is told of the hosts below it (the
    initiator's known_hosts lines and ssh_config aliases for them, see :mod:`.plan`);
    ``options``: :data:`.plan.OPTIONS`; ``connect``: how secondaries are
    logged in to (the initiator forwards its ssh-agent; None: the run's own);
    ``on_new_host_key``: what to do with a key a secondary accepted
    (--ssh-accept-new) for a host below it; ``stop_grace``: that of the sessions
    made here (a secondary's are shorter, see :func:`.plan.grace_below`);
    ``sudo``: the run's sudo token and password, for secondaries with sudo hosts;
    ``payload``: what a host is sent for its graph file (see :func:`.plan.plan_for`),
    checked at an edit; ``standing``: what the other hosts of a secondary keep
    then (a sibling's bad file must not hold an edit back; None: ``payload``);
    ``gates``: the level's sudo password gates, which its secondaries take as
    its hosts do; ``on_leaf_converged``, ``on_leaf_result``: on a secondary, what to do with a
    state or a result a secondary below said of one of its hosts (named by its
    path from here): it goes upward at once, so that a stop or a drop of this
    level cannot lose it.
    """

    def __init__(
        self,
        subtrees: List[Subtree],
        plan_dir: Path,
        trust: Callable[[Subtree], Dict[str, Any]],
        options: Dict[str, Any],
        connect: Optional[Callable[[HostSpec], Runner]] = None,
        on_new_host_key: Optional[Callable[[str, Tuple[str, str, str]], None]] = None,
        stop_grace: Optional[float] = None,
        sudo: Optional[SudoSecret] = None,
        payload: Payload = graph_payload,
        standing: Optional[Payload] = None,
        on_leaf_converged: Optional[Callable[[str, bool], None]] = None,
        on_leaf_result: Optional[Callable[[str, HostResult], None]] = None,
        gates: Optional[PasswordGates] = None,
    ):
        self.payload = payload
        self.gates = gates
        self.standing = standing or payload
        self.trees = {tree.name: tree for tree in subtrees}
        self.sudo = sudo
        self.stop_grace = stop_grace  # for the sessions made here (None: Session's)
        self.plan_dir = plan_dir
        self.trust = trust
        self.options = options
        self.connect = connect
        self.on_new_host_key = on_new_host_key  # (secondary, (entry, type, key))
        self.on_leaf_converged = on_leaf_converged
        self.on_leaf_result = on_leaf_result
        self.sessions: Dict[str, SecondarySession] = {}
        self._watcher: Optional[GraphWatcher] = None

    def _plan_path(self, tree: Subtree) -> Path:
        return self.plan_dir / f"via-{tree.name}.json"

    def _write_plan(self, tree: Subtree) -> Path:
        plan = plan_for(tree, self.trust(tree), self.options, self.standing)
        return write_plan(plan, self._plan_path(tree))

    def specs(self) -> List[HostSpec]:
        """One spec per secondary, its graph being its plan (written now)."""
        specs = []
        for tree in self.trees.values():
            path = self._write_plan(tree)
            hop = tree.hop
            specs.append(HostSpec(hop.target, path, hop.user, hop.port, hop.password))
        return specs

    def watch(self) -> None:
        """Live graph edits: a graph saved below a secondary rewrites its plan; the
        fan-out's own watcher sends the plan down (one line, or an upload), and the
        secondary passes the edit on to the host (see :mod:`.secondary`)."""
        by_graph = {}
        for tree in self.trees.values():
            for spec in tree.hosts:
                by_graph[str(spec.graph)] = tree
        if not by_graph:
            return

        def changed(spec: HostSpec) -> None:
            tree = by_graph.get(str(spec.graph))
            if tree is not None:
                self.payload(spec.graph)  # the saved graph: a bad edit stops here, said
                session = self.sessions.get(tree.name)
                if session is not None:
                    session.edited = spec.graph
                self._write_plan(tree)

        self._watcher = GraphWatcher(
            [spec for tree in self.trees.values() for spec in tree.hosts], changed
        )

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()

    def session(
        self, spec: HostSpec, ctx: RunContext, report: Callable[[str, bool], None]
    ) -> Session:
        tree = self.trees.get(spec.name)
        if tree is None:
            session = Session(spec, ctx, report)
        else:
            if self.connect is not None:
                ctx = ctx._replace(connect=self.connect)
            session = SecondarySession(
                spec,
                ctx,
                report,
                tree,
                self.on_new_host_key,
                self.sudo,
                self.on_leaf_converged,
                self.on_leaf_result,
                self.gates,
            )
            self.sessions[spec.name] = session
        if self.stop_grace is not None:
            session.stop_grace = self.stop_grace
        return session

    def expand(self, results: List[HostResult]) -> List[HostResult]:
        """Each secondary's row followed by one row per host below it (``s1/leaf``).

        A host the secondary never reported on failed with it (it died, or was
        unreachable), or never started (the run stopped first). Hosts stopped
        because the whole cluster converged are reported as converged: the
        secondary is told only "stop", at the moment every host below it had
        converged (it says so only then, see :mod:`.secondary`); hosts a failing
        secondary stopped as it went failed with it. A secondary's
        row stands for its subtree: with hosts below it failed, it is failed,
        saying how many.
        """
        rows = []
        for row in results:
            tree = self.trees.get(row.host)
            if tree is None:
                rows.append(row)
                continue
            session = self.sessions.get(row.host)
            got = session.leaf_results if session is not None else {}
            converged = session.leaf_converged if session is not None else {}
            leaves: Dict[str, HostResult] = {}
            for path in tree.below():
                leaf = got.get(path)
                if leaf is None:
                    if row.failed:  # still failed, as a lost host is: only what it did is known
                        said = CONVERGED_THEN_LOST if converged.get(path) else VIA
                        why = said.format(secondary=row.host, why=row.message or row.result)
                        leaf = HostResult(path, FAILED, message=why)
                    elif path in converged:  # its agent ran: stopped with its secondary
                        done = CONVERGED if row.result == CONVERGED else STOPPED
                        leaf = HostResult(path, done, message=STOPPED_WITH.format(row.host))
                    else:
                        leaf = HostResult(path, STOPPED, message=NEVER_STARTED)
                elif row.result == CONVERGED and leaf.result == STOPPED:
                    leaf = leaf._replace(result=CONVERGED)
                elif row.failed and leaf.result == STOPPED:  # stopped as its secondary went
                    why = VIA.format(secondary=row.host, why=row.message or row.result)
                    leaf = leaf._replace(result=FAILED, message=why)
                leaves[path] = leaf._replace(host=f"{row.host}/{path}")
            rows.append(_with_subtree(row, leaves))
            rows.extend(leaves.values())
        return rows


def _with_subtree(row: HostResult, leaves: Dict[str, HostResult]) -> HostResult:
    """A secondary's row, failed if hosts below it failed (counted once each: a
    secondary further down is not counted again, its hosts are)."""
    secondaries = {path.rsplit("/", 1)[0] for path in leaves if "/" in path}
    hosts = [leaf for path, leaf in leaves.items() if path not in secondaries]
    failed = sum(leaf.failed for leaf in hosts)
    if row.failed or not failed:
        return row
    return row._replace(result=FAILED, message=f"{failed} of {len(hosts)} host(s) below failed")
