"""A prefix watch that survives reconnects, restarts and compaction, and can be cancelled at once.

An agent behind a flapping SSH tunnel must not go deaf. The watch reads the
gateway's stream (a chunked HTTP answer, one JSON message per line) on a socket
it owns: cancel() shuts that socket down, which wakes the blocked read
immediately (no polling). After a dropped stream (a cut tunnel, a restarted
etcd) it reconnects, with a growing back-off, from the last revision it saw, so
no change is lost. If etcd compacted that history away meanwhile, the changes
cannot be replayed: it reports one change, so that the caller re-reads the
whole state, and watches on from the current revision.
The same when the seeds answer as another cluster (recreated or restored: at
an earlier revision than we saw), which also lost what we wrote: the caller
can write it again (``on_new_cluster``).
"""

import contextlib
import http.client
import json
import socket
import threading
from typing import Callable, Iterator, Optional

from mgmt.errors import WorldError
from mgmt.log import get_logger
from mgmt.world import gateway
from mgmt.world.client import API_PATH, EtcdClient, encode, is_token_error, prefix_end

log = get_logger("watch")

BACKOFF_START = 0.05
BACKOFF_MAX = 2.0
# How often the seed a watch streams from is asked whether it still answers: one
# that hangs (stopped, its disk stuck) keeps the stream open but sends nothing,
# and TCP keepalive sees no fault, so the watch would wait on it for ever.
HEARTBEAT = 30.0
# How long cancel() waits for the watching thread (see cancel).
CANCEL_WAIT = 1.0


class PrefixWatch:
    """Call ``callback()`` from a background thread on each change under ``prefix``.

    Every change after revision ``after`` is reported: pass the revision of the
    read the caller's state came from, so nothing between that read and the
    watch slips through. By default, the cluster's revision when called.
    """

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        callback: Callable[[], None],
        after: Optional[int] = None,
        on_new_cluster: Optional[Callable[[], None]] = None,
    ):
        self.client = client
        self.prefix = prefix
        self.callback = callback
        # Called (before callback) when the seeds answer as another cluster: one
        # recreated or restored, which lost what was written to the old one.
        self.on_new_cluster = on_new_cluster
        self._cluster: Optional[str] = None  # etcd's cluster_id, as first seen
        if after is None:
            after, _ = client.range(prefix, prefix=True, count_only=True)
        self.revision = after
        self.connected = threading.Event()
        self._cancelled = threading.Event()
        self._conn: Optional[http.client.HTTPConnection] = None
        self._conn_lock = threading.Lock()
        self._url = ""  # the seed the stream is read from
        self._thread = threading.Thread(target=self._run, name=f"watch {prefix}", daemon=True)
        self._thread.start()
        threading.Thread(target=self._heartbeat, name=f"heartbeat {prefix}", daemon=True).start()

    def cancel(self) -> None:
        """Stop watching; no callback runs after this returns (unless one is running).

        The thread ends at once, but for a call to a seed that hangs (while it
        reconnects): that one ends at its timeout, and is waited for CANCEL_WAIT
        at most, by the first cancel only (an agent's ^C must stay prompt)."""
        again = self._cancelled.is_set()
        self._cancelled.set()
        with self._conn_lock:
            conn = self._conn
        self._shut(conn)
        if not again and threading.current_thread() is not self._thread:
            self._thread.join(CANCEL_WAIT)

    __call__ = cancel

    @property
    def running(self) -> bool:
        """True until the watch is cancelled and its thread has ended."""
        return self._thread.is_alive()

    # -- the watching thread -------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_START
        lost = False
        while not self._cancelled.is_set():
            try:
                self._stream()
            except _Resync:
                pass
            except Exception as error:
                if self._cancelled.is_set():
                    break
                if not lost:
                    log.warning("watch on %s lost (%s); reconnecting", self.prefix, error)
                lost = True
            finally:
                if self.connected.is_set():
                    backoff, lost = BACKOFF_START, False
                self.connected.clear()
                self._close()
            if self._cancelled.wait(backoff):
                break
            backoff = min(backoff * 2, BACKOFF_MAX)
            self._find_live_seed()

    def _heartbeat(self) -> None:
        """Every HEARTBEAT seconds, end a stream whose seed no longer answers, so
        that the watch goes on through another seed (see _find_live_seed)."""
        while not self._cancelled.wait(HEARTBEAT):
            url = self._url
            if not url or not self.connected.is_set():
                continue
            try:
                self.client.ping(url)
            except WorldError as error:
                with self._conn_lock:
                    if self._url != url:  # it moved on meanwhile
                        continue
                    self._shut(self._conn)
                log.warning("watch on %s: %s; watching again", self.prefix, error)

    @staticmethod
    def _shut(conn: Optional[http.client.HTTPConnection]) -> None:
        """Wake the read blocked on ``conn`` at once (it then fails)."""
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    def _find_live_seed(self) -> None:
        """Let the client move on to a seed that answers (and renew its token)."""
        try:
            self.client.range(self.prefix, prefix=True, count_only=True)
        except Exception as error:
            log.debug("watch on %s: etcd still unreachable: %s", self.prefix, error)

    def _stream(self) -> None:
        """Read one watch stream until it ends (or raise why it could not)."""
        url = self._url = self.client.url
        token = self.client.token
        conn = gateway.connect(url, self.client.timeout[0])
        with self._conn_lock:
            self._conn = conn
        if self._cancelled.is_set():
            return
        request = {
            "create_request": {
                "key": encode(self.prefix),
                "range_end": encode(prefix_end(self.prefix)),
                "start_revision": self.revision + 1,
            }
        }
        conn.request(
            "POST", API_PATH + "watch", body=json.dumps(request), headers=gateway.headers(token)
        )
        # Bounded until etcd confirms the watch; after that an idle watch blocks
        # for as long as nothing changes, and cancel() or a dead peer ends the read.
        conn.sock.settimeout(self.client.timeout[1])
        response = conn.getresponse()
        if response.status != 200:
            self._refused(token, response.read().decode(errors="replace"))
        for line in _lines(response):
            conn.sock.settimeout(None)
            message = json.loads(line)
            if "error" in message:
                self._refused(token, json.dumps(message["error"]))
            self._handle(message.get("result", {}), token)
        raise ConnectionError(f"{url} closed the stream")

    def _handle(self, result: dict, token: Optional[str]) -> None:
        compacted = int(result.get("compact_revision", 0))
        if compacted:
            # The history we asked for is gone. Resume from the cluster's revision
            # now, and only then report a change: the caller's re-read comes after
            # that revision, so nothing is lost and nothing is reported twice.
            log.debug("watch on %s: history compacted at %d", self.prefix, compacted)
            self.revision = max(self.revision, compacted - 1, self._current_revision())
            self._notify()
            raise _Resync()
        if result.get("canceled"):
            # etcd answers a bad token with created=true *and* canceled=true.
            self._refused(token, result.get("cancel_reason") or "watch cancelled by etcd")
        if result.get("created"):
            self._check_cluster(result.get("header", {}))
            self.connected.set()
        if result.get("events"):
            last = max(int(event["kv"].get("mod_revision", 0)) for event in result["events"])
            self.revision = max(self.revision, last)
            self._notify()

    def _check_cluster(self, header: dict) -> None:
        """Resync if etcd is another cluster now (recreated empty, or restored): its
        revisions are not the ones we saw, so a watch from our last one would wait
        for revisions that come late or never, and miss every change till then."""
        cluster, revision = header.get("cluster_id"), int(header.get("revision", 0))
        known = self._cluster
        self._cluster = known or cluster
        if not ((known and cluster and cluster != known) or revision < self.revision):
            return
        log.warning(
            "watch on %s: etcd at %s is at revision %d, before %d that we saw, or is "
            "another cluster: recreated or restored? reading everything again",
            self.prefix, self.client.url, revision, self.revision,
        )  # fmt: skip
        self._cluster, self.revision = cluster, revision
        if self.on_new_cluster is not None and not self._cancelled.is_set():
            try:
                self.on_new_cluster()
            except Exception as error:
                log.error("watch on %s: %s", self.prefix, error)
        self._notify()
        raise _Resync()

    def _current_revision(self) -> int:
        """The cluster's revision now (0 if it cannot be read: the resume then reports
        the changes from the compaction on again, which is harmless)."""
        try:
            return self.client.range(self.prefix, prefix=True, count_only=True)[0]
        except Exception as error:
            log.debug("watch on %s: cannot read the revision: %s", self.prefix, error)
            return 0

    def _refused(self, token: Optional[str], reason: str) -> None:
        if is_token_error(reason):
            self.client.invalidate_token(token)
        raise ConnectionError(reason.strip()[:200])

    def _notify(self) -> None:
        if self._cancelled.is_set():
            return
        try:
            self.callback()
        except Exception:
            log.exception("watch callback for %s failed", self.prefix)

    def _close(self) -> None:
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class _Resync(Exception):
    """The stream ended on purpose: watch again from ``revision``."""


def _lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The stream's JSON messages, one per line (blank keep-alive lines skipped)."""
    while True:
        line = response.readline()
        if not line:
            return
        if line.strip():
            yield line
