"""The hold on this host's name in etcd: one agent at a time publishes under it.

Exports live under /_mgmt/exported/<hostname>/: two agents that go by one name
(machines cloned from one image that kept its hostname, two ``--hostname``
alike) would each replace the other's exports at every publish, without a word.
So before it writes there an agent holds /_mgmt/hosts/<hostname>, a key bound
to a lease it keeps alive. An agent that finds the key held by another is told
who holds it (pid, machine, since when) and writes nothing; its world sync tries
again every second, so it takes over once the holder stops (which revokes the
lease: the key goes at once) or dies (the lease runs out within LEASE_TTL
seconds). The same agent started again (one machine, one boot, one user, one
state dir: :func:`owner_of`) takes its own hold over at once.

Imported on first use of the world, never on the agent's start path.
"""

import hashlib
import json
import os
import threading
import time
from typing import Any, Dict, Optional

from mgmt.errors import WorldError
from mgmt.log import get_logger
from mgmt.resources.fields import shown
from mgmt.world.api import HOSTS_PREFIX
from mgmt.world.client import EtcdClient, decode, encode

log = get_logger("world")

# Seconds a dead agent's hold outlives it; kept alive three times as often.
LEASE_TTL = 10
# How long a stop waits for etcd to take the hold back (an etcd that hangs would
# hold the stop for its timeouts; the lease runs out by itself then).
REVOKE_GRACE = 1.0
# etcd's words for a lease it does not have.
LEASE_GONE = "requested lease not found"


def owner_of(state_dir: str) -> str:
    """Who this agent is, as a hold records it: the same for the agent started again
    on this machine in this boot, as this user, with this state dir; another for
    a clone of the machine (its boot id is its own even where the machine id is not)."""
    parts = [_first_line("/etc/machine-id"), _first_line("/proc/sys/kernel/random/boot_id")]
    parts += [str(os.getuid()), os.path.abspath(state_dir)]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _first_line(path: str) -> str:
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return ""


class HostHold:
    """This agent's hold on /_mgmt/hosts/<hostname>, taken by :meth:`ensure`."""

    def __init__(self, client: EtcdClient, hostname: str, owner: Optional[str] = None):
        self.client = client
        self.hostname = hostname
        self.key = HOSTS_PREFIX + hostname
        self.owner = owner or os.urandom(16).hex()
        self._value = json.dumps(
            {
                "owner": self.owner,
                "pid": os.getpid(),
                "node": os.uname().nodename,
                "machine": _first_line("/etc/machine-id")[:12],
                "since": int(time.time()),
            },
            sort_keys=True,
        )
        self._lease: Optional[str] = None
        self._lock = threading.Lock()  # one ensure() at a time: one lease, one key
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def ensure(self) -> None:
        """Hold the key (a call to etcd when held already); WorldError naming the
        holder when another agent does."""
        with self._lock:
            mine = {"key": encode(self.key), "target": "VALUE", "result": "EQUAL",
                    "value": encode(self._value)}  # fmt: skip
            if self._lease is not None and self.client.txn([mine], []):
                return
            try:
                self._take()
            except WorldError as err:
                if LEASE_GONE not in str(err):
                    raise
                # A lease etcd no longer has (another cluster now, or it ran out
                # while etcd was away): a new one.
                self._lease = None
                self._take()

    def _take(self) -> None:
        if self._lease is None:
            self._lease = str(self.client.call("lease/grant", {"TTL": LEASE_TTL})["ID"])
            self._start_keepalive()
        for _attempt in range(2):  # a holder may go between the look and the take
            held = self._holder()
            if held is not None and held[0].get("owner") != self.owner:
                raise WorldError(self._taken(held[0]))
            # Absent, or this agent's own from before it started again: taken
            # only if it is still as seen.
            seen = {"key": encode(self.key), "target": "MOD", "result": "EQUAL",
                    "mod_revision": held[1] if held else 0}  # fmt: skip
            put = {"key": encode(self.key), "value": encode(self._value), "lease": self._lease}
            if self.client.txn([seen], [{"request_put": put}]):
                return
        raise WorldError(f"hostname {shown(self.hostname)}: its hold changed under us twice")

    def close(self) -> None:
        """Stop keeping the lease alive and revoke it (the key goes with it), for at
        most REVOKE_GRACE seconds."""
        self._stop.set()
        # Not under the lock: an ensure() waiting on an etcd that hangs holds it.
        lease, self._lease = self._lease, None
        if lease is None:
            return
        revoke = threading.Thread(target=self._revoke, args=(lease,), name="hold", daemon=True)
        revoke.start()
        revoke.join(REVOKE_GRACE)

    def _holder(self) -> Optional[tuple]:
        """(the hold's record, its mod_revision), None when nobody holds it."""
        found = self.client.call("kv/range", {"key": encode(self.key)}).get("kvs", [])
        if not found:
            return None
        try:
            record = json.loads(decode(found[0].get("value", "")))
        except ValueError:
            record = None
        if not isinstance(record, dict):
            record = {"owner": "?"}  # written by something else: not ours to take
        return record, int(found[0].get("mod_revision", 0))

    def _taken(self, record: Dict[str, Any]) -> str:
        since = record.get("since")
        when = (
            time.strftime(" since %H:%M:%S UTC", time.gmtime(since))
            if isinstance(since, int)
            else ""
        )
        who = f"pid {shown(record.get('pid'))} on {shown(record.get('node'))}"
        if record.get("machine"):
            who += f", machine id {shown(record.get('machine'))}"
        return (
            f"hostname {shown(self.hostname)} is held by another agent ({who}{when}): "
            "its exported resources and this one's would overwrite each other; "
            "give each host a --hostname of its own (if that agent is gone, "
            f"its hold ends within {LEASE_TTL} s)"
        )

    def _start_keepalive(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._keepalive, name="hold", daemon=True)
            self._thread.start()

    def _keepalive(self) -> None:
        while not self._stop.wait(LEASE_TTL / 3):
            lease = self._lease
            if lease is None:
                continue
            try:
                answer = self.client.call("lease/keepalive", {"ID": lease})
            except WorldError as err:  # etcd away for now: the lease may outlive it
                log.debug("cannot keep the hold on %s alive: %s", self.key, err)
                continue
            if int(answer.get("result", answer).get("TTL", 0)) > 0:
                continue
            # The lease ran out (etcd unreachable too long, this agent stopped, a
            # new cluster): the key went with it. Taken again at once, not at the
            # next publish, before another agent of this name writes over ours.
            with self._lock:
                if self._lease == lease:
                    self._lease = None
            log.warning("the hold on hostname %s ran out; taking it again", shown(self.hostname))
            try:
                self.ensure()
            except WorldError as err:
                log.warning("%s", err)

    def _revoke(self, lease: str) -> None:
        try:
            self.client.call("lease/revoke", {"ID": lease})
        except WorldError as err:  # it runs out by itself
            log.debug("cannot revoke the hold on %s: %s", self.key, err)
