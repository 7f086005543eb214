"""HTTP to one etcd endpoint's v3 JSON gateway, on the standard library's http.client.

The gateway is plain HTTP/1.1: every call is a POST of a JSON object to
``/v3/<service>/<method>`` answered by a JSON object, and a watch is one POST
whose answer is a chunked stream of JSON objects, one per line. That needs no
client library: etcd3gw and its nine dependencies (requests, urllib3, futurist,
pbr...) made up 0.85 MB of the bundle and took about 120 ms of CPU to import,
against about 25 ms for http.client (most of it ssl and email.parser, which
http.client imports itself), and the agent pays even that only when a graph
exchanges resources (see :mod:`mgmt.world.lazy`).

:class:`Endpoint` keeps its connections alive between calls (one per calling
thread at a time), so a burst of calls costs one TCP handshake, not one each.
Failures come out as two exceptions that :mod:`mgmt.world.client` turns into
messages naming the URL: :class:`Unreachable` (nothing answered, try another
seed) and :class:`GatewayError` (etcd answered and said no).
"""

import http.client
import json
import socket
import ssl
import threading
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

# etcd 3.4 serves the gateway under /v3/ (and, deprecated, /v3beta/; 3.5
# dropped that): a fixed path saves a /version round trip on every connect.
API_PATH = "/v3/"

# What a peer that closed an idle kept-alive connection looks like on its next use.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ConnectionAbortedError)  # fmt: skip


# A peer that hung up before answering: it closed the connection, or reset it
# (it closed with our request still unread: the timing decides which one we see).
_HUNG_UP = (http.client.RemoteDisconnected, ConnectionResetError)


class Unreachable(Exception):
    """Nothing (or nothing HTTP) answered: refused, timed out, cut."""


class GatewayError(Exception):
    """etcd answered with an error: ``message`` is its text, ``status`` the HTTP status."""

    def __init__(self, status: int, message: str, is_etcd: bool = True):
        super().__init__(message)
        self.status = status
        self.message = message
        # False when the answer was not the gateway's JSON (another web server).
        self.is_etcd = is_etcd


def connect(url: str, timeout: float) -> http.client.HTTPConnection:
    """A connected HTTP(S) connection to ``url`` with TCP keepalive on.

    A tunnel that dies without a FIN would leave an idle watch (or a pooled
    connection) waiting for ever; keepalive probes find out within about a minute.
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    conn.connect()
    sock = conn.sock
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def headers(token: Optional[str]) -> Dict[str, str]:
    """The request headers of a gateway call (``token`` from auth/authenticate)."""
    found = {"Content-Type": "application/json"}
    if token:
        found["Authorization"] = token
    return found


def error_message(status: int, body: bytes) -> GatewayError:
    """The gateway's error body (``{"error": ..., "code": ...}``) as a GatewayError."""
    try:
        answer = json.loads(body.decode("utf-8"))
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return GatewayError(status, f"HTTP {status} with a body that is not JSON", False)
    message = answer.get("error") or answer.get("message") or f"HTTP {status}"
    return GatewayError(status, str(message))


def reason(error: BaseException, url: str = "") -> str:
    """A short, one-line reason for a failed connection to ``url``, with a hint
    when the scheme looks wrong or the server's certificate is not trusted."""
    https = url.startswith("https:")
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(error):
        why = getattr(error, "verify_message", None) or "certificate verify failed"  # 3.7+
        return f"its TLS certificate is not trusted: {why}; give its CA with SSL_CERT_FILE=CA.pem"
    if https and isinstance(error, (ssl.SSLError, *_HUNG_UP)):
        return "no TLS answer; is it a plain http:// etcd?"
    if isinstance(error, _HUNG_UP) and url:
        return "connection closed without an answer; is it an https:// etcd?"
    if isinstance(error, socket.timeout):
        return "timed out"
    if isinstance(error, _HUNG_UP):
        return "connection closed without an answer"
    if isinstance(error, http.client.HTTPException):
        return "not an HTTP answer"  # BadStatusLine and friends: not a web server
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


class Endpoint:
    """Calls to one URL, over kept-alive connections."""

    def __init__(self, url: str, connect_timeout: float, read_timeout: float):
        self.url = url
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, path: str, payload: Dict[str, Any], token: Optional[str]) -> Dict[str, Any]:
        """POST ``payload`` to ``/v3/<path>``; the answer's JSON object.

        Raises :class:`Unreachable` or :class:`GatewayError`. A kept-alive
        connection that the server closed while idle is replaced once, at once:
        the request never reached etcd, so sending it again is safe (and our
        writes are idempotent or compare-guarded anyway).
        """
        body = json.dumps(payload).encode("utf-8")
        conn, reused = self._take()
        try:
            try:
                status, data = self._exchange(conn, path, body, token)
            except _STALE:
                if not reused:
                    raise
                conn.close()
                conn = self._open()
                status, data = self._exchange(conn, path, body, token)
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise Unreachable(reason(error, self.url)) from None
        self._give_back(conn)
        if status != 200:
            raise error_message(status, data)
        try:
            answer = json.loads(data.decode("utf-8"))
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise GatewayError(status, "an answer that is not a JSON object", False)
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> Tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._open(), False

    def _open(self) -> http.client.HTTPConnection:
        try:
            conn = connect(self.url, self.connect_timeout)
        except (OSError, http.client.HTTPException) as error:
            raise Unreachable(reason(error, self.url)) from None
        conn.sock.settimeout(self.read_timeout)
        return conn

    def _exchange(
        self, conn: http.client.HTTPConnection, path: str, body: bytes, token: Optional[str]
    ) -> Tuple[int, bytes]:
        conn.request("POST", API_PATH + path, body=body, headers=headers(token))
        response = conn.getresponse()
        data = response.read()
        if response.will_close:
            conn.close()
        return response.status, data

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        if conn.sock is None:  # the server asked to close it
            return
        with self._lock:
            self._idle.append(conn)
