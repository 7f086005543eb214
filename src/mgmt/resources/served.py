"""What the server kinds share: run a server while in the graph, add files to it.

``http:server`` and ``tftp:server`` (:class:`ServerRes`) each run one server
while they are in the graph; ``http:server:file`` and ``tftp:server:file``
(:class:`ServedFileRes`) each add one file to a server named in the graph. The
two sides meet on the agent's one :class:`mgmt.net.board.Board` (from
``init.services``); a file kind needs its server by autoedge, so the server
starts first. The kinds themselves live in :mod:`mgmt.resources.http` and
:mod:`mgmt.resources.tftp`; this module is no kind and is not in the registry.
"""

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Tuple

from mgmt.net.board import Board, Published
from mgmt.net.content import Content, normalize_mac, parse_address, url_key
from mgmt.resources.base import Field, FieldError, Init, Resource, ResourceError
from mgmt.resources.fields import shown

__all__ = ["ServedFileRes", "ServerRes", "file_fields", "server_fields"]

# A server replaced by a graph edit may still hold its port for a moment.
_BIND_PATIENCE = 3.0


class _InGraph:
    """The server resources of this agent's graph, (protocol, name) -> how many are
    set up (a graph edit sets the new one up before it closes the old one).

    Under ``--noop`` no server listens, so the board cannot tell a file whose
    server would start from one whose server the graph lacks, which the real
    run fails: this can (one per agent, from ``init.services``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: Dict[Tuple[str, str], int] = {}

    def add(self, key: Tuple[str, str]) -> None:
        with self._lock:
            self._count[key] = self._count.get(key, 0) + 1

    def discard(self, key: Tuple[str, str]) -> None:
        with self._lock:
            left = self._count.get(key, 0) - 1
            if left > 0:
                self._count[key] = left
            else:
                self._count.pop(key, None)

    def __contains__(self, key: Tuple[str, str]) -> bool:
        with self._lock:
            return key in self._count


class _OnBoard(Resource):
    """A kind that meets its server or files on the agent's board."""

    @property
    def board(self) -> Board:
        return self.init.services.get(Board)


class ServerRes(_OnBoard):
    """Shared by the HTTP and TFTP server kinds: run a server while in the graph.

    check_apply starts the server (never in noop mode); the server's own loop
    then stands for the resource's watch: if it ever stops, an event makes the
    engine check again and start it anew.
    """

    protocol: ClassVar[str] = ""
    default_port: ClassVar[int] = 0

    def __init__(self, name: str, params: Mapping[str, Any], meta: Any = None):
        super().__init__(name, params, meta)
        self._server: Any = None
        self._counted = False  # in the agent's _InGraph

    def setup(self, init: Init) -> None:
        super().setup(init)
        init.services.get(_InGraph).add((self.protocol, self.name))
        self._counted = True

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        address = params["address"]
        if address.strip().isdigit():
            # `address: 8080` was the host 8080 (read as 0.0.31.144) on port 80,
            # which failed to bind at run time: the graph meant a port.
            raise FieldError(
                "address", f"{shown(address)} is no host: write ':{address.strip()}' for a port"
            )
        try:
            parse_address(address, cls.default_port)
        except ValueError as error:
            raise FieldError("address", str(error)) from None
        root = params.get("root") or ""
        if root and not os.path.isabs(root):
            raise FieldError("root", f"must be an absolute path, not {shown(root)}")

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        root = params.get("root") or ""
        needs = ["file:" + os.path.normpath(root)] if root else []
        provides = [f"{cls.kind}:{name}"]
        # Its address too: two servers of a graph on one address (written the same
        # way; port 0 is any free one) cannot both listen, so the graph refuses them.
        try:
            host, port = parse_address(params["address"], cls.default_port)
        except (KeyError, TypeError, ValueError):  # validate() says why
            port = 0
        if port:
            provides.append(f"{cls.protocol} on {host} port {port}")
        return provides, needs

    def _make_server(self, host: str, port: int, overlay: Dict[str, Any]) -> Any:
        raise NotImplementedError

    def _running(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def check_apply(self, apply: bool) -> bool:
        if self._running():
            return True
        root = self.params["root"]
        # Every request would be a 404. Under noop, a resource before it that would
        # change (a file making the folder) may be what makes it: not this one's fault.
        after = "" if apply or not self.changed_before else self.changed_before_said()
        missing = bool(root) and not os.path.isdir(root)
        if missing and not after:
            raise ResourceError(repr(self), f"root {root} is no directory (missing?)")
        host, port = parse_address(self.params["address"], self.default_port)
        where = f"{host} port {port}"
        self.note("state", f"serving on {where}", "stopped" if self._server is None else "ended")
        if not apply:
            why = f"; after {after}, which would change" if missing else ""
            self.init.log.info("would serve %s on %s (noop%s)", root or "files", where, why)
            return False
        self._stop()
        deadline = time.monotonic() + _BIND_PATIENCE
        while True:
            try:
                self._server = self._make_server(host, port, {})
                break
            except OSError as error:
                if time.monotonic() >= deadline or self.init.stopping.is_set():
                    raise ResourceError(
                        repr(self), f"cannot listen on {host} port {port}: {error.strerror}"
                    ) from None
                time.sleep(0.1)
        self._server.start(on_exit=self.init.event)
        self.board.attach(self.protocol, self.name, self._server.set_overlay)
        host, port = self._server.address
        self.init.log.info("serving %s on %s port %d", self.params["root"] or "files", host, port)
        return False

    def _stop(self) -> None:
        if self._server is not None:
            self.board.detach(self.protocol, self.name, self._server.set_overlay)
            self._server.stop()
            self._server = None

    def close(self) -> None:
        self._stop()
        if self._counted:
            self._counted = False
            self.init.services.get(_InGraph).discard((self.protocol, self.name))


def server_fields(default_port: int, root_doc: str, **extra: Field) -> Dict[str, Field]:
    """The fields every server kind has (where to listen, what tree), then its own."""
    return {
        "address": Field(
            str, default=f":{default_port}", doc="host:port to listen on; :port for all"
        ),
        "root": Field(str, default="", doc=root_doc),
        **extra,
    }


class ServedFileRes(_OnBoard):
    """Shared by the HTTP and TFTP file kinds: one URL on a named server."""

    protocol: ClassVar[str] = ""
    server_kind: ClassVar[str] = ""

    def __init__(self, name: str, params: Mapping[str, Any], meta: Any = None):
        super().__init__(name, params, meta)
        self.url_path = self._url_path(name, self.params)
        self.mac = normalize_mac(self.params.get("mac") or "") or ""
        self._cancel: List[Callable[[], None]] = []
        # Inline bodies keep one Content (one ETag, one Last-Modified) for their lifetime.
        content = self.params["content"]
        self.source = (
            Content.from_bytes(content.encode("utf-8"))
            if content is not None
            else Path(self.params["source"])
        )

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        has_source, has_content = bool(params["source"]), params["content"] is not None
        if has_source == has_content:
            raise FieldError("content", "give exactly one of source (a path) or content")
        if has_source and not os.path.isabs(params["source"]):
            raise FieldError("source", f"must be an absolute path, not {shown(params['source'])}")
        if isinstance(params.get("mac"), int):
            raise FieldError("mac", f"{_sexagesimal(params['mac'])} reads as a number: quote it")
        if isinstance(params.get("mac"), str) and not params["mac"].strip():
            # `mac: "$MAC"` with nothing in $MAC: not a file for every host.
            raise FieldError("mac", "empty: give a MAC, or leave the field out to serve every host")
        if params.get("mac") and normalize_mac(params["mac"]) is None:
            raise FieldError("mac", f"not a MAC address: {shown(params['mac'])}")

    @staticmethod
    def _url_path(name: str, params: Mapping[str, Any]) -> str:
        """The overlay key the file is served under (as the servers look requests up)."""
        return url_key(params["path"] or name)

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        needs = [f"{cls.server_kind}:{params['server']}"]
        if params.get("source"):
            needs.append("file:" + os.path.normpath(params["source"]))
        # What it serves is its identity: two files for one URL on one server (and one
        # MAC) would have one silently win, so the graph refuses them as a clash.
        served = f"{cls.server_kind}[{params['server']}]{cls._url_path(name, params)}"
        mac = normalize_mac(params.get("mac") or "") if isinstance(params.get("mac"), str) else ""
        return [served + (f" for MAC {mac}" if mac else "")], needs

    def _wanted(self) -> Published:
        return (self.url_path, self.mac, self.source)

    def check_apply(self, apply: bool) -> bool:
        server = self.params["server"]
        # Under noop, a resource before it that would change may make the source.
        after = "" if apply or not self.changed_before else self.changed_before_said()
        missing = isinstance(self.source, Path) and not self.source.is_file()
        if missing and not after:
            raise ResourceError(repr(self), f"source {self.source} is not a file")
        published = self.board.published(self.protocol, server, self.name)
        attached = self.board.attached(self.protocol, server)
        if published == self._wanted() and attached:
            return True
        # Under noop a server of the graph that would start is the one it needs;
        # with none in the graph, the real run would fail: so does this one.
        coming = not apply and (self.protocol, server) in self.init.services.get(_InGraph)
        if not attached and not coming:
            raise ResourceError(
                repr(self), f"no {self.server_kind} named {shown(server)} is running"
            )
        self.note("served", self._said(), None if published is None else "other content")
        if not apply:
            why = f"; after {after}, which would change" if missing else ""
            self.init.log.info("would serve %s (noop%s)", self._said(), why)
            return False
        self.board.publish(self.protocol, server, self.name, self._wanted())
        return False

    def _said(self) -> str:
        """What it serves where, as the log and --noop say it."""
        what = "inline content" if isinstance(self.source, Content) else str(self.source)
        mac = f" to MAC {self.mac}" if self.mac else ""
        return f"{what} at {self.url_path} on {self.server_kind}[{self.params['server']}]{mac}"

    def watch(self) -> None:
        # A server removed or renamed by a graph edit: check again, and fail as
        # at start, rather than go unserved without a word.
        server = self.params["server"]
        self._cancel.append(self.board.on_detach(self.protocol, server, self.init.event))
        # A source file is read afresh at each request; watching it lets the
        # engine notice (and report) when it disappears.
        if isinstance(self.source, Path):
            self._cancel.append(self.init.watcher.watch_path(str(self.source), self.init.event))

    def close(self) -> None:
        while self._cancel:
            self._cancel.pop()()
        self.board.withdraw(self.protocol, self.params["server"], self.name)


def _sexagesimal(number: int) -> str:
    """How YAML 1.1 got ``number`` from an unquoted MAC, to name it in the error."""
    groups = []
    for _ in range(6):
        number, group = divmod(number, 60)
        groups.append(f"{group:02d}")
    return ":".join(reversed(groups))


def file_fields(path_doc: str, per_mac: bool) -> Dict[str, Field]:
    """The fields every served-file kind has; ``mac`` only where clients send theirs."""
    fields = {
        "server": Field(str, required=True, doc="name of the server resource"),
        "path": Field(str, default="", doc=path_doc),
        "source": Field(str, default="", doc="absolute path of the file to serve"),
        "content": Field(str, default=None, doc="inline body (e.g. a rendered kickstart)"),
    }
    if per_mac:  # only HTTP clients announce their MACs (dracut's inst.ks.sendmac)
        # int too: YAML 1.1 reads an unquoted 52:54:00:12:34:56 as a base-60 number.
        # No default: an empty one given is refused, not read as "every host".
        fields["mac"] = Field((str, int), default=None, doc="serve this body only to this MAC")
    return fields
