"""``mgmt status --remote GRAPH... [--json]``: a detached cluster seen from any initiator
that can reach its hosts, one block per host, or with ``--json`` one JSON document.

It goes on when a host cannot be reached, or its status fails: the others are
shown, those are named with why. A login the graphs name twice (a host's name
and its address, one user) is shown once, under the first name. The exit code is
0 if every host was reached and every agent runs, none has failed resources and
every member is healthy; else 1 (the same with ``--json``; 2 for bad input, with
no document).

The JSON document (``--json``), one object on stdout; its field names are stable:

- ``healthy``: bool, true exactly when the exit code is 0;
- ``hosts``: a list, one object per graph given, in their order:

  - ``host``: the host's name (the graph's ``remote:``);
  - ``reachable``: bool; ``error``: why it was not reached, or why its status
    failed (a string), else null;
  - ``same_login_as``: the host it is shown under when the graphs name its login
    twice (its other fields are then null), else null;
  - ``cluster``: whether a detached cluster is there (null when not known);
  - ``healthy``: this host's part of the exit code (null: shown under another
    name);
  - ``agent``: ``{"running": bool, "pid": int|null, "since": POSIX time its
    process started, by the host's clock (null when it does not run), "last_exit": the exit status
    of its last process that ended (int|null)}``;
  - ``converged``: bool, as the agent last said it; null when not known or when
    no agent runs (what it last said is then past);
  - ``failed``: the resources that ended failed, ``[{"kind", "name", "error"}]``
    (always a list: empty when none, or nothing is known);
  - ``etcd``: ``{"member": bool (a member of the cluster runs on this host),
    "url": its client URL|null, "running": bool, "pid": int|null, "since",
    "last_exit", "healthy": bool|null (null: no member here)}``;
  - ``mgmt_version``, ``bundle_sha256``, ``graph`` (its file name on the host),
    ``started`` (POSIX time the cluster was handed its agent): from the
    cluster's record on the host, null when it is missing;
  - ``log``: the agent's last log lines (a list of strings, as the host wrote
    them).

``agent``, ``converged``, ``etcd`` and the fields after it are null where there
is no cluster, or nothing is known (unreachable, shown under another name).
"""

import json
import sys
from typing import Any, Dict, List, Optional, TextIO

from mgmt.errors import MgmtError
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.follow import shown_line
from mgmt.remote.orchestration.hosts import Hosts
from mgmt.remote.orchestration.results import describe_failures

CONVERGED = {True: "converged", False: "not converged", None: "unknown"}


def status_detached(settings, specs: List[HostSpec], connect, out: TextIO) -> int:
    """Each host's state, as a table or (``settings.json``) a JSON document; 0 if all
    is well (see the module's docstring), else 1."""
    with Hosts(specs, connect, tolerant=True) as hosts:
        second_names = hosts.set_aside_second_names()
        states, errors = hosts.each_apart(lambda s: hosts.call(s.name, "status", {}))
    records = [_record(spec.name, specs, hosts, second_names, states, errors) for spec in specs]
    healthy = all(r["healthy"] is not False for r in records)
    if getattr(settings, "json", False):
        # On stdout itself: with --json the initiator hands ``out`` the log's stream,
        # stderr (stdout carries the one document: mgmt.remote.orchestration.initiator).
        sys.stdout.write(json.dumps({"healthy": healthy, "hosts": records}, indent=2) + "\n")
        sys.stdout.flush()
    else:
        for spec, record in zip(specs, records):
            out.write(_table_block(record, second_names.get(spec.name), states.get(spec.name)))
    out.flush()
    return 0 if healthy else 1


def _record(
    name: str,
    specs: List[HostSpec],
    hosts: Hosts,
    second_names: Dict[str, str],
    states: Dict[str, Dict],
    errors: Dict[str, MgmtError],
) -> Dict[str, Any]:
    """One host's object of the JSON document (the table is written from it too)."""
    record: Dict[str, Any] = dict.fromkeys(_FIELDS)
    record.update(host=name, reachable=True, failed=[])
    if name in second_names:
        told = second_names[name]
        firsts = [s.name for s in specs if told.startswith(f"the same login as {s.name} (")]
        record.update(same_login_as=firsts[0] if firsts else told)
        return record
    if name in hosts.unreachable or name in errors:
        why = hosts.unreachable.get(name) or errors[name].message
        record.update(reachable=name not in hosts.unreachable, error=why, healthy=False)
        return record
    state = states[name]
    record["cluster"] = bool(state.get("exists"))
    if not record["cluster"]:
        record["healthy"] = False
        return record
    cluster, agent, etcd = state["cluster"], state["agent"], state["etcd"]
    member_url = cluster.get("member_url")
    record["agent"] = _process(agent)
    record["etcd"] = dict(
        _process(etcd),
        member=bool(member_url) or bool(etcd["supervised"]),
        url=member_url,
        healthy=etcd["health"] if member_url else None,
    )
    # Its converged key outlives a dead agent: it says what was, not what is.
    record["converged"] = state.get("converged") if agent["running"] else None
    record["failed"] = state.get("failed") or []
    record.update(
        mgmt_version=cluster.get("version"),
        bundle_sha256=cluster.get("bundle_sha256"),
        graph=cluster.get("graph"),
        started=cluster.get("started"),
        log=(state.get("log") or "").splitlines(),
    )
    # A member down is said too: the cluster runs on, but with one failure less to
    # spare (with one member, none), which a check of the exit code must see.
    member_down = bool(member_url) and not etcd["health"]
    record["healthy"] = bool(agent["running"] and not record["failed"] and not member_down)
    return record


_FIELDS = (
    "host", "reachable", "error", "same_login_as", "cluster", "healthy", "agent",
    "converged", "failed", "etcd", "mgmt_version", "bundle_sha256", "graph", "started", "log",
)  # fmt: skip


def _process(state: Dict[str, Any]) -> Dict[str, Any]:
    """An agent's or a member's process, as the document gives it."""
    running = bool(state.get("running"))
    return {
        "running": running,
        "pid": state.get("pid"),
        "since": state.get("since") if running else None,
        "last_exit": _exit_status(state.get("exit")),
    }


def _exit_status(text: Optional[str]) -> Optional[int]:
    try:
        return int(text) if text else None
    except ValueError:  # not the supervisor's (written by hand?): unknown
        return None


def _table_block(record: Dict[str, Any], second_name: Optional[str], state: Optional[Dict]) -> str:
    """One host's block of the table."""
    host = record["host"]
    if second_name is not None:
        return f"{host}: {second_name}: shown under that name\n"
    if not record["reachable"]:
        return f"{host}: UNREACHABLE: {record['error']}\n"
    if record["error"] is not None:
        return f"{host}: STATUS FAILED: {record['error']}\n"
    if not record["cluster"] or state is None:
        return f"{host}: no detached cluster\n"
    text = _describe(host, state)
    if record["failed"]:
        text += describe_failures(host, record["failed"])
    return text


def _describe(host: str, state: Dict) -> str:
    """A host's cluster, as its ``status`` answer says it."""
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
    sha = (cluster.get("bundle_sha256") or "?")[:12]  # null in a record: "?" too
    lines = [
        f"{host}: agent {'running' if agent['running'] else 'NOT RUNNING'} "
        f"(pid {agent['pid']}{exit_status}), {converged}, "
        f"mgmt {cluster.get('version', '?')} (bundle {sha}), "
        f"etcd {member}"
    ]
    if not cluster:
        lines.append(
            f"  ({state['dir']}/cluster.json is missing or unreadable; `mgmt stop` ends it)"
        )
    lines += [f"  | {shown_line(line)}" for line in state.get("log", "").splitlines()]
    return "\n".join(lines) + "\n"
