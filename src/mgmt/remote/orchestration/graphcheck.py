"""Which version of a graph file its host is sent, on the initiator of a remote run.

An edit is checked as ``mgmt run --file`` checks a graph, and against the host,
login, hops, sudo and python the run started with: the agent stays where and
as it was started. Used by the fan-out (edits, starts) and by the secondaries'
plans (mgmt.remote.hierarchy).
"""

from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

from mgmt.errors import GraphError
from mgmt.graph.located import load_located
from mgmt.graph.model import Graph
from mgmt.graph.parse import parse_document, read_graph_text
from mgmt.log import get_logger
from mgmt.remote.orchestration.context import graph_payload, payload_of

log = get_logger("remote")

# The keys that say where and how a graph's agent runs (fab deploy's graphs have none).
PLACE_KEYS = ("remote", "via", "sudo", "python")


class CheckedGraphs:
    """What a host is sent for a graph file (context.graph_payload), once the file
    passed the checks of ``mgmt run --file`` and still names the host, login,
    hops, sudo and python the run started with. Other files (a secondary's plan,
    written here) are sent as they are.

    Calling it is an edit's check: GraphError if the file fails, and nothing is
    sent. :meth:`at_start` is a start's: a host that waited for its turn
    (--cconns) while its file was edited into a bad state starts with the last
    version that passed, as a running one keeps it; :meth:`standing` is what the
    other hosts below a secondary keep when one of theirs is edited.
    """

    def __init__(self, graphs: Iterable[Path]):
        # Taken as the run starts, not at a host's first send: an edit made while
        # a host waits for its turn must not move it to another host.
        self._placed: Dict[Path, Tuple] = {}
        self._good: Dict[Path, Tuple[bytes, Optional[str]]] = {}
        for graph in map(Path, graphs):
            parsed, self._good[graph] = _checked(graph)
            self._placed[graph] = _place(parsed)

    def __call__(self, graph: Path) -> Tuple[bytes, Optional[str]]:
        if graph not in self._placed:  # a secondary's plan, written here
            sent = self._good[graph] = graph_payload(graph)
            return sent
        parsed, payload = _checked(graph)
        now = _place(parsed)
        changed = [f"{name}:" for name, a, b in zip(PLACE_KEYS, self._placed[graph], now) if a != b]
        if changed:
            raise GraphError(
                f"{', '.join(changed)} changed while the run runs: the agent stays where "
                "and as it was started (stop the run and start it again to move it)",
                str(graph),
            )
        sent = self._good[graph] = payload
        return sent

    def at_start(self, graph: Path) -> Tuple[bytes, Optional[str]]:
        try:
            return self(graph)
        except (GraphError, OSError) as err:  # OSError: gone for a moment (an editor's save)
            log.warning("%s; starting with its last version that passed", err)
            return self._last_good(graph, err)

    def standing(self, graph: Path) -> Tuple[bytes, Optional[str]]:
        """What a host keeps for ``graph`` when another graph's edit is sent (a
        secondary's plan holds every graph below it): as now if it passes, else
        its last version that did, in silence (its own edit was reported)."""
        try:
            return self(graph)
        except (GraphError, OSError) as err:
            return self._last_good(graph, err)

    def _last_good(self, graph: Path, err: Exception) -> Tuple[bytes, Optional[str]]:
        good = self._good.get(graph)
        if good is None:
            raise err
        return good


def _checked(graph: Path) -> Tuple[Graph, Tuple[bytes, Optional[str]]]:
    """The graph file parsed as ``mgmt run --file`` checks it, and what its host is
    sent: read once (what is checked is what is sent), its YAML read once."""
    text = read_graph_text(graph)
    document = load_located(text, str(graph))
    return parse_document(document, text, str(graph)), payload_of(text, document)


def _place(graph) -> Tuple:
    """A parsed graph's keys of where and how its agent runs (PLACE_KEYS)."""
    return (graph.remote, graph.via, graph.sudo, graph.python)
