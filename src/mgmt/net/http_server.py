"""A threaded, read-only HTTP/1.1 file server with full Range support.

Why our own: CPython's http.server has no Range support (cpython #86809) and
rangehttpserver 1.4.0 answers suffix and multi-range requests with 400, never
sends ``Content-Range: bytes */LEN`` and lets HEAD return 206.
anaconda, dnf/librepo and zchunk all send ranges, so a provisioning server must
get them right. The rules live in :mod:`mgmt.net.http_range`; this module does
the I/O: path safety, headers, and bodies streamed with :mod:`mgmt.net.sendfile`
(the kernel's sendfile) so that a DVD image never passes through Python memory.
"""

import email.utils
import io
import secrets
import socket
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import TCPServer, ThreadingMixIn
from typing import BinaryIO, Dict, Optional, Tuple, Union

from mgmt.log import get_logger
from mgmt.net.background import BackgroundServer
from mgmt.net.connections import EndsConnectionsOnStop
from mgmt.net.content import (
    Content,
    MacSelector,
    NotServable,
    Overlay,
    content_type,
    open_source,
    resolve_under,
    url_key,
)
from mgmt.net.http_range import (
    MAX_RANGES,
    ByteRange,
    last_modified,
    multipart_layout,
    plan_response,
)
from mgmt.net.http_request import closes, field, has_body, request_path, request_problem
from mgmt.net.linger import linger
from mgmt.net.listing import html_listing
from mgmt.net.sendfile import send_range

__all__ = ["HttpFileServer"]

log = get_logger("http")

# A client that hangs up or stalls mid-body: end that connection quietly.
# socket.timeout too: before Python 3.10 it is not a TimeoutError (RHEL 9 has 3.9).
_HANGUPS = (
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    TimeoutError,
    socket.timeout,
)


def _printable(text: str, limit: int = 200) -> str:
    """Request text for a log line: control characters escaped, and not 64 KiB of it."""
    shown = text[:limit].encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown + ("..." if len(text) > limit else "")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mgmt-http"

    def version_string(self) -> str:
        return self.server_version

    @property
    def timeout(self) -> float:  # type: ignore[override]
        # Idle keep-alive connections and clients that stop reading are dropped.
        return self.server.timeout

    # Headers and body leave in separate writes; with Nagle on, the body would
    # wait for the client's delayed ACK (40 ms per request on Linux).
    disable_nagle_algorithm = True
    server: "_Server"

    _by_mac = False  # this request's body was picked by the MACs the client sent

    # A request line without a version would otherwise be taken for HTTP/0.9 and
    # answered without a status line: a client could not tell a 400 from a body.
    default_request_version = "HTTP/1.0"

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if len(self.requestline.split()) != 3:  # "GET /": HTTP/0.9, long obsolete
            self.send_error(400, "HTTP/0.9 requests are not served")
            return False
        problem = request_problem(self.request_version, self.headers)
        if problem is not None:
            self.send_error(400, problem)  # with Connection: close: we cannot tell where it ends
            return False
        # A request read as the server stopped is the connection's last.
        self.close_connection = closes(self.headers, self.close_connection) or self.server.stopped
        return True

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _refuse(self) -> None:
        self.close_connection = True  # its body, if any, is never read
        self._send_empty(405, {"Allow": "GET, HEAD"})

    def finish(self) -> None:
        super().finish()
        # The client may still be sending a body we never read: see mgmt.net.linger.
        if has_body(getattr(self, "headers", None)):  # none after a bad request line
            linger(self.connection)

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    # -- finding the body -------------------------------------------------
    def _find(self) -> Optional[Tuple[Content, BinaryIO, str]]:
        """The body for this request, already open, and a name for its type; None when answered.

        Opened before any status line: once a 200 is sent, a file that cannot be
        read could only end in a closed connection. Here it gets a 403 (a 404 if it
        is gone), for GET, HEAD and ranges alike.
        """
        url_path = request_path(self.path)
        if url_path is None:
            self._send_empty(404)
            return None
        key = url_key(url_path)
        entry = self.server.overlay.get(key)
        try:
            if entry is not None:
                if isinstance(entry, MacSelector):
                    self._by_mac = True
                    entry = entry.select(self.headers.items())
                content, body = open_source(entry)
                return content, body, key
            root = self.server.root
            target = resolve_under(root, url_path) if root is not None else None
            if target is None:
                raise NotServable(NotServable.MISSING, "outside the served tree")
            return self._open_in_tree(url_path, target)
        except NotServable as refusal:
            self._send_refusal(refusal)
            return None

    def _open_in_tree(self, url_path: str, target: Path) -> Optional[Tuple[Content, BinaryIO, str]]:
        try:
            is_dir = target.is_dir()
        except OSError as error:  # e.g. a parent directory we may not search
            raise NotServable.from_error(error, target) from None
        if not is_dir:
            content, body = open_source(target, in_tree=True)
            return content, body, target.name
        if not url_path.endswith("/"):
            # From the key: "//images" would send the client to a host named "images".
            location = urllib.parse.quote(url_key(url_path) + "/", errors="surrogateescape")
            self._send_empty(301, {"Location": location})
            return None
        try:
            # Checked like any path in the tree: an index.html linking out of it is none.
            index = resolve_under(self.server.root, url_path + "index.html")
            content, body = open_source(index, in_tree=True)
            return content, body, "index.html"
        except NotServable as refusal:
            if refusal.kind != NotServable.MISSING:
                raise  # an index.html we cannot read is not replaced by a listing
        try:
            listing = Content.from_bytes(html_listing(url_path, target))
        except OSError as error:
            raise NotServable.from_error(error, target) from None
        return listing, io.BytesIO(listing.data or b""), "index.html"

    def _send_refusal(self, refusal: NotServable) -> None:
        """404, 403 or 500; one log line for the operator when the cause is on this side."""
        if refusal.kind == NotServable.MISSING:
            self._send_empty(404)
            return
        shown = _printable(f"{self.command} {self.path}")
        if refusal.kind == NotServable.FORBIDDEN:
            log.warning("%s %s: %s", self.client_address[0], shown, refusal)
            self._send_empty(403)
        else:
            log.error("%s %s: %s", self.client_address[0], shown, refusal)
            self._send_empty(500)

    # -- answering --------------------------------------------------------
    def _serve(self) -> None:
        self._by_mac = False
        if has_body(self.headers):
            # A GET with a body: we never read it, so the connection cannot be reused.
            self.close_connection = True
        found = self._find()
        if found is None:
            return
        content, body, name = found
        with body:
            self._answer(content, body, name)

    def _answer(self, content: Content, body: BinaryIO, name: str) -> None:
        now = time.time()
        mtime = last_modified(content.mtime, now)
        plan = plan_response(
            self.command,
            content.size,
            content.etag,
            mtime,
            lambda name: field(self.headers, name),
            now,
            self.server.max_ranges,
        )
        validators = {
            "ETag": content.etag,
            "Last-Modified": email.utils.formatdate(mtime, usegmt=True),
        }
        if plan.status in (304, 412):
            self._send_empty(plan.status, validators)
            return
        if plan.status == 416:
            self._send_empty(416, {"Content-Range": f"bytes */{content.size}"})
            return
        type_ = content_type(name)
        # Ranges off (max_ranges 0): say so (RFC 9110, 14.3), not "bytes" that no request gets.
        ranges = "bytes" if self.server.max_ranges else "none"
        headers: Dict[str, Union[str, int]] = {"Accept-Ranges": ranges, **validators}
        headers["Content-Type"] = type_
        tail = b""
        if plan.status == 200:
            whole = (ByteRange(0, content.size - 1),) if content.size else ()
            parts = [(b"", byte_range) for byte_range in whole]
            headers["Content-Length"] = content.size
        elif not plan.multipart:
            parts = [(b"", plan.ranges[0])]
            headers["Content-Length"] = plan.ranges[0].length
            headers["Content-Range"] = plan.ranges[0].content_range(content.size)
        else:
            boundary = secrets.token_hex(16)
            parts, tail, length = multipart_layout(plan.ranges, content.size, type_, boundary)
            headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
            headers["Content-Length"] = length
        self._head(plan.status, headers)
        if self.command == "HEAD":
            return
        self._send_body(body, parts, tail)

    def _head(self, status: int, headers: Dict[str, Union[str, int]]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, str(value))
        # Say how the connection goes on (RFC 9112, 9.3 and 9.6): a client that
        # asked for close, or sent a body we do not read, learns that this answer
        # ends it; an HTTP/1.0 client's keep-alive is only kept if we say so.
        if self.close_connection:
            self.send_header("Connection", "close")
        elif self.request_version == "HTTP/1.0":
            self.send_header("Connection", "keep-alive")
        if self._by_mac:  # a cache between must not hand this host's kickstart to another
            self.send_header("Vary", "*")  # (RFC 9110, 12.5.5)
        self.end_headers()

    def _send_empty(self, status: int, headers: Optional[Dict[str, str]] = None) -> None:
        # A 304 has no body by definition, and a Content-Length there must be the
        # 200's (RFC 9110, 8.6): none is sent.
        length = {} if status == 304 else {"Content-Length": 0}
        self._head(status, {**(headers or {}), **length})

    def _send_body(self, body: BinaryIO, parts: list, tail: bytes) -> None:
        try:
            for head, byte_range in parts:
                if head:
                    self.wfile.write(head)
                self._send_range(body, byte_range)
            if tail:
                self.wfile.write(tail)
        except _HANGUPS as error:
            log.debug("%s hung up during %s: %s", self.client_address[0], self.path, error)
            self.close_connection = True

    def _send_range(self, body: BinaryIO, byte_range: ByteRange) -> None:
        if isinstance(body, io.BytesIO):
            view = body.getbuffer()[byte_range.first : byte_range.last + 1]
            self.wfile.write(view)
            view.release()
            return
        # The kernel's sendfile in large blocking calls, the socket's timeout kept
        # in the kernel: a client that stops reading is still dropped.
        sent = send_range(
            self.connection, body.fileno(), byte_range.first, byte_range.length, self.timeout
        )
        if sent != byte_range.length:  # the file shrank under us: the length we promised is a lie
            raise BrokenPipeError(f"short file: sent {sent} of {byte_range.length} bytes")

    def log_request(self, code: Union[int, str] = "-", size: Union[int, str] = "-") -> None:
        # A malformed request line is answered (400, 414, 505) before parse_request
        # has set command and path: log what arrived instead, escaped.
        status = getattr(code, "value", code)
        command = getattr(self, "command", None)
        path = getattr(self, "path", None)
        what = f"{command} {path}" if command and path is not None else None
        if what is None:
            what = getattr(self, "requestline", "")
        log.info("%s %s %s", self.client_address[0], _printable(what), status)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.client_address[0], _printable(format % args))


class _Server(EndsConnectionsOnStop, ThreadingMixIn, HTTPServer):  # ThreadingHTTPServer: 3.7+
    daemon_threads = True
    request_queue_size = 1024  # a burst of concurrent range requests must not be refused

    def __init__(
        self,
        address: Tuple[str, int],
        root: Optional[Path],
        overlay: Overlay,
        max_ranges: int,
        timeout: float,
    ):
        self.root = root
        self.timeout = timeout
        self.overlay = overlay
        self.max_ranges = max_ranges
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call getfqdn(): a DNS lookup we neither need nor allow.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: Tuple[str, int]) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, _HANGUPS):
            log.debug("%s hung up: %s", client_address[0], error)
        else:
            log.error("%s: request failed: %r", client_address[0], error, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class HttpFileServer(BackgroundServer):
    """Serve ``root`` (may be None) plus an overlay, in a background thread or the foreground.

    The overlay maps URL paths (``/ks/host.ks``) to inline or out-of-tree
    content, or to a :class:`~mgmt.net.content.MacSelector`; replace it live
    with :meth:`set_overlay` when a graph changes.
    """

    thread_name = "http-server"

    def __init__(
        self,
        root: Optional[Union[str, Path]],
        bind: str = "127.0.0.1",
        port: int = 0,
        overlay: Optional[Overlay] = None,
        max_ranges: int = MAX_RANGES,
        timeout: float = 60.0,
    ):
        super().__init__()
        server_class = _Server6 if ":" in bind else _Server
        root_path = Path(root) if root is not None else None
        self._server = server_class(
            (bind, port), root_path, dict(overlay or {}), max_ranges, timeout
        )

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self._server.server_address[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def set_overlay(self, overlay: Overlay) -> None:
        self._server.overlay = dict(overlay)  # one assignment: requests see old or new, never half

    def serve_forever(self) -> None:
        log.info("serving %s on %s", self._server.root or "(overlay only)", self.url)
        self._server.serve_forever(poll_interval=0.2)

    def _interrupt(self) -> None:
        self._server.shutdown()
        self._server.end_connections()  # kept-alive ones too: see mgmt.net.connections

    def _close(self) -> None:
        self._server.server_close()
