"""A small etcd v3 client over the JSON gateway, with timeouts, failover and auth.

etcd3gw does the HTTP and the error mapping; this layer adds what an agent
needs on top: every call bounded by a timeout, the seeds tried in turn, a clear
:class:`~mgmt.errors.WorldError` naming the URL, and user/password auth (etcd3gw
has none): a token from ``/v3/auth/authenticate`` sent in the ``Authorization``
header and renewed when etcd says it expired (simple tokens die after 5 minutes
idle). etcd3gw and requests cost ~0.35 s to import, so they load on first use
(and without futurist, see :mod:`mgmt.world.gateway`).
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from mgmt.errors import InputError, WorldError
from mgmt.log import get_logger
from mgmt.settings import EtcdCredentials
from mgmt.world.gateway import import_etcd3gw

log = get_logger("etcd")

# etcd 3.4 serves the gateway under /v3/ (and, deprecated, /v3beta/; 3.5 dropped
# it). Fixing the path saves etcd3gw's /version round trip on every connect.
API_PATH = "/v3/"
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0

# Messages etcd sends for a token it no longer knows (gRPC Unauthenticated).
_TOKEN_ERRORS = ("invalid auth token", "user name is empty", "auth token")


def preload() -> None:
    """Start importing etcd3gw and requests (~0.15 s) in the background.

    Call it early (before parsing the graph, or while etcd starts) so the first
    call does not pay for the import; imports are thread-safe.
    """
    threading.Thread(target=_import_etcd3gw, name="preload etcd3gw", daemon=True).start()


def _import_etcd3gw() -> None:
    import_etcd3gw()


def encode(data: str) -> str:
    return base64.b64encode(data.encode()).decode("ascii")


def decode(data: str) -> str:
    return base64.b64decode(data).decode()


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return raw.decode()


def normalize_url(url: str) -> str:
    """``host:port`` or ``http(s)://host:port`` -> ``scheme://host:port``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise InputError(f"bad etcd URL {url!r}: expected http://HOST:PORT")
    return f"{parts.scheme}://{parts.netloc}"


class EtcdClient:
    """Calls on one cluster, reached through any of ``urls``."""

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
        self._lock = threading.Lock()
        self._clients: Dict[str, Any] = {}

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

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.session.close()

    # -- internals -----------------------------------------------------------

    def _authenticate(self) -> str:
        assert self.credentials is not None
        result = self._post(
            "auth/authenticate",
            {"name": self.credentials.username, "password": self.credentials.password},
            None,
        )
        self._token = result["token"]
        return self._token

    def _client(self, url: str) -> Any:
        with self._lock:
            return self._clients.get(url) or self._new_client(url)

    def _new_client(self, url: str) -> Any:
        etcd3gw = import_etcd3gw()
        parts = urlsplit(url)
        client = etcd3gw.Etcd3Client(
            host=parts.hostname,
            port=parts.port,
            protocol=parts.scheme,
            timeout=self.timeout,
            api_path=API_PATH,
        )
        # Loopback and tunnels never go through an http_proxy from the environment.
        client.session.trust_env = False
        self._clients[url] = client
        return client

    def _post(self, path: str, payload: Dict[str, Any], token: Optional[str]) -> Dict[str, Any]:
        """One call, trying each seed in turn until one answers."""
        exceptions = import_etcd3gw().exceptions
        headers = {"Authorization": token} if token else {}
        failures = []
        for step in range(len(self.urls)):
            index = (self._current + step) % len(self.urls)
            client = self._client(self.urls[index])
            try:
                result = client.post(client.get_url(path), json=payload, headers=headers)
            except (exceptions.ConnectionFailedError, exceptions.ConnectionTimeoutError) as error:
                failures.append(f"{self.urls[index]} ({_reason(error)})")
                continue
            except exceptions.Etcd3Exception as error:
                raise _server_error(self.urls[index], path, error) from None
            self._current = index
            return result
        raise WorldError(f"cannot reach etcd at {', '.join(failures)}")


class _TokenExpired(WorldError):
    pass


def _reason(error: Exception) -> str:
    text = str(getattr(error, "detail_text", "") or error)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    return text.splitlines()[0][:200] if text else type(error).__name__


def _server_error(url: str, path: str, error: Any) -> WorldError:
    """Map a gateway error body ({"error": ..., "code": ...}) to a WorldError."""
    detail = getattr(error, "detail_text", "") or str(error)
    try:
        message = str(json.loads(detail).get("error") or detail)
    except (ValueError, AttributeError):
        # Not the gateway's JSON: something else answers on that port.
        reason = " ".join(str(arg) for arg in error.args if arg) or "an unexpected answer"
        return WorldError(f"{url} does not look like etcd ({reason} to {path})")
    if any(marker in message for marker in _TOKEN_ERRORS) and path != "auth/authenticate":
        return _TokenExpired(f"etcd at {url}: {message}")
    if "authentication failed" in message:
        return WorldError(f"etcd at {url}: authentication failed (wrong user or password)")
    if "permission denied" in message:
        return WorldError(f"etcd at {url}: permission denied for {path}")
    return WorldError(f"etcd at {url}: {path}: {message}")
