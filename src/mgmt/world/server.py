"""The embedded etcd: the system binary on loopback, for one run.

Without ``--seeds`` an agent (and the initiator of ``--remote``) needs a cluster
of its own. We run the distribution's etcd rather than shipping one: it is a
package away on Debian and Fedora, and it keeps the bundle small. The server is
run-scoped: each start wipes the previous run's member data, so exports of hosts
that took part in an earlier run are never collected again.
"""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

from mgmt.errors import WorldError
from mgmt.log import get_logger
from mgmt.settings import EtcdCredentials

log = get_logger("etcd")

# Where distributions put the binary, and what to install when it is missing.
SEARCH_PATHS = ("/usr/bin/etcd", "/usr/sbin/etcd", "/usr/local/bin/etcd")
MISSING_BINARY = (
    "etcd not found: install the etcd-server package (Debian, Ubuntu) or etcd (Fedora, RHEL), "
    "or pass --seeds to use an existing cluster"
)

# A one-member cluster on loopback has no peers to miss heartbeats from; short
# raft timers let it elect itself in ~0.1 s instead of up to 1 s.
FAST_RAFT = ("--heartbeat-interval", "10", "--election-timeout", "100")
# A host exports all its resources in one transaction, so that others never see
# half of them; under etcd's default cap of 128 operations per transaction (a
# cluster given with --seeds) they go in batches (mgmt.world.exchange.TXN_OPS).
MAX_TXN_OPS = ("--max-txn-ops", "100000")
# The embedded server's only passwords are random per-run secrets, which a slow
# hash does not make any stronger; at etcd's default cost every remote agent's
# login burns tens of milliseconds of the initiator's CPU.
CHEAP_BCRYPT = ("--bcrypt-cost", "4")
# etcd keeps every revision of every key until told to compact: the agents'
# converged keys, exports and hostname holds add ~80 bytes a revision for as long
# as the cluster lives, until the backend quota raises NOSPACE and every write
# fails. Compacting keeps the history a watch may ask for bounded. An hour: a
# watch resumes from the last revision it saw after a dropped stream (a cut
# tunnel, a restarted etcd), which takes seconds; one that was away longer finds
# its revision compacted and re-reads the whole state (mgmt.world.watch), a full
# read rather than a lost change. Periodic mode, as etcd 3.4 and later read it:
# every hour (every retention, when shorter) it compacts to the revision it had
# one retention ago. The hosts' detached members use the same
# (detached_etcd.AUTO_COMPACTION).
COMPACTION_RETENTION = "1h"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 3
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def find_etcd(binary: Optional[str] = None) -> str:
    """The etcd executable to run, or a WorldError naming the package to install."""
    if binary:
        if os.access(binary, os.X_OK):
            return binary
        raise WorldError(f"{binary}: {MISSING_BINARY}")
    found = shutil.which("etcd")
    if found:
        return found
    for candidate in SEARCH_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    raise WorldError(MISSING_BINARY)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (etcd binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class EmbeddedEtcd:
    """Run ``etcd`` on 127.0.0.1 with free ports, data under ``data_dir``.

    Use as a context manager::

        with EmbeddedEtcd(state_dir / "etcd") as server:
            connect(server.client_url)

    The log goes to ``<data_dir>.log`` beside the data directory (etcd warns
    about foreign files inside its own).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        binary: Optional[str] = None,
        host: str = "127.0.0.1",
        start_timeout: float = START_TIMEOUT,
        extra_args: Sequence[str] = (),
        owner_thread_lives: bool = False,
        compaction_retention: str = COMPACTION_RETENTION,
    ):
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self.binary = binary
        self.host = host
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        # An etcd duration ("1h", "5m", "1s"): tests make it short to see compaction.
        self.compaction_retention = compaction_retention
        # The caller keeps the thread that calls start() alive for as long as etcd
        # runs, so etcd may die with it (see _die_with_parent) from any thread.
        self.owner_thread_lives = owner_thread_lives
        self.client_url = ""
        self.peer_url = ""
        self.root_credentials: Optional[EtcdCredentials] = None
        self._proc: Optional[subprocess.Popen] = None
        self._command_line: List[str] = []  # as last started (restart() reuses its ports)
        self._lock_fd: Optional[int] = None

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> "EmbeddedEtcd":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start etcd and return once it answers /health (or raise WorldError)."""
        binary = find_etcd(self.binary)
        started = time.monotonic()
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._prepare_dir()
                self._spawn(binary)
                self._wait_healthy()
                break
            except OSError as error:
                self.stop()
                raise WorldError(
                    f"cannot run etcd with its data in {self.data_dir}: {error.strerror or error}"
                ) from None
            except _PortTaken:
                # Another process took a port between our probe and etcd's bind.
                self._terminate()
                if attempt == PORT_ATTEMPTS - 1:
                    raise WorldError(
                        f"etcd could not bind free ports on {self.host}:\n{log_tail(self.log_path)}"
                    ) from None
            except BaseException:
                self.stop()
                raise
        log.debug("started at %s in %.2fs", self.client_url, time.monotonic() - started)

    def restart(self) -> None:
        """Start etcd again after it ended by itself (killed, out of memory), on the
        same ports and with its data kept: clients and watches carry on where they
        were. Called from a thread that lives as long as etcd runs (see
        _die_with_parent). WorldError if it does not come back."""
        with open(self.log_path, "ab") as log_file:
            self._proc = self._popen(self._command_line, log_file, True)
        try:
            self._wait_healthy()
        except _PortTaken:
            raise WorldError(f"etcd could not bind {self.client_url} again") from None

    def wait(self) -> Optional[int]:
        """Block until etcd ends, stopped or not; its exit status (None if it never ran)."""
        proc = self._proc
        return proc.wait() if proc is not None else None

    def stop(self) -> None:
        """Stop etcd and release the data directory."""
        self._terminate()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def enable_auth(self, run: Optional[EtcdCredentials] = None) -> EtcdCredentials:
        """Turn on etcd auth; return the per-run user (``run``, or a new one),
        limited to the /_mgmt/ prefix.

        The root password stays in this object's memory (``root_credentials``).
        """
        from mgmt.world.auth import enable_auth

        setup = enable_auth(self.client_url, run=run)
        self.root_credentials = setup.root
        return setup.run

    # -- internals -----------------------------------------------------------

    def _prepare_dir(self) -> None:
        import fcntl

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._lock_fd is None:
            lock_path = self.data_dir.with_name(self.data_dir.name + ".lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise WorldError(
                    f"{self.data_dir}: another mgmt agent runs an etcd here "
                    "(use another --prefix, or --tmp-prefix)"
                ) from None
            self._lock_fd = fd
        # Run-scoped data: only etcd's own member directory is removed.
        shutil.rmtree(self.data_dir / "member", ignore_errors=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)

    def _command(self, binary: str) -> List[str]:
        client = f"http://{self.host}:{free_port(self.host)}"
        peer = f"http://{self.host}:{free_port(self.host)}"
        self.client_url, self.peer_url = client, peer
        return [
            binary,
            "--name=mgmt",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=mgmt={peer}",
            "--initial-cluster-state=new",
            *FAST_RAFT,
            *MAX_TXN_OPS,
            *CHEAP_BCRYPT,
            "--auto-compaction-mode=periodic",
            f"--auto-compaction-retention={self.compaction_retention}",
            *self.extra_args,
        ]

    def _spawn(self, binary: str) -> None:
        self._command_line = self._command(binary)
        with open(self.log_path, "wb") as log_file:
            self._proc = self._popen(self._command_line, log_file, self.owner_thread_lives)

    @staticmethod
    def _popen(command: List[str], log_file: Any, owner_thread_lives: bool) -> subprocess.Popen:
        # A session of its own: a ^C at the terminal reaches the agent, which
        # then stops etcd in order, instead of both dying at once.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            preexec_fn=_die_with_parent(owner_thread_lives),
        )

    def _terminate(self) -> None:
        """SIGTERM etcd (by its own pid), SIGKILL it if it lingers, reap it."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            # A stopped etcd (SIGSTOP, a debugger let go) sees it only once continued.
            proc.send_signal(signal.SIGCONT)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("etcd (pid %d) ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait()

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        delay = 0.005
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = log_tail(self.log_path)
                if "address already in use" in tail:
                    raise _PortTaken()
                raise WorldError(f"etcd exited with status {code} while starting:\n{tail}")
            if _healthy(self.client_url):
                return
            if time.monotonic() > deadline:
                raise WorldError(
                    f"etcd at {self.client_url} not healthy after {self.start_timeout:.0f}s:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _die_with_parent(owner_thread_lives: bool = False) -> Optional[Callable[[], None]]:
    """A preexec hook so that etcd gets SIGTERM if the agent is SIGKILLed.

    Without it a killed agent leaves an orphan etcd running forever. Linux sends
    the signal when the *thread* that forked exits, so it is only armed from the
    main thread, whose end is the process's end, or from a thread that its
    owner keeps alive as long as etcd runs (``owner_thread_lives``).
    """
    if threading.current_thread() is not threading.main_thread() and not owner_thread_lives:
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the agent died before the signal was armed
            os._exit(1)

    return arm


class _PortTaken(Exception):
    pass


# Loopback never goes through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(client_url: str) -> bool:
    try:
        with _DIRECT.open(f"{client_url}/health", timeout=1.0) as response:
            return b'"true"' in response.read()
    except (OSError, urllib.error.URLError):
        return False
