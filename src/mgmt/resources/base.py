"""The contract between the engine and every resource kind, and the kind registry.

The engine knows nothing about files, commands or servers: it drives objects that
implement :class:`Resource`. Each kind lives in its own module and is listed in
:data:`REGISTRY` as ``kind -> "module:Class"``; the module is imported only when a
graph uses that kind, so the agent starts fast and the bundle never pays for a
kind it does not run.

Writing a kind (see :mod:`mgmt.resources.noop` for the smallest one)::

    class Thing(Resource):
        kind = "thing"
        fields = {
            "path": Field(str, required=True, doc="what to manage"),
            "mode": Field((str, int), default="0644"),
            "state": Field(str, default="exists", choices=("exists", "absent")),
        }

        def watch(self) -> None:                 # optional
            self.cancel = self.init.watcher.watch_path(self.params["path"], self.init.event)

        def check_apply(self, apply: bool) -> bool:
            if state_is_right():
                return True                      # already fine, nothing touched
            if not apply:
                return False                     # noop: report only
            fix_it()                             # raise ResourceError on failure
            return False                         # it was wrong, now it is fixed

Lifecycle, in the order the engine calls it:

1. ``Thing(name, params, meta)``: ``params`` are already validated against
   :attr:`Resource.fields` (unknown keys, types, choices, required fields) and
   carry every field's default; ``name`` is the graph's name (without ``@@``).
   Keep the constructor cheap and free of side effects: graph validation builds
   one and throws it away, to run checks that need the name; such checks raise
   :class:`FieldError` there (reported as ``file:line``).
2. :meth:`Resource.setup` with one :class:`Init`: everything the resource may
   use (logger, world, hostname, a state dir, the shared file watcher,
   ``event()`` to say "check me again", ``wake()`` to say it for another resource
   (fileclaims' held-off ones), and ``services``, the agent's
   :class:`Services`). No module globals: state that resources of one agent
   share (an HTTP server and the files it serves) lives in one object of a
   kind's own class, got with ``init.services.get(TheClass)``; the engine
   creates one registry per agent and never looks inside, so it stays apart
   from the kinds, two agents in one process share nothing, and the object
   outlives graph reloads (a server replaced by an edit finds its files).
3. :meth:`Resource.watch`: start watching and return at once. Watches must be
   cheap: file kinds register with ``init.watcher`` (one inotify shared by all
   resources) instead of starting a thread each; kinds that need their own
   loop (a command's output, a server) start a daemon thread and stop it in
   :meth:`Resource.close`. Whenever the watched state may have changed, call
   ``init.event()``; it is safe from any thread and coalesces repeated calls.
4. :meth:`Resource.check_apply` from a worker thread, after every resource it
   depends on is fine, and again after each event. Never run twice at once for
   the same resource. ``apply`` is False in noop mode (``--noop`` or
   ``meta: {noop: true}``): then it must change nothing and only say whether the
   state is right (``changed_before`` then names the resources before this one
   that would change: what it sees may be what they would set up). Return True
   when the state was already right, False when it
   was wrong (and, if ``apply``, is now fixed); raise :class:`ResourceError`
   when it cannot be checked or fixed (the engine retries as ``meta`` says).
   A False result also makes the resources that depend on this one re-check.
5. :meth:`Resource.close` when the resource leaves the graph or the agent
   stops: stop threads and watches. Idempotent.

Optional hooks: :meth:`Resource.autogroup_key` and :meth:`Resource.merge`
(resources the kind applies together run as one, see mgmt.engine.autogroup),
:meth:`Resource.validate` (checks across fields,
raising :class:`FieldError`), :meth:`Resource.check_here` (checks of what is on
the host, when the host reads the graph), :meth:`Resource.autoedges` (ids a resource
provides and needs, so the engine orders them without explicit edges), and
:meth:`Resource.collected_params` (how a collect ``pattern`` rewrites a
resource exported by another host).
"""

import importlib
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
)

from mgmt.errors import MgmtError
from mgmt.log import Logger, get_logger

# Declared in their own module (the graph reader uses them too); kinds import them from here.
from mgmt.resources.fields import (
    META_FIELDS,
    Field,
    FieldError,
    Meta,
    fill_params,
    number_field,
    shown_name,
)

if TYPE_CHECKING:
    from typing import Protocol  # novermin (3.8+: for type checkers only)
else:  # at run time (Python 3.6 and 3.7 included) the interfaces below are plain classes
    Protocol = object

__all__ = [
    "META_FIELDS",
    "REGISTRY",
    "Cancel",
    "Field",
    "FieldError",
    "Init",
    "Meta",
    "Resource",
    "ResourceError",
    "Services",
    "Watcher",
    "fill_params",
    "kind_class",
    "known_kinds",
    "number_field",
]

# kind -> "module:Class", imported on first use (see kind_class).
REGISTRY: Dict[str, str] = {
    "noop": "mgmt.resources.noop:NoopRes",
    "file": "mgmt.resources.file:FileRes",
    "exec": "mgmt.resources.exec:ExecRes",
    "pkg": "mgmt.resources.pkg:PkgRes",
    "svc": "mgmt.resources.svc:SvcRes",
    "timer": "mgmt.resources.timer:TimerRes",
    "msg": "mgmt.resources.msg:MsgRes",
    "hostname": "mgmt.resources.hostname:HostnameRes",
    "http:server": "mgmt.resources.http:HttpServerRes",
    "http:server:file": "mgmt.resources.http:HttpFileRes",
    "tftp:server": "mgmt.resources.tftp:TftpServerRes",
    "tftp:server:file": "mgmt.resources.tftp:TftpFileRes",
}


class ResourceError(MgmtError):
    """A resource could not be checked or applied; names the resource.

    ``members``: for an autogrouped resource, the names of the members the error
    is about, when the others were checked (and fixed) all the same (one unknown
    package in a dnf transaction); None when it is about the whole group. As a
    dict, each member's own message (``said_of``): its row shows only its own.
    """

    def __init__(self, resource: str, message: str, members: Optional[Iterable[str]] = None):
        self.resource = resource
        self.message = message
        self.members = None if members is None else frozenset(members)
        self.said_of: Dict[str, str] = dict(members) if isinstance(members, dict) else {}
        super().__init__(f"{resource}: {message}")


class Cancel(Protocol):
    def __call__(self) -> None: ...


class Watcher(Protocol):
    """The agent's shared file watcher (one inotify instance for every resource)."""

    def watch_path(self, path: str, callback: Callable[[], None]) -> Cancel:
        """Call ``callback`` (on the watcher's thread: keep it quick) whenever
        ``path`` is created, written, deleted, renamed or has its mode changed,
        also when its directory does not exist yet or is removed."""

    def watch_tree(self, path: str, callback: Callable[[], None]) -> Cancel:
        """Like :meth:`watch_path`, and also for a change anywhere below ``path``."""

    def watch_target(self, path: str, callback: Callable[[], None]) -> Cancel:
        """Like :meth:`watch_path`, and where a symlink at ``path`` leads too (a file
        read through it, as a copy's source is)."""


_Service = TypeVar("_Service")


class Services:
    """Objects shared by the resources of one agent, one per class, made on first use.

    Resources cannot reach each other through the engine (it drives each on its
    own), so kinds that must meet (``http:server`` and ``http:server:file``)
    share an object of their own class here instead of a module global. The
    agent owns one registry for its lifetime and closes it when it stops.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: Dict[type, Any] = {}

    def get(self, cls: Type[_Service]) -> _Service:
        """This agent's one ``cls()``, built (without arguments) on the first call."""
        item = self._items.get(cls)  # made already: no lock (every check of a kind asks)
        if item is not None:
            return item
        with self._lock:
            item = self._items.get(cls)
            if item is None:
                item = self._items[cls] = cls()
            return item

    def close(self) -> None:
        """Close every object that has a ``close()``, and forget them all. Idempotent."""
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for item in items:  # each, whatever another's close() raised
            close = getattr(item, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as err:
                    get_logger("agent").warning("closing %s failed: %s", type(item).__name__, err)


class Init:
    """Everything a resource may use, handed to :meth:`Resource.setup` once."""

    def __init__(
        self,
        hostname: str,
        log: Logger,
        state_dir: str,
        watcher: Watcher,
        event: Callable[[], None],
        world: Any = None,
        stopping: Optional[threading.Event] = None,
        services: Optional[Services] = None,
    ):
        self.hostname = hostname
        self.log = log
        # Private to this resource; not created until the resource needs it.
        self.state_dir = state_dir
        self.watcher = watcher
        # "My state may have changed, check me again": from any thread, coalesced.
        self.event = event
        # The same, from something else than this resource's own doings (another
        # resource let go of what held it off): a failed resource gets a fresh
        # re-check even just after one (see mgmt.engine.retry). The engine sets it.
        self.wake = event
        # The cluster (mgmt.world.api.World), or None when the agent runs without one.
        self.world = world
        # Set when the agent is stopping: loops and long waits should end.
        self.stopping = threading.Event() if stopping is None else stopping
        # Shared by every resource of the agent (see Services); an Init built by
        # hand for one resource on its own gets a private registry.
        self.services = Services() if services is None else services


class Resource:
    """Base class of every kind; see the module docstring for the contract."""

    kind: ClassVar[str] = ""
    fields: ClassVar[Mapping[str, Field]] = {}

    def __init__(self, name: str, params: Mapping[str, Any], meta: Optional[Meta] = None):
        self.name = name
        self.params: Dict[str, Any] = dict(params)
        self.meta = meta or Meta()
        self.init: Init  # set by setup()
        # What the last check_apply found different (see note()); the engine
        # takes them after each run for --noop and --json (mgmt.engine.report).
        self.notes: List[Dict[str, Any]] = []
        # Set by the engine for each check (noop); read through changed_before_said().
        self.changed_before: Sequence[str] = []

    def __repr__(self) -> str:
        return f"{self.kind}[{shown_name(self.name)}]"  # in logs: cut and escaped

    def changed_before_said(self, most: int = 5) -> str:
        """The resources before this one that would change (noop), for a log line:
        the first ``most`` and how many more (a pkg after 10,000 files is one line)."""
        names = list(self.changed_before[:most])
        more = len(self.changed_before) - len(names)
        return ", ".join(names) + (f" (and {more} more)" if more else "")

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        """Cross-field checks after the per-field ones; raise :class:`FieldError`."""

    @classmethod
    def check_here(cls, name: str, params: Mapping[str, Any]) -> None:
        """Checks that look at this host (what a path is), raising :class:`FieldError`:
        run when the graph is read on the host that runs it, never by an initiator,
        whose files are not the host's. What is missing may be made yet: no error."""

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        """(ids this resource provides, ids it needs): the engine adds an edge from
        every provider of a needed id to this resource when ``meta.autoedge`` is on."""
        return [], []

    @classmethod
    def collected_params(cls, name: str, params: Mapping[str, Any], pattern: str) -> Dict[str, Any]:
        """Parameters of a resource collected from the world, given the collect
        ``pattern`` (empty for none); kinds that understand patterns rewrite
        them here (file: the pattern replaces the directory)."""
        return dict(params)

    @classmethod
    def check_collect_pattern(cls, pattern: str) -> None:
        """FieldError("pattern", ...) for a collect pattern this kind cannot use,
        when the graph is read (not once per collected resource, at run time)."""
        if pattern:
            raise FieldError("pattern", f"{cls.kind} takes no collect pattern")

    @classmethod
    def covers(cls, name: str, params: Mapping[str, Any]) -> Optional[str]:
        """An id this resource manages with what is below it (a tree copied or
        removed whole): another resource providing an id below it may fight it
        (:meth:`fights`). None (the default): only its own ids."""
        return None

    @classmethod
    def fights(
        cls, cover: str, params: Mapping[str, Any], ident: str, other: Mapping[str, Any], here: bool
    ) -> bool:
        """Whether a resource of this kind with ``other`` params, providing ``ident``
        below the ``cover`` a resource with ``params`` covers, would undo its changes;
        ``here``: on the host that runs the graph (its files can be looked at)."""
        return True

    @classmethod
    def autogroup_key(cls, name: str, params: Mapping[str, Any]) -> Optional[str]:
        """Resources of this kind with equal keys (and ``meta.autogroup`` on) may run
        as one: the engine builds them all and calls :meth:`merge` on the first.
        None (the default) never groups."""
        return None

    def merge(self, members: "List[Resource]") -> None:
        """Make this resource (the group's leader) answer for ``members`` too: its
        setup, watch, check_apply and close then cover them all. Called before
        setup; only kinds whose :meth:`autogroup_key` returns a key need it."""
        raise NotImplementedError(f"{self.kind} does not group")

    def note(
        self,
        field: str,
        wanted: Any,
        actual: Any,
        diff: Optional[str] = None,
        member: Optional[str] = None,
        path: Optional[str] = None,
    ) -> None:
        """Record that ``field`` is ``actual`` where the graph wants ``wanted``
        (``diff``: a unified diff of content; ``member``: which grouped resource;
        ``path``: which entry of a tree copy). Call it from check_apply for each
        difference found, in noop mode too: it is what ``--noop`` shows and
        ``--json`` reports as changed."""
        entry: Dict[str, Any] = {"field": field, "wanted": wanted, "actual": actual}
        if path is not None:
            entry["path"] = path
        if diff is not None:
            entry["diff"] = diff
        if member is not None:
            entry["resource"] = member
        self.notes.append(entry)

    def setup(self, init: Init) -> None:
        self.init = init

    def watch(self) -> None:
        """Start watching; return at once. The default watches nothing."""

    def check_apply(self, apply: bool) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Stop what watch() started. The default has nothing to stop."""


def known_kinds() -> List[str]:
    return sorted(REGISTRY)


def kind_class(kind: str) -> type:
    """The class for ``kind``, importing its module on first use; KeyError if unknown."""
    target = REGISTRY[kind]
    cls = _classes.get(target)
    if cls is None:
        module_name, _, class_name = target.partition(":")
        cls = _classes[target] = getattr(importlib.import_module(module_name), class_name)
    return cls


_classes: Dict[str, type] = {}  # "module:Class" -> class, filled by kind_class
