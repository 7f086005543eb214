"""The folder of a detached cluster on its host, and its files: shipped with
detached.py (which see), as the first of the modules its commands import.

Everything of the cluster lives in DIR = ``~/.local/state/mgmt/detached`` (0700),
one per login user; the cached bundle and etcd in CACHE = ``~/.cache/mgmt``.
Runs on the host's Python (3.6 and later) with the standard library only.
"""

import contextlib
import json
import os
import sys

# Its agent.sup is mgmt.remote.protocol.DETACHED_AGENT_SUPERVISOR (attached agents look).
DIR = os.path.join(os.path.expanduser("~"), ".local", "state", "mgmt", "detached")

CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mgmt")

HEALTH_TIMEOUT = 30.0

LOG_LINES = 10

NAMES = ("agent", "etcd")


class Failed(Exception):
    """A one-line reason, sent back as {"error": ...}."""


def path(*names):
    return os.path.join(DIR, *names)


def sha256_of(name):
    import hashlib

    digest = hashlib.sha256()
    with open(name, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def supervision():
    """DIR/supervise.py (written by ``etcd`` and ``agent``: install_supervisor), imported."""
    sys.dont_write_bytecode = True
    if DIR not in sys.path:
        sys.path.insert(0, DIR)
    import supervise

    return supervise


def running(name):
    return (
        os.path.isdir(DIR)
        and os.path.exists(path("supervise.py"))
        and (supervision().supervisor_running(DIR, name) is not None)
    )


def write_private(name, data):
    return supervision().write_private(name, data)


def read_text(name, default=None):
    try:
        with open(name) as f:
            return f.read()
    except OSError:
        return default


@contextlib.contextmanager
def one_at_a_time():
    """Held while a command starts a process of the cluster here, or removes what a
    cluster left: two runs at once (two `mgmt run --detach` to one host) otherwise
    both found nothing running and both started, the first's process then named by
    no file, and a run's clean-up could remove the other's cluster. The lock file is
    in CACHE, as the agents' own lock is: DIR goes with a stop."""
    import fcntl

    os.makedirs(CACHE, 0o700, exist_ok=True)  # two runs at once may both make it
    fd = os.open(os.path.join(CACHE, "detached.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def cluster_record():
    """DIR/cluster.json ({} if it is missing or unreadable)."""
    try:
        found = json.loads(read_text(path("cluster.json"), "") or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


GRAPHS = "graphs"


def graph_path(name):
    """Where the agent's graph ``name`` is kept: DIR/graphs/NAME (DIR/NAME in a cluster
    started before that folder was: a graph named as one of the cluster's files,
    ``cluster.json``, ``agent.json``, took its place)."""
    folder = path(GRAPHS)
    return os.path.join(folder, name) if os.path.isdir(folder) else path(name)


def tail(name, lines=LOG_LINES, chunk=64 * 1024):
    """The last ``lines`` of the log ``name``, from its end alone (it may be megabytes),
    with those of ``name``.1 before them when it has fewer (just emptied by the
    supervisor, which keeps it short)."""
    found = []
    for part in (name, name + ".1"):
        try:
            with open(part, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - chunk))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        found = text.splitlines()[-(lines - len(found)) :] + found
        if len(found) >= lines:
            break
    return "\n".join(found[-lines:])
