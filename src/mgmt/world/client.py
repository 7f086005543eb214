"""A small etcd v3 client over the JSON gateway: seeds, timeouts, failover and auth.

:mod:`mgmt.world.gateway` speaks HTTP to one endpoint; this layer adds what an
agent needs on top: every call bounded by a timeout, the seeds tried in turn, a
clear :class:`~mgmt.errors.WorldError` naming the URL, and user/password auth:
a token from ``/v3/auth/authenticate`` sent in the ``Authorization`` header and
renewed when etcd says it expired or no longer knows it (simple tokens die
after 5 minutes idle, and all of a user's tokens when the password changes).
"""

import base64
import re
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from mgmt.errors import InputError, WorldError
from mgmt.log import get_logger
from mgmt.resources.fields import shown
from mgmt.settings import EtcdCredentials
from mgmt.world import gateway

log = get_logger("etcd")

API_PATH = gateway.API_PATH
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0

# Messages etcd sends for a token it no longer knows (gRPC Unauthenticated).
_TOKEN_ERRORS = ("auth token", "user name is empty")


def is_token_error(message: str) -> bool:
    """Whether etcd's ``message`` says the token sent is dead (expired, unknown)."""
    return any(marker in message for marker in _TOKEN_ERRORS)


def preload() -> None:
    """Start importing http.client (about 25 ms of CPU, most of it ssl) in the background.

    Called while the embedded etcd starts, so that the first call does not pay
    for the import; imports are thread-safe.
    """
    threading.Thread(target=_import_http, name="preload http.client", daemon=True).start()


def _import_http() -> None:
    import http.client  # noqa: F401


# etcd keys and values are bytes: one that is not UTF-8 (written by another tool)
# is read with its bad bytes as lone surrogates, which the readers of exports
# refuse as they refuse them in a graph, and written back as the same bytes.
def encode(data: str) -> str:
    return base64.b64encode(data.encode("utf-8", "surrogateescape")).decode("ascii")


def decode(data: str) -> str:
    return base64.b64decode(data).decode("utf-8", "surrogateescape")


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return raw.decode()


# A DNS name or IPv4 address, or an IPv6 one in brackets (a zone allowed). Used
# with fullmatch: "$" would also take a final newline.
_HOST_RE = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*)|\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\])")


def shown_url(url: str) -> str:
    """``url`` for a message, a password in it replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{host}{rest[end:]}"


def normalize_url(url: str) -> str:
    """``host:port`` or ``http(s)://host:port`` (a trailing ``/`` allowed) ->
    ``scheme://host:port``; anything else an InputError naming the URL (its
    password hidden): a path, a query or a user would be ignored, and a host
    that is no host name would fail only when first called."""

    def bad(why: str) -> InputError:
        return InputError(f"bad etcd URL {shown_url(url)!r}: {why}; expected http://HOST:PORT")

    given = url.strip()
    full = given if "://" in given else f"http://{given}"
    try:
        parts = urlsplit(full)
        port = parts.port
    except ValueError as err:  # an unclosed [, a port out of range
        raise bad(str(err)) from None
    if parts.scheme not in ("http", "https"):
        raise bad(f"the scheme must be http or https, not {shown(parts.scheme)}")
    if "@" in parts.netloc:
        raise bad("no user or password in the URL (etcd's come with --etcd-auth-stdin)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or full.endswith(("?", "#")):
        raise bad("no path or query after HOST:PORT")
    host = parts.netloc.rpartition(":")[0] if port is not None else parts.netloc
    if not host or not _HOST_RE.fullmatch(host):
        raise bad("no host name" if not host else f"not a host name: {shown(host)}")
    if not port:
        raise bad("no port" if port is None else "port 0")
    return f"{parts.scheme}://{parts.netloc}"


class EtcdClient:
    """Calls on one cluster, reached through any of ``urls``.

    Thread-safe: the engine's threads and the watches call it at once.
    """

    def __init__(
        self,
        urls: Sequence[str],
        credentials: Optional[EtcdCredentials] = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ):
        if not urls:
            raise InputError("no etcd URL given")
        self.urls = [normalize_url(url) for url in urls]
        self.credentials = credentials
        self.timeout = (connect_timeout, read_timeout)
        self._current = 0
        self._token: Optional[str] = None
        self._auth_lock = threading.Lock()
        self._endpoints = [
            gateway.Endpoint(url, connect_timeout, read_timeout) for url in self.urls
        ]

    @property
    def url(self) -> str:
        """The URL calls go to now."""
        return self.urls[self._current]

    @property
    def token(self) -> Optional[str]:
        """The auth token (authenticating first if needed); None without credentials."""
        token = self._token
        if self.credentials is not None and token is None:
            token = self._authenticate()
        return token

    def invalidate_token(self, stale: Optional[str]) -> None:
        """Forget ``stale`` so the next call authenticates again."""
        if self._token == stale:
            self._token = None

    # -- calls ---------------------------------------------------------------

    def call(self, path: str, payload: Dict[str, Any]) -> Dict[str, Any]:
        """POST ``payload`` to ``/v3/<path>``; renew the token once if it expired."""
        token = self.token
        try:
            return self._post(path, payload, token)
        except _TokenExpired:
            if self.credentials is None:
                raise WorldError(
                    f"etcd at {self.url} requires authentication, and no credentials were given"
                ) from None
            log.debug("auth token expired; authenticating again")
            self.invalidate_token(token)
            return self._post(path, payload, self.token)

    def ping(self, url: str) -> None:
        """One cheap call to ``url`` alone, without failing over: WorldError if nothing
        answers in time (a hung member; any answer, a refusal too, is a live one)."""
        endpoint = self._endpoints[self.urls.index(url)]
        try:
            endpoint.post("kv/range", {"key": encode("/_mgmt/"), "count_only": True}, self._token)
        except gateway.GatewayError:
            pass
        except gateway.Unreachable as error:
            raise WorldError(f"etcd at {url} does not answer ({error})") from None

    def check(self) -> None:
        """Make sure the cluster answers and (with auth) that our user may read."""
        self.range("/_mgmt/", prefix=True, count_only=True)

    def range(
        self, key: str, *, prefix: bool = False, count_only: bool = False
    ) -> Tuple[int, List[Tuple[str, str, int]]]:
        """(revision, [(key, value, mod_revision)]) for ``key`` or every key under it."""
        payload: Dict[str, Any] = {"key": encode(key)}
        if prefix:
            payload["range_end"] = encode(prefix_end(key))
        if count_only:
            payload["count_only"] = True
        result = self.call("kv/range", payload)
        revision = int(result.get("header", {}).get("revision", 0))
        items = [
            (decode(kv["key"]), decode(kv.get("value", "")), int(kv.get("mod_revision", 0)))
            for kv in result.get("kvs", [])
        ]
        return revision, items

    def txn(
        self,
        compare: List[Dict[str, Any]],
        success: List[Dict[str, Any]],
        failure: Optional[List[Dict[str, Any]]] = None,
    ) -> bool:
        """Run one transaction; True if the comparisons held."""
        result = self.call(
            "kv/txn", {"compare": compare, "success": success, "failure": failure or []}
        )
        return bool(result.get("succeeded", False))

    def put(self, key: str, value: str) -> None:
        self.call("kv/put", {"key": encode(key), "value": encode(value)})

    def delete(self, key: str, *, prefix: bool = False) -> int:
        """Delete ``key`` (or every key under it); how many keys went."""
        payload: Dict[str, Any] = {"key": encode(key)}
        if prefix:
            payload["range_end"] = encode(prefix_end(key))
        return int(self.call("kv/deleterange", payload).get("deleted", 0))

    def close(self) -> None:
        """Close the kept-alive connections (the client can still be used afterwards)."""
        for endpoint in self._endpoints:
            endpoint.close()

    # -- internals -----------------------------------------------------------

    def _authenticate(self) -> str:
        assert self.credentials is not None
        with self._auth_lock:  # threads whose token died together authenticate once
            if self._token is None:
                result = self._post(
                    "auth/authenticate",
                    {"name": self.credentials.username, "password": self.credentials.password},
                    None,
                )
                self._token = str(result["token"])
            return self._token

    def _post(self, path: str, payload: Dict[str, Any], token: Optional[str]) -> Dict[str, Any]:
        """One call, trying each seed in turn (from the last that answered) until one does."""
        failures = []
        start = self._current
        for step in range(len(self.urls)):
            index = (start + step) % len(self.urls)
            endpoint = self._endpoints[index]
            try:
                result = endpoint.post(path, payload, token)
            except gateway.Unreachable as error:
                failures.append(f"{endpoint.url} ({error})")
                continue
            except gateway.GatewayError as error:
                raise _server_error(endpoint.url, path, error, self.credentials) from None
            if failures and index != self._current:
                # Said once per move (later calls start here): a seed that hangs
                # otherwise held a start up for the read timeout without a word.
                log.warning("cannot reach etcd at %s; using %s", ", ".join(failures), endpoint.url)
            self._current = index
            return result
        raise WorldError(f"cannot reach etcd at {', '.join(failures)}")


class _TokenExpired(WorldError):
    pass


class PermissionDenied(WorldError):
    """etcd's auth refused the call: the user lacks a permission on a key it names."""


def _server_error(
    url: str, path: str, error: gateway.GatewayError, credentials: Optional[EtcdCredentials]
) -> WorldError:
    """etcd's refusal, or a stranger's answer, as one line naming the URL (and the user)."""
    message = error.message
    if not error.is_etcd:
        # Not the gateway's JSON: something else answers on that port.
        return WorldError(f"{url} does not look like etcd ({message} to {API_PATH}{path})")
    if is_token_error(message) and path != "auth/authenticate":
        return _TokenExpired(f"etcd at {url}: {message}")
    user = shown(credentials.username) if credentials is not None else ""
    if "authentication failed" in message:
        return WorldError(
            f"etcd at {url}: authentication failed for user {user} (wrong user or password)"
        )
    if "permission denied" in message:
        as_user = f" as user {user}" if user else ""
        return PermissionDenied(f"etcd at {url}: permission denied for {path}{as_user}")
    return WorldError(f"etcd at {url}: {path}: {message}")
