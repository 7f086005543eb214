"""The narrow interface between the engine and the shared world.

The engine never talks to etcd directly: it publishes its exported resources,
reads everyone's exports of the kinds it collects, reports whether it is
converged, and is told when any of that changes. Key layout (mgmt's own):

    /_mgmt/exported/<hostname>/resources/<kind>/<name>   JSON of the resource
        (its parameters; the meta that differs from the defaults under "meta")
    /_mgmt/converged/<hostname>                          "true" | "false"
    /_mgmt/failed/<hostname>                             JSON list, see Failure
    /_mgmt/hosts/<hostname>                              the agent that holds the name

The last two keys are this project's. The failed key is there only while the
host is converged with resources that ended failed, so a cluster that runs on
without its initiator (``--detach``) can still say that a host failed. The
hosts key, bound to a lease, is held by the agent that publishes under that
name, so that a second agent of the same name is told instead of overwriting
the first one's exports (:mod:`mgmt.world.hosthold`).
"""

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Sequence,
    Tuple,
)

if TYPE_CHECKING:
    from typing import Protocol  # novermin (3.8+: for type checkers only)
else:  # at run time (Python 3.6 and 3.7 included) the interfaces below are plain classes
    Protocol = object

EXPORTED_PREFIX = "/_mgmt/exported/"
CONVERGED_PREFIX = "/_mgmt/converged/"
FAILED_PREFIX = "/_mgmt/failed/"
HOSTS_PREFIX = "/_mgmt/hosts/"

# A resource is identified by (kind, name).
ResourceKey = Tuple[str, str]


class ExportedResource(NamedTuple):
    """One resource some host exported: who, what, and its parameters."""

    hostname: str
    kind: str
    name: str
    params: Dict[str, Any]


# What a Failure keeps of its error: a host's failures are one etcd value, kept small.
FAILURE_ERROR_MAX = 500


class Failure(NamedTuple):
    """A resource that ended failed (no retry left), and its last error (cut to
    FAILURE_ERROR_MAX characters, ending in "..." then)."""

    kind: str
    name: str
    error: str


class Cancel(Protocol):
    def __call__(self) -> None: ...


class World(Protocol):
    """What an agent needs from the cluster."""

    hostname: str

    def export(self, resources: Mapping[ResourceKey, Dict[str, Any]]) -> None:
        """Publish all of this host's exports in one transaction (in batches when they
        are more than a stock etcd takes in one: 128 keys, 1.5 MiB).

        Keys of this host that are no longer exported are deleted in the same
        transaction; an unchanged value is not rewritten (so it fires no watch).
        """

    def collect(self, kinds: Iterable[str]) -> List[ExportedResource]:
        """Every host's exported resources of the given kinds, this host's included."""

    def watch_exported(self, callback: Callable[[], None]) -> Cancel:
        """Call ``callback`` (from a background thread) on every change under the exported prefix.

        Changes since this world's last :meth:`collect` count too, so "collect,
        then watch" misses nothing. The callback is a nudge to collect again;
        it must not block for long. Calling the returned Cancel stops it.
        """

    def set_converged(self, converged: bool, failed: Sequence[Failure] = ()) -> None:
        """Record this host's converged state, and the resources that ended failed
        when converged (written only when they change)."""

    def converged_hosts(self) -> Dict[str, bool]:
        """The converged state every host last reported."""

    def watch_converged(self, callback: Callable[[], None]) -> Cancel:
        """Call ``callback`` on every change under the converged prefix.

        Like :meth:`watch_exported`, it counts changes since the last
        :meth:`converged_hosts`.
        """

    def close(self) -> None:
        """Stop watches and release the connection."""
