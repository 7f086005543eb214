"""The hold on this host's name in etcd: one agent at a time publishes under it.

Exports live under /_mgmt/exported/<hostname>/: two agents that go by one name
(machines cloned from one image that kept its hostname, two ``--hostname``
alike) would each replace the other's exports at every publish, without a word.
So an agent that publishes holds /_mgmt/hosts/<hostname>, a key bound to a
lease it keeps alive, and each of its export transactions checks that it still
does. An agent that finds the key held by another is told who holds it (pid,
machine, since when) and writes nothing; it tries again every second (its world
sync, and this hold's own thread), so it takes over once the holder stops
(which revokes the lease: the key goes at once) or dies (the lease runs out
within LEASE_TTL seconds), and publishes its exports then. The same agent
started again (one machine, boot, user, state dir and PID namespace:
:func:`owner_of`, its old pid gone) takes its own hold over at once.

Imported on first use of the world, never on the agent's start path.
"""

import hashlib
import json
import os
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from mgmt.errors import WorldError
from mgmt.log import get_logger
from mgmt.resources.fields import shown
from mgmt.world.api import HOSTS_PREFIX
from mgmt.world.client import EtcdClient, decode, encode

log = get_logger("world")

# Seconds a dead agent's hold outlives it; kept alive three times as often.
LEASE_TTL = 10
# The keepalive's own timeouts: a renewal stuck on a seed that hangs must fail
# over to the next seed well before the lease runs out (the client's are 3 + 10 s).
KEEPALIVE_TIMEOUTS = (1.0, 2.0)
# How long a stop waits for etcd to take the hold back (an etcd that hangs would
# hold the stop for its timeouts; the lease runs out by itself then).
REVOKE_GRACE = 1.0
# etcd's words for a lease it does not have.
LEASE_GONE = "requested lease not found"

Holder = Tuple[Dict[str, Any], int, int]  # the hold's record, its mod_revision, its lease


def owner_of(state_dir: str) -> str:
    """Who this agent is, as a hold records it: the same for the agent started again
    on this machine in this boot, as this user, with this state dir, in this PID
    namespace; another for a clone of the machine (its boot id is its own even
    where the machine id is not) or a container."""
    parts = [_first_line("/etc/machine-id"), _first_line("/proc/sys/kernel/random/boot_id")]
    parts += [str(os.getuid()), os.path.abspath(state_dir), _namespace("pid")]
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _first_line(path: str) -> str:
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return ""


def _namespace(kind: str) -> str:
    try:
        return os.readlink("/proc/self/ns/" + kind)
    except OSError:
        return ""


def _gone(pid: Any) -> bool:
    """Whether ``pid`` (of this PID namespace) runs no process."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class HostHold:
    """This agent's hold on /_mgmt/hosts/<hostname>, taken by :meth:`ensure`.

    ``on_regained``: called (on the hold's thread) when the hold is taken again
    after it was lost or refused, so that this agent's exports, kept from
    etcd meanwhile or overwritten by the other agent, are published again.
    """

    def __init__(
        self,
        client: EtcdClient,
        hostname: str,
        owner: Optional[str] = None,
        on_regained: Optional[Callable[[], object]] = None,
    ):
        self.client = client
        self.hostname = hostname
        self.key = HOSTS_PREFIX + hostname
        self.owner = owner or os.urandom(16).hex()
        self._on_regained = on_regained or (lambda: None)
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
        self._held = False  # as last known: taken and not seen lost since
        self._wanted = False  # ensure() was asked: the hold's thread takes it back
        self._refusal = ""  # the last refusal said by the hold's thread
        self._was_held = False  # once held: a refusal after is the thread's to say
        self._lock = threading.Lock()  # one ensure() at a time: one lease, one key
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._renewer: Optional[EtcdClient] = None  # the keepalive's client (see above)

    def compare(self) -> Dict[str, Any]:
        """A transaction's compare that holds while this agent holds the key."""
        return {"key": encode(self.key), "target": "VALUE", "result": "EQUAL",
                "value": encode(self._value)}  # fmt: skip

    def ensure(self) -> None:
        """Hold the key (a call to etcd when held already); WorldError naming the
        holder when another agent does."""
        with self._lock:
            self._wanted = True
            self._check_stop()
            if self._lease is not None and self.client.txn([self.compare()], []):
                self._held = True
                return
            self._held = False
            try:
                self._take()
            except WorldError as err:
                if LEASE_GONE not in str(err):
                    raise
                # A lease etcd no longer has (another cluster now, or it ran out
                # while etcd was away): a new one.
                self._lease = None
                self._take()
            self._held = self._was_held = True

    def close(self) -> None:
        """Stop keeping the lease alive and revoke it (the key goes with it), for at
        most REVOKE_GRACE seconds. Nothing takes the hold again after it."""
        self._stop.set()
        # Not under the lock: an ensure() waiting on an etcd that hangs holds it.
        lease, self._lease = self._lease, None
        if lease is not None:
            revoke = threading.Thread(target=self._revoke, args=(lease,), name="hold", daemon=True)
            revoke.start()
            revoke.join(REVOKE_GRACE)
        if self._renewer is not None:
            self._renewer.close()

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise WorldError(f"hostname {shown(self.hostname)}: this agent is stopping")

    def _take(self) -> None:
        if self._lease is None:
            lease = str(self.client.call("lease/grant", {"TTL": LEASE_TTL})["ID"])
            if self._stop.is_set():  # closed meanwhile: no hold outlives the agent
                self._revoke(lease)
                self._check_stop()
            self._lease = lease
            self._start_keepalive()
        for _attempt in range(2):  # a holder may go between the look and the take
            held = self._holder()
            if held is not None and not self._may_take(held[0]):
                raise WorldError(self._taken(held))
            # Absent, or this agent's own from before it started again: taken
            # only if it is still as seen.
            seen = {"key": encode(self.key), "target": "MOD", "result": "EQUAL",
                    "mod_revision": held[1] if held else 0}  # fmt: skip
            put = {"key": encode(self.key), "value": encode(self._value), "lease": self._lease}
            self._check_stop()
            if self.client.txn([seen], [{"request_put": put}]):
                return
        raise WorldError(f"hostname {shown(self.hostname)}: its hold changed under us twice")

    def _may_take(self, record: Dict[str, Any]) -> bool:
        """Only a record of this same agent started again, whose process is gone."""
        return record.get("owner") == self.owner and _gone(record.get("pid"))

    def _holder(self) -> Optional[Holder]:
        """The hold as etcd has it, None when nobody holds it."""
        found = self.client.call("kv/range", {"key": encode(self.key)}).get("kvs", [])
        if not found:
            return None
        try:
            record = json.loads(decode(found[0].get("value", "")))
        except ValueError:
            record = None
        if not isinstance(record, dict):
            record = {"owner": "?"}  # written by something else: not ours to take
        return record, int(found[0].get("mod_revision", 0)), int(found[0].get("lease", 0))

    def _taken(self, held: Holder) -> str:
        record, _revision, lease = held
        since = record.get("since")
        when = (
            time.strftime(" since %H:%M:%S UTC", time.gmtime(since))
            if isinstance(since, int)
            else ""
        )
        who = f"pid {shown(record.get('pid'))} on {shown(record.get('node'))}"
        if record.get("machine"):
            who += f", machine id {shown(record.get('machine'))}"
        if lease:  # a reboot looks the same from here: a new boot is another agent
            ends = "If that agent is gone (this host rebooted, say), its hold ends within "
            ends += f"{LEASE_TTL} s."
        else:  # written by hand, with no lease: it never ends by itself
            ends = f"It has no lease and never ends by itself: etcdctl del {self.key}"
        return (
            f"hostname {shown(self.hostname)} is held by another agent ({who}{when}): "
            "two agents of one name would overwrite each other's exported resources; "
            f"give each host a --hostname of its own. {ends}"
        )

    def _start_keepalive(self) -> None:
        if self._thread is None:
            connect, read = KEEPALIVE_TIMEOUTS
            self._renewer = EtcdClient(
                self.client.urls, self.client.credentials, connect_timeout=connect,
                read_timeout=read,
            )  # fmt: skip
            self._thread = threading.Thread(target=self._keepalive, name="hold", daemon=True)
            self._thread.start()

    def _keepalive(self) -> None:
        """Renew the lease while held; while not (lost, or refused), take it again."""
        while not self._stop.wait(LEASE_TTL / 3):
            lease = self._lease
            if self._held and lease is not None:
                if self._renewed(lease):
                    continue
                # The lease ran out (etcd unreachable too long, this agent stopped,
                # a new cluster): the key went with it. Taken again at once, not at
                # the next publish, before another agent of this name writes over ours.
                with self._lock:
                    if self._lease == lease:
                        self._lease, self._held = None, False
                log.warning(
                    "the hold on hostname %s ran out; taking it again", shown(self.hostname)
                )
            if self._held or not self._wanted or self._stop.is_set():
                continue
            had = self._was_held
            try:
                self.ensure()
            except WorldError as err:
                # Said once, not at every try; and only for a hold lost: a refusal
                # from the start is the world sync's to say (it publishes nothing).
                if str(err) != self._refusal and had:
                    self._refusal = str(err)
                    log.warning("%s", err)
                continue
            self._refusal = ""
            again = " again" if had else ""
            log.info("holds hostname %s%s; publishing its exports", shown(self.hostname), again)
            try:
                self._on_regained()
            except Exception as err:  # the thread must survive anything
                log.warning("publishing exported resources again failed: %s", err)

    def _renewed(self, lease: str) -> bool:
        """Whether etcd still has ``lease`` after a renewal (True if it did not answer:
        the lease may outlive a short outage; etcd says so when it did not)."""
        try:
            assert self._renewer is not None
            answer = self._renewer.call("lease/keepalive", {"ID": lease})
        except WorldError as err:
            log.debug("cannot keep the hold on %s alive: %s", self.key, err)
            return True
        return int(answer.get("result", answer).get("TTL", 0)) > 0

    def _revoke(self, lease: str) -> None:
        try:
            self.client.call("lease/revoke", {"ID": lease})
        except WorldError as err:  # it runs out by itself
            log.debug("cannot revoke the hold on %s: %s", self.key, err)
