"""A detached cluster's etcd as one of its hosts finds and reaches it: a module of the
hosts' program (detached.py), shipped with it and loaded by its ``main`` (see there).

- which etcd binary a member runs (:func:`find_etcd`);
- before the members start, whether this one can listen on its address and reach
  the others' peer ports (:func:`probe_peers`), and before the agent starts,
  whether a member answers (:func:`reachable`): a cluster whose members cannot
  reach each other never gets a quorum and says so only in its etcd log, so
  these checks say it at once, naming the addresses;
- a member's health, and what this host's agent wrote there about its
  convergence (:func:`convergence`, through the cluster's own bundle).

Runs on the host's Python (3.6 and later) with the standard library only (and,
for :func:`convergence` and the auth set-up, the bundle's mgmt package from its
zip: :func:`use_bundle`).
"""

import os
import socket
import sys
import time

ETCD_PATHS = ("/usr/bin/etcd", "/usr/sbin/etcd", "/usr/local/bin/etcd")  # server.SEARCH_PATHS
# A member lives for months after the initiator leaves; without compaction it keeps
# every revision the agents write until its backend quota raises NOSPACE and every
# write fails. Kept an hour, as the initiator's own etcd keeps it (server.py's
# COMPACTION_RETENTION says why): a member's argv ends with these.
AUTO_COMPACTION = ("--auto-compaction-mode=periodic", "--auto-compaction-retention=1h")


class Failed(Exception):
    """A one-line reason, sent back as {"error": ...} (detached.py's main knows it by name)."""


def find_etcd():
    """The host's etcd, found as the initiator finds its own (mgmt.world.server's
    find_etcd: PATH first, then ETCD_PATHS); None if it has none."""
    # Absolute entries only: the member runs in DIR, where a relative one means another file.
    folders = [f for f in os.environ.get("PATH", "").split(os.pathsep) if f.startswith("/")]
    for candidate in [os.path.join(f, "etcd") for f in folders] + list(ETCD_PATHS):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def use_bundle(bundle):
    """The bundle's mgmt package, imported from its zip (the agent's own client code)."""
    site = bundle + "/site-packages"
    if site not in sys.path:
        sys.path.insert(0, site)


def healthy(url, timeout=1.0):
    """Whether the etcd member at ``url`` says it is healthy (it has a quorum)."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/health", timeout=timeout) as answer:
            return b'"true"' in answer.read()
    except Exception:  # refused, timed out, not HTTP: not healthy
        return False


def probe_peers(address, ports, others, timeout=5.0):
    """Before the members start: this one can listen on ``address`` at ``ports`` (the
    peer port last), and it reaches the ``others``' peer ports, (host, port) pairs
    (they all probe at once, each listening for the others). Failed if not."""
    listeners = []
    try:
        for port in ports:
            listener = socket.socket(_family(address), socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listeners.append(listener)
            try:
                listener.bind((address, port))
            except OSError as err:
                raise Failed(
                    f"cannot listen on {address}:{port} here ({err.strerror}): is {address} "
                    "this host's address, and the port free? (--cluster-address HOST=ADDR)"
                ) from None
            listener.listen(16)
        peer = listeners[-1]
        peer.settimeout(0.05)
        missing, incoming = list(others), set()
        # Only the others' connections count: a stray one (the member of an earlier
        # cluster dialling this address) ended the listening before an other had
        # reached it. One that dials from another address (a host with two) is
        # waited for until the deadline: a slower probe, not a failed one.
        expected = {_same(host) for host, _port in others}
        deadline = time.time() + timeout
        while (missing or incoming != expected) and time.time() < deadline:
            try:
                connection, source = peer.accept()
                connection.close()
                if _same(source[0]) in expected:
                    incoming.add(_same(source[0]))
            except OSError:  # socket.timeout is one
                pass
            for target in list(missing):
                try:
                    socket.create_connection(target, 0.2).close()
                    missing.remove(target)
                except OSError:
                    pass
    finally:
        for listener in listeners:
            listener.close()
    if missing:
        where = ", ".join(f"{host}:{port}" for host, port in missing)
        raise Failed(
            f"cannot reach the cluster's other member(s) at {where} from here: its members "
            "must reach each other on these addresses (use --cluster-address HOST=ADDR)"
        )


def _family(address):
    """The socket family of an address as the members are given it (IPv6 bare)."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _same(address):
    """An IP address in one spelling (fd00:0::2 and fd00::2 are one), to compare
    the others' addresses as given with those connections come from."""
    import ipaddress

    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).compressed
    except ValueError:  # a name, not an address
        return address


def reachable(urls, timeout=3.0):
    """The first of ``urls`` that accepts a TCP connection, or None."""
    from urllib.parse import urlsplit

    deadline = time.time() + timeout
    while True:
        for url in urls:
            try:
                # urlsplit takes an IPv6 address out of its brackets
                parts = urlsplit(url)
                socket.create_connection((parts.hostname, parts.port), 0.5).close()
                return url
            except (OSError, ValueError, TypeError):
                continue
        if time.time() > deadline:
            return None
        time.sleep(0.1)


def convergence(settings, bundle):
    """This host's converged key in the cluster's etcd, and the resources its agent
    reported failed then, read by the cluster's own bundle (the version that wrote
    them); (None, []) if they cannot be read."""
    try:
        use_bundle(bundle)
        from mgmt.settings import EtcdCredentials
        from mgmt.world.client import EtcdClient
        from mgmt.world.exchange import read_convergence

        client = EtcdClient(settings["seeds"], EtcdCredentials(*settings["credentials"]),
                            connect_timeout=1.0, read_timeout=2.0)  # fmt: skip
        try:
            return read_convergence(client, settings["hostname"])
        finally:
            client.close()
    except Exception:  # etcd away, bundle pruned: unknown
        return None, []
