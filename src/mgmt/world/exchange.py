"""EtcdWorld: the engine's :class:`~mgmt.world.api.World`, kept in etcd.

Writes compare before they put (mgmt's strmap idea): an export or a converged
state that did not change is not rewritten, so it fires no watch on any host,
and two agents that keep re-exporting the same thing do not wake each other.
"""

import json
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from mgmt.errors import GraphError, InputError, WorldError
from mgmt.graph.limits import text_problem
from mgmt.graph.located import load_json_object
from mgmt.log import get_logger
from mgmt.resources.fields import shown, shown_name
from mgmt.world.api import (
    CONVERGED_PREFIX,
    EXPORTED_PREFIX,
    FAILED_PREFIX,
    HOSTS_PREFIX,
    Cancel,
    ExportedResource,
    Failure,
    ResourceKey,
)
from mgmt.world.client import EtcdClient, PermissionDenied, decode, encode, prefix_end
from mgmt.world.hosthold import HostHold
from mgmt.world.watch import PrefixWatch

log = get_logger("world")

# Another writer (the same hostname twice, by mistake) can change our keys
# between the read and the transaction; retry a few times, then say so.
EXPORT_ATTEMPTS = 5
# etcd's default --max-txn-ops: a stock cluster (--seeds) refuses a transaction
# with more compares, or more operations, than this.
TXN_OPS = 128
# Keys one export transaction compares: one compare more checks the hold.
TXN_KEYS = TXN_OPS - 1
# etcd refuses a request of more than --max-request-bytes (1.5 MiB by default, the
# embedded etcd's too): a transaction carries at most this many bytes of keys and
# values, leaving room for the compares and the encoding's overhead.
TXN_BYTES = 1024 * 1024
# At most this much of a host's failed resources is stored (a value of its own).
FAILED_BYTES = 256 * 1024
# etcd's words for a request over its --max-request-bytes (the gRPC limit, that
# plus 512 KiB, is hit first by a request far over it).
_TOO_LARGE = ("request is too large", "larger than max")


def dump(value: Any) -> str:
    """Canonical JSON, so equal values compare equal as bytes in etcd."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def exported_key(hostname: str, kind: str, name: str) -> str:
    return f"{EXPORTED_PREFIX}{hostname}/resources/{kind}/{name}"


def parse_exported_key(key: str) -> Optional[tuple]:
    """``/_mgmt/exported/<host>/resources/<kind>/<name>`` -> (host, kind, name)."""
    rest = key[len(EXPORTED_PREFIX) :]
    hostname, sep, rest = rest.partition("/resources/")
    kind, sep2, name = rest.partition("/")
    if not (sep and sep2 and hostname and kind and name):
        return None
    return hostname, kind, name


class EtcdWorld:
    """One host's view of the shared world."""

    def __init__(self, client: EtcdClient, hostname: str, owner: Optional[str] = None):
        """``owner``: who this agent is for its hold on the hostname (see
        :func:`mgmt.world.hosthold.owner_of`); a new one if not given."""
        if not hostname or "/" in hostname:
            raise InputError(f"bad hostname {shown(hostname)} for etcd keys")
        self.client = client
        self.hostname = hostname
        self._hold = HostHold(client, hostname, owner, self._publish_again)
        self._converged: Optional[bool] = None
        self._failed: Optional[str] = None  # as written ("" when the key is absent)
        # Revision of the last read of each prefix: a watch started later
        # reports every change since, so "read, then watch" loses nothing.
        self._read_at: Dict[str, int] = {}
        self._watches: List[PrefixWatch] = []
        self._lock = threading.Lock()  # never held over a call: close() must not wait on etcd
        # One converged report at a time, held over its calls (see set_converged).
        self._converged_lock = threading.Lock()
        # The last exports published, written again to a new cluster (see PrefixWatch);
        # one export at a time, so that an old set never lands after a newer one.
        self._exported: Optional[Mapping[ResourceKey, Dict[str, Any]]] = None
        self._export_lock = threading.RLock()

    def check(self) -> None:
        """Make sure the cluster answers, and that our user (with auth) may read
        /_mgmt/ and write this host's keys: a user given read-only access would
        otherwise run on with nothing published. One transaction whose writes
        never run (its comparison is never true) but whose permissions etcd checks."""
        never = {"key": encode("/_mgmt/"), "target": "MOD", "result": "LESS", "mod_revision": 0}
        writes = [
            {"request_put": {"key": encode(f"{EXPORTED_PREFIX}{self.hostname}/resources/")}},
            {"request_put": {"key": encode(CONVERGED_PREFIX + self.hostname)}},
            {"request_delete_range": {"key": encode(FAILED_PREFIX + self.hostname)}},
            {"request_put": {"key": encode(HOSTS_PREFIX + self.hostname)}},
        ]
        read = {"key": encode("/_mgmt/"), "range_end": encode(prefix_end("/_mgmt/"))}
        try:
            self.client.txn([never], writes, [{"request_range": dict(read, count_only=True)}])
        except PermissionDenied as err:
            raise WorldError(
                f"{err}: this host needs to read /_mgmt/ and to write "
                f"{EXPORTED_PREFIX}{self.hostname}/, {CONVERGED_PREFIX}{self.hostname}, "
                f"{FAILED_PREFIX}{self.hostname} and {HOSTS_PREFIX}{self.hostname}"
            ) from None

    # -- exported resources --------------------------------------------------

    def export(self, resources: Mapping[ResourceKey, Dict[str, Any]]) -> None:
        """All of this host's exports in one transaction (see the Protocol)."""
        with self._export_lock:
            self._exported = resources  # the latest wanted, even if it fails now
            self._export(resources)

    def _republish(self) -> None:
        """Publish the last exports again: etcd is another cluster, without them."""
        if self._publish_again():
            log.info("exported resources published again to the new cluster")

    def _publish_again(self) -> bool:
        """Publish the last exports again (whether there were any): etcd lost them,
        or the hold on the hostname was lost (or refused) and is taken again, and
        another agent may have written meanwhile. The converged state as last
        reported goes again too: it is written only when it changes, so a new
        cluster would not have it until this host's next change."""
        with self._export_lock:
            published = self._exported is not None
            if published:
                self._export(self._exported)
        self._report_again()
        return published

    def _report_again(self) -> None:
        """Write the converged state and failures as last reported where etcd holds
        other values (or none), in set_converged's order: failures, then state."""
        with self._converged_lock:
            if self._converged is None:
                return
            if self._failed is not None:
                self._write_if_changed(FAILED_PREFIX + self.hostname, self._failed)
            self._write_if_changed(CONVERGED_PREFIX + self.hostname, dump(self._converged))

    def _export(self, resources: Mapping[ResourceKey, Dict[str, Any]]) -> None:
        wanted = {exported_key(self.hostname, k, n): dump(p) for (k, n), p in resources.items()}
        mine = f"{EXPORTED_PREFIX}{self.hostname}/resources/"
        for _attempt in range(EXPORT_ATTEMPTS):
            _, current = self.client.range(mine, prefix=True)
            seen = {key: (value, rev) for key, value, rev in current}
            ops: Dict[str, Dict[str, Any]] = {}  # only changes: an unchanged value fires no watch
            for key in seen:
                if key not in wanted:
                    ops[key] = {"request_delete_range": {"key": encode(key)}}
            for key, value in wanted.items():
                if seen.get(key, (None, 0))[0] != value:
                    ops[key] = {"request_put": {"key": encode(key), "value": encode(value)}}
            if ops or wanted:
                # Only the agent that holds the name writes under it (see hosthold);
                # a clone with the same exports is told too, though it writes nothing.
                self._hold.ensure()
            if not ops:
                return
            every = list(seen) + [key for key in wanted if key not in seen]
            # A written key is sent twice (its compare, its op), a value once.
            sizes = {key: 2 * _size(key) + _size(wanted.get(key, "")) for key in ops}
            size = sum(sizes.values()) + sum(_size(key) for key in every if key not in ops)
            if len(every) <= TXN_KEYS and len(ops) <= TXN_OPS and size <= TXN_BYTES:
                # One transaction; our view of every key we hold must still be
                # true at commit time.
                batches = [every]
            else:
                # Too many, or too large, for one transaction on a stock etcd:
                # batches that each check only the keys they write (all of ours,
                # unchanged or not, would not fit), in order.
                batches = _batches(list(ops), sizes)
            # A resource too large for etcd is said once the others are published.
            refused: List[WorldError] = []
            if all(self._commit(batch, seen, ops, refused) for batch in batches):
                if refused:
                    raise refused[0]
                log.debug(
                    "exported %d resource(s), %d write(s) in %d transaction(s)",
                    len(wanted),
                    len(ops),
                    len(batches),
                )
                return
        raise WorldError(
            f"{self.hostname}: exports changed under us {EXPORT_ATTEMPTS} times; "
            "is another agent running with the same --hostname?"
        )

    def _commit(
        self,
        keys: List[str],
        seen: Mapping[str, Tuple[str, int]],
        ops: Mapping[str, Any],
        refused: List[WorldError],
    ) -> bool:
        """One transaction: ``keys`` still as read (``seen``) and the hold still
        ours, then their ``ops``. A put of one resource that etcd finds too large
        is added to ``refused``."""
        compare = [self._hold.compare()]
        for key in keys:
            if key in seen:
                compare.append(
                    {"key": encode(key), "target": "MOD", "result": "EQUAL",
                     "mod_revision": seen[key][1]}
                )  # fmt: skip
            else:
                compare.append(
                    {"key": encode(key), "target": "CREATE", "result": "EQUAL",
                     "create_revision": 0}
                )  # fmt: skip
        try:
            return self.client.txn(compare, [ops[key] for key in keys if key in ops])
        except WorldError as err:
            put = ops[keys[0]].get("request_put") if len(keys) == 1 else None
            if put is None or not any(words in str(err) for words in _TOO_LARGE):
                raise
            # One resource alone is more than etcd takes: say which, and how big.
            parsed = parse_exported_key(keys[0]) or ("", "?", keys[0])
            size = _size(decode(put["value"]))
            what = f"{shown_name(parsed[1])}[{shown_name(parsed[2])}]"
            refused.append(
                WorldError(
                    f"{self.hostname}: exported {what} is {size / 1048576:.1f} MiB of JSON, "
                    "more than etcd takes in one request "
                    f"(its --max-request-bytes, 1.5 MiB by default): {err}"
                )
            )
            return True

    def collect(self, kinds: Iterable[str]) -> List[ExportedResource]:
        """Every host's exports of ``kinds``, this host's included, sorted."""
        wanted = set(kinds)
        items = self._read(EXPORTED_PREFIX)
        found = []
        for key, value, _rev in items:
            parsed = parse_exported_key(key)
            if parsed is None or parsed[1] not in wanted:
                continue
            problem = text_problem(key)  # a key that is not UTF-8 (see client.decode)
            if problem is not None:
                log.warning("ignoring %s: %s", shown(key), problem)
                continue
            try:
                # Read as a JSON graph is, within its bounds: another host's
                # value must not crash this agent (100,000 nested lists) or cost
                # it more than a graph file could.
                params = load_json_object(value)
            except GraphError as err:
                log.warning("ignoring %s: %s", shown(key), err.message)
                continue
            found.append(ExportedResource(parsed[0], parsed[1], parsed[2], params))
        found.sort(key=lambda r: (r.kind, r.name, r.hostname))
        return found

    def watch_exported(self, callback: Callable[[], None]) -> Cancel:
        """Call ``callback`` on each change under /_mgmt/exported/ since the last collect()."""
        return self._watch(EXPORTED_PREFIX, callback)

    # -- convergence ---------------------------------------------------------

    def set_converged(self, converged: bool, failed: Sequence[Failure] = ()) -> None:
        """Write /_mgmt/converged/<host> and /_mgmt/failed/<host> where they differ
        from what is stored (failures only count when converged)."""
        value = dump(_listed(failed)) if converged and failed else ""
        with self._converged_lock:
            # In an order that keeps true whatever a reader sees of both keys at once
            # (mgmt status reads them in one transaction): "converged" is written
            # after its failures, and "not converged" before they go.
            if converged:
                self._write_failed(value)
            if self._converged is not converged:
                self._write_if_changed(CONVERGED_PREFIX + self.hostname, dump(converged))
                self._converged = converged
            self._write_failed(value)

    def _write_failed(self, value: str) -> None:
        if self._failed != value:
            self._write_if_changed(FAILED_PREFIX + self.hostname, value)
            self._failed = value

    def _write_if_changed(self, key: str, value: str) -> None:
        """Put ``value`` (delete for ""), unless etcd holds it already: a restarted
        agent that finds its own state rewrites nothing and fires no watch."""
        if not value:
            self.client.delete(key)
            return
        key_bytes, value_bytes = encode(key), encode(value)
        self.client.txn(
            [{"key": key_bytes, "target": "VALUE", "result": "EQUAL", "value": value_bytes}],
            [],
            [{"request_put": {"key": key_bytes, "value": value_bytes}}],
        )

    def converged_hosts(self) -> Dict[str, bool]:
        items = self._read(CONVERGED_PREFIX)
        return {key[len(CONVERGED_PREFIX) :]: value.strip() == "true" for key, value, _rev in items}

    def watch_converged(self, callback: Callable[[], None]) -> Cancel:
        """Call ``callback`` on each change of a converged key since converged_hosts()."""
        return self._watch(CONVERGED_PREFIX, callback)

    # -- lifetime ------------------------------------------------------------

    def _read(self, prefix: str) -> List[Tuple[str, str, int]]:
        revision, items = self.client.range(prefix, prefix=True)
        with self._lock:
            self._read_at[prefix] = revision
        return items

    def _watch(self, prefix: str, callback: Callable[[], None]) -> Cancel:
        """Report changes since the last read of ``prefix`` (or since now)."""
        with self._lock:
            after = self._read_at.get(prefix)
        new_cluster = self._republish if prefix == EXPORTED_PREFIX else None
        watch = PrefixWatch(self.client, prefix, callback, after, new_cluster)
        with self._lock:
            self._watches.append(watch)
        return watch

    def close(self) -> None:
        with self._lock:
            watches, self._watches = self._watches, []
        for watch in watches:
            watch.cancel()
        self._hold.close()
        self.client.close()


def _listed(failed: Sequence[Failure]) -> List[Dict[str, str]]:
    """``failed`` as stored: as many as fit in FAILED_BYTES, then one entry that
    says how many more (else thousands of them were more than etcd takes in one
    request, and the host was never recorded converged)."""
    listed: List[Dict[str, str]] = []
    size = 0
    for count, failure in enumerate(failed):
        item = failure._asdict()
        size += len(dump(item)) + 1
        if size > FAILED_BYTES:
            more = f"{len(failed) - count} more"
            listed.append({"kind": "...", "name": more, "error": "see the host's log"})
            break
        listed.append(item)
    return listed


def _size(text: str) -> int:
    """``text``'s length in etcd, in bytes (see client.decode)."""
    return len(text.encode("utf-8", "surrogateescape"))


def _batches(keys: List[str], sizes: Mapping[str, int]) -> List[List[str]]:
    """``keys`` in order, cut into transactions of at most TXN_KEYS keys and TXN_BYTES
    bytes (a key larger than that alone: etcd may take it, or says it is too large)."""
    batches: List[List[str]] = []
    size = 0
    for key in keys:
        if not batches or len(batches[-1]) >= TXN_KEYS or size + sizes[key] > TXN_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(key)
        size += sizes[key]
    return batches


def read_convergence(client: EtcdClient, hostname: str) -> Tuple[bool, List[Dict[str, Any]]]:
    """What :meth:`EtcdWorld.set_converged` last wrote for ``hostname``: whether its
    agent converged, and the resources that ended failed then (``mgmt status`` of a
    detached cluster). Both keys are read in one transaction: the order they are
    written in keeps whatever a reader sees of both at once true."""
    keys = [CONVERGED_PREFIX + hostname, FAILED_PREFIX + hostname]
    read = {"compare": [], "success": [{"request_range": {"key": encode(k)}} for k in keys]}
    values = []
    for response in client.call("kv/txn", read)["responses"]:
        found = response.get("response_range", {}).get("kvs", [])
        values.append(decode(found[0].get("value", "")) if found else None)
    converged, failed = values
    if (converged or "").strip() != "true":
        return False, []
    return True, failures_in(failed, keys[1])


def failures_in(text: Optional[str], key: str) -> List[Dict[str, Any]]:
    """The failures a failed key's value lists (none for None); one that says the
    value is unreadable if it is not a JSON list of objects (written by hand?)."""
    try:
        failures = json.loads(text) if text else []
    except ValueError:
        failures = None
    if not isinstance(failures, list) or not all(isinstance(f, dict) for f in failures):
        return [{"kind": "?", "name": "?", "error": "unreadable " + key}]
    return failures
