"""What a secondary is handed: its subtree, the host keys for it, the run's options.

One JSON document (the "plan"), sent as START's graph (so it is written to the
secondary's run dir, 0600, and removed with it):

    {"version": 1,
     "hosts": [{"target", "user", "port", "python", "sudo", "graph_name", "graph",
                "via": [hops]}],  # graph: what the host is sent (see plan_payload)
     "known_hosts": "the initiator's known_hosts lines for every host below",
     "aliases": {"alias": {"hostname", "port", "user"}},  # from the initiator's ssh_config
     "options": {"stop_grace", "cconns", "converged_timeout", "lost_timeout", "accept_new",
                 "caching",
                 "bundle_sha256", "bundle_build_id"}}

Each host's ``via`` is what is left of its hops after this secondary (a host
with hops left is run by a secondary below this one: depth 3 and more);
``python`` is its graph's ``python:`` (or --python), null to discover one;
``sudo`` the user its agent runs as through sudo (null: the login user; the
password, if any, comes on the secondary's stdin, never in the plan).
Standard library only, Python 3.6+ (read on secondaries).
"""

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mgmt.errors import InputError
from mgmt.remote.hierarchy.hops import Subtree
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration.context import Payload, graph_payload

VERSION = 1
OPTIONS = (
    "stop_grace",
    "cconns",
    "converged_timeout",
    "lost_timeout",
    "accept_new",
    "caching",
    "bundle_sha256",
    "bundle_build_id",
)


# Each level below stops its hosts this much sooner than the level above kills it
# (SIGKILL after its own grace): a stop reaches every level within the initiator's.
GRACE_STEP = 3.0
MIN_GRACE = 2.0


def grace_below(grace: float) -> float:
    """The SIGINT-to-SIGKILL grace of the sessions one level down."""
    return max(MIN_GRACE, grace - GRACE_STEP)


def _hop(spec: HostSpec) -> Dict[str, Any]:
    return {"target": spec.target, "user": spec.user, "port": spec.port}


def plan_for(
    subtree: Subtree, trust: Dict[str, Any], options: Dict[str, Any], payload: Payload
) -> Dict[str, Any]:
    """The plan of one secondary (graphs read now: an unreadable one is an InputError);
    ``trust``: its ``known_hosts`` and ``aliases``; ``payload``: what a host is sent
    for its graph file (mgmt.remote.orchestration.context.graph_payload: the JSON
    form when the graph has one), done here once, not by every secondary below."""
    hosts = []
    for spec in subtree.hosts:
        try:
            text = payload(spec.graph)[0].decode("utf-8")
        except OSError as err:
            raise InputError(f"{spec.graph}: {err.strerror}") from None
        entry = _hop(spec)
        entry.update(
            python=spec.python,
            sudo=spec.sudo or None,
            graph_name=spec.graph.name,
            graph=text,
            via=[_hop(h) for h in spec.via],
        )
        hosts.append(entry)
    return {
        "version": VERSION,
        "hosts": hosts,
        "known_hosts": trust["known_hosts"],
        "aliases": trust["aliases"],
        "options": {name: options[name] for name in OPTIONS},
    }


def write_plan(plan: Dict[str, Any], path: Path) -> Path:
    """The plan as a file (0600): the session sends it as the secondary's graph."""
    _replace(path, json.dumps(plan))
    return path


def _replace(path: Path, text: str) -> None:
    """Write a whole file (0600) by renaming: a watcher never reads half of it."""
    temp = path.with_name(f".{path.name}.new")
    fd = os.open(str(temp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(str(temp), str(path))


def _spec(entry: Dict[str, Any], graph: Path) -> HostSpec:
    return HostSpec(
        target=entry["target"],
        graph=graph,
        user=entry.get("user"),
        port=entry.get("port"),
        python=entry.get("python"),
        sudo=entry.get("sudo"),
        via=tuple(_spec(hop, graph) for hop in entry.get("via") or ()),
    )


def load_plan(path: Path, workdir: Path) -> Tuple[List[HostSpec], Dict[str, Any], Dict[str, Any]]:
    """The hosts of a plan file (their graphs written under ``workdir``), its trust
    (known_hosts, aliases) and options; InputError for a plan this bundle cannot read."""
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        if plan.get("version") != VERSION:
            raise ValueError(f"version {plan.get('version')!r}, this bundle reads {VERSION}")
        specs = []
        for i, entry in enumerate(plan["hosts"]):
            graph = _graph_path(workdir, i, entry)
            graph.parent.mkdir(parents=True, mode=0o700)
            _replace(graph, entry["graph"])
            specs.append(_spec(entry, graph))
        trust = {"known_hosts": plan["known_hosts"], "aliases": plan["aliases"]}
        return specs, trust, plan["options"]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"secondary plan {path}: {err}") from None


def plan_payload(graph: Path) -> Tuple[bytes, Optional[str]]:
    """What a host below is sent for a graph file written from the plan.

    The plan holds each graph as the initiator's payload made it: its JSON form
    (one line) whenever it has one, else the graph's own text, which is then YAML
    that JSON cannot read (a date, a key like 1:, a bad graph). So a file that
    reads as JSON is sent as it is, and PyYAML is never imported here: its import
    and a parse per host were a fifth of a secondary's CPU (20 hosts). Any other
    file is read as the initiator reads it."""
    text = graph.read_text(encoding="utf-8")
    if "\n" not in text:
        try:
            json.loads(text)
        except ValueError:
            pass
        else:
            return text.encode("utf-8"), text
    return graph_payload(graph)


def _graph_path(workdir: Path, index: int, entry: Dict[str, Any]) -> Path:
    return workdir / "graphs" / str(index) / os.path.basename(entry["graph_name"])


def update_graphs(path: Path, workdir: Path) -> List[Path]:
    """After the plan was edited (a graph saved on the initiator): rewrite the
    graphs whose text changed (the fan-out's watcher sends them on); those paths.
    The hosts themselves are the run's: a host added to the plan is not started."""
    plan = json.loads(path.read_text(encoding="utf-8"))
    changed = []
    for i, entry in enumerate(plan["hosts"]):
        graph = _graph_path(workdir, i, entry)
        if graph.is_file() and graph.read_text(encoding="utf-8") != entry["graph"]:
            _replace(graph, entry["graph"])
            changed.append(graph)
    return changed
