"""One host's whole life in a remote run: connect, push, tunnel, run, stop, clean.

The agent is started by a small POSIX sh wrapper (:data:`WRAPPER`) so that:

- every argument reaches it as a separate, quoted word (no interpolation);
- the etcd credentials travel on stdin (``--etcd-auth-stdin``), never on a
  command line or in a file;
- we learn the agent's own pid, and stopping it means the wrapper signals that
  pid (SIGINT, then SIGKILL when asked 10 s later), never a ``killall`` by name;
- if the initiator disappears (stdin closes) the agent is stopped all the same.

Its stdout and stderr are streamed as they come, each line prefixed with the
host's name.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Protocol, Tuple

import paramiko

from mgmt.errors import RemoteError, WorldError
from mgmt.log import get_logger
from mgmt.remote import push
from mgmt.remote.connect import ConnectOptions, connect
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.tunnel import ReverseTunnel
from mgmt.settings import EtcdCredentials

log = get_logger("remote")

STOP_GRACE = 10.0  # SIGINT, then SIGKILL after this long (as mgmt did)
PID_MARK = "@@mgmt-remote pid "

# One Python process runs the agent (-S: nothing from the host's site-packages).
# When the host already unpacked this very bundle ($1, keyed by shiv's build id)
# it imports the agent from there and skips shiv's bootstrap, which costs a
# start-up as much again (compiling itself from the zip, hashing, compileall);
# otherwise it runs the bundle, and shiv unpacks it. It restores SIGINT, which
# sh starts background jobs with ignored, and drops the working directory
# (where the graph lives) from the import path, as running the bundle would.
# Once the agent is done it exits at once (os._exit, after flushing): tearing
# down a whole interpreter's modules costs a fifth of a start-up, for nothing.
LAUNCHER = (
    "import os,signal,sys;signal.signal(signal.SIGINT,signal.default_int_handler);"
    "site=sys.argv[1];sys.argv=sys.argv[2:];del sys.path[0]\n"
    "if os.path.isdir(site):\n"
    " sys.path.insert(0,site);from mgmt.cli import run_cli;code=run_cli()\n"
    " sys.stdout.flush();sys.stderr.flush();os._exit(code)\n"
    "import runpy;runpy.run_path(sys.argv[0],run_name='__main__')"
)

# $1 run dir, $2 bundle, $3 shiv root, $4 its unpacked site-packages, $5 the
# launcher, then the agent's arguments.
WRAPPER = r"""
set -u
run=$1 bundle=$2 shiv=$3 site=$4 launcher=$5
shift 5
umask 077
cd "$run" || exit 96
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec 3<&0
IFS= read -r cred <&3 || { echo "mgmt-remote: no credentials on stdin" >&2; exit 97; }
printf '%s\n' "$cred" | SHIV_ROOT="$shiv" PYTHONUNBUFFERED=1 "$py" -S -c "$launcher" \
    "$site" "$bundle" "$@" 3<&- &
agent=$!
cred=
echo "@@mgmt-remote pid $agent"
(
    while IFS= read -r line <&3; do
        case $line in
            stop) kill -INT "$agent" ;;
            kill) kill -KILL "$agent" ;;
        esac
    done
    # stdin closed: the initiator is gone. Stop the agent all the same; short
    # sleeps so that nothing of ours lingers once it has gone.
    kill -INT "$agent" || exit 0
    i=0
    while [ $i -lt 100 ] && kill -0 "$agent"; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$agent"
) >/dev/null 2>&1 &
guard=$!
wait "$agent"
status=$?
kill "$guard" 2>/dev/null
# The run dir goes with the agent, also when the initiator is gone and cannot
# remove it (with --no-caching it holds the bundle too).
cd / && rm -rf -- "$run"
exit "$status"
"""

# Results in the summary.
CONVERGED = "converged"
STOPPED = "stopped"
EXITED = "exited"
FAILED = "failed"


class EtcdEndpoint(Protocol):
    """The initiator's etcd as sessions see it (see mgmt.remote.cluster)."""

    target: Tuple[str, int]
    credentials: Optional[EtcdCredentials]

    def wait_ready(self, stopping: Callable[[], bool]) -> None: ...


@dataclass
class RunContext:
    """What every session of one run shares."""

    bundle: Path
    bundle_sha256: str
    etcd: EtcdEndpoint
    bundle_build_id: str = ""
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    caching: bool = True
    agent_args: List[str] = field(default_factory=list)
    depth: int = 0
    output: Optional[Callable[[str, str], None]] = None


@dataclass
class HostResult:
    host: str
    result: str
    bundle: str = "-"  # copied | cached | -
    seconds: float = 0.0
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.result == FAILED


class Session:
    """Runs one graph on one host; ``run()`` blocks, ``stop()`` may come from any thread."""

    def __init__(self, spec: HostSpec, ctx: RunContext):
        self.spec = spec
        self.ctx = ctx
        self.host = spec.name
        self.agent_pid: Optional[int] = None
        self.running = threading.Event()  # the agent has started and not yet ended
        self.started = threading.Event()  # the agent was started (stays set)
        self.finished = threading.Event()
        self.result: Optional[HostResult] = None
        self._stop_reason: Optional[str] = None
        self._stop = threading.Event()
        self._conn = None
        self._uploader: Optional[push.Uploader] = None
        self._paths: Optional[push.RemotePaths] = None
        self._graph_dirty = False
        self._wrapper_done = False  # the wrapper ended, and removed the run dir

    # -- control from other threads ------------------------------------------

    def stop(self, reason: str = STOPPED) -> None:
        """Ask the session to stop its agent and clean up (idempotent)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def abort(self) -> None:
        """Last resort after the grace period: drop the connection under it."""
        self.stop()
        conn = self._conn
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    def repush_graph(self) -> bool:
        """Copy the graph again (it changed on the initiator); False if not running.

        An edit that lands while the first copy is under way is remembered and
        copied as soon as the agent runs. A finished session copies nothing: its
        connection is closed.
        """
        if self.finished.is_set():
            return False
        if not self.running.is_set() or self.stopping or self._uploader is None:
            self._graph_dirty = True
            return False
        self._graph_dirty = False
        try:
            push.push_graph(self._uploader, self.spec.graph, self._paths)
        except (RemoteError, paramiko.SSHException, EOFError, OSError) as err:
            log.error("%s: re-copying %s failed: %s", self.host, self.spec.graph, err)
            return False
        log.info("%s: %s", self.host, push.GRAPH_COPIED.format(path=self.spec.graph))
        return True

    # -- the life of the session -----------------------------------------------

    def run(self) -> HostResult:
        started = time.monotonic()
        result = HostResult(self.host, FAILED)
        tunnel: Optional[ReverseTunnel] = None
        try:
            self._conn = conn = connect(self.spec, self.ctx.connect)
            self._check_stop()
            self._paths = paths = push.prepare(
                conn, self.host, self.ctx.bundle_sha256, self.ctx.caching
            )
            self._uploader = push.Uploader(conn, self.host, lambda: self._stop.is_set())
            copied = push.push_bundle(self._uploader, self.ctx.bundle, paths)
            result.bundle = "copied" if copied else "cached"
            push.push_graph(self._uploader, self.spec.graph, paths)
            self._check_stop()
            self.ctx.etcd.wait_ready(lambda: self._stop.is_set())
            tunnel = ReverseTunnel(conn.transport, self.ctx.etcd.target, self.host)
            port = tunnel.open()
            status = self._run_agent(conn, paths, port)
            result.result, result.message = self._judge(status)
        except RemoteError as err:
            result.result = STOPPED if isinstance(err, push.Interrupted) else FAILED
            result.message = err.message
        except WorldError as err:
            result.result = STOPPED if self.stopping else FAILED
            result.message = str(err)
        except (paramiko.SSHException, EOFError, OSError) as err:
            result.message = f"connection lost: {err or type(err).__name__}"
        except Exception as err:  # a bug: fail this host, keep the others going
            log.debug("%s: session failed", self.host, exc_info=True)
            result.message = f"internal error: {type(err).__name__}: {err}"
        finally:
            if tunnel is not None:
                tunnel.close(cancel=False)  # the connection closes below, and the port with it
            self._cleanup()
            result.seconds = time.monotonic() - started
            self.result = result
            self.finished.set()
        return result

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise push.Interrupted(self.host, "stopped before the agent started")

    def agent_argv(self, paths: push.RemotePaths, port: int) -> List[str]:
        return [
            "run",
            "--hostname",
            self.host,
            "--no-server",
            "--seeds",
            f"http://127.0.0.1:{port}",
            "--file",
            paths.graph(self.spec.graph),
            "--prefix",
            paths.state_dir,
            "--depth",
            str(self.ctx.depth + 1),
            "--etcd-auth-stdin",
            *self.ctx.agent_args,
        ]

    def _run_agent(self, conn, paths: push.RemotePaths, port: int) -> int:
        argv = self.agent_argv(paths, port)
        log.info("%s: Running: %s", self.host, shlex.join([paths.bundle, *argv]))
        channel = conn.transport.open_session(timeout=self.ctx.connect.timeout)
        site = push.unpacked_site(paths, self.ctx.bundle_build_id)
        channel.exec_command(
            push.sh(WRAPPER, paths.run_dir, paths.bundle, paths.shiv_root, site, LAUNCHER, *argv)
        )
        creds = self.ctx.etcd.credentials
        channel.sendall(f"{creds.username}:{creds.password}\n".encode())
        readers = [
            threading.Thread(target=self._stream, args=(channel.makefile("rb"),), daemon=True),
            threading.Thread(
                target=self._stream, args=(channel.makefile_stderr("rb"),), daemon=True
            ),
        ]
        for reader in readers:
            reader.start()
        self.started.set()
        self.running.set()
        if self._graph_dirty:
            self.repush_graph()
        try:
            status = self._wait(conn, channel)
        finally:
            self.running.clear()  # no more re-copies: the agent is gone
        for reader in readers:
            reader.join(2.0)
        channel.close()
        return status

    def _wait(self, conn, channel: paramiko.Channel) -> int:
        """Wait for the agent to end; stop it (SIGINT, later SIGKILL) when asked."""
        stop_sent = kill_sent = None
        while not channel.status_event.wait(0.05):
            if channel.status_event.is_set():
                break  # the status and the close came in together, after the wait
            if not conn.transport.is_active() or channel.closed:
                raise RemoteError(self.host, "connection lost while the agent ran")
            now = time.monotonic()
            if self._stop.is_set() and stop_sent is None:
                stop_sent = now
                log.debug("%s: stopping agent (pid %s)", self.host, self.agent_pid)
                channel.sendall(b"stop\n")
            elif stop_sent is not None and kill_sent is None and now - stop_sent > STOP_GRACE:
                kill_sent = now
                log.warning(
                    "%s: agent (pid %s) still running %.0f s after SIGINT; sending SIGKILL",
                    self.host,
                    self.agent_pid,
                    STOP_GRACE,
                )
                channel.sendall(b"kill\n")
            elif kill_sent is not None and now - kill_sent > 5:
                raise RemoteError(self.host, f"agent (pid {self.agent_pid}) would not die")
        status = channel.recv_exit_status()
        if status == -1:  # closed without an exit status: the connection went away
            raise RemoteError(self.host, "connection lost while the agent ran")
        self._wrapper_done = status not in (96, 97)  # those two end before the agent
        return status

    def _judge(self, status: int) -> Tuple[str, str]:
        if self._stop_reason is not None:
            # SIGINT is a clean stop whatever code the agent chose for it.
            if status in (0, 130, 128 + 2):
                return self._stop_reason, ""
            if status == 128 + 9:
                return FAILED, "agent killed after ignoring SIGINT for 10 s"
        if status == 0:
            return EXITED, ""
        if status == 1:
            return FAILED, "the agent ended with failed resources (status 1; see its output)"
        return FAILED, f"agent exited with status {status}"

    def _stream(self, stream) -> None:
        """Forward agent output line by line, as it comes."""
        try:
            for raw in stream:
                line = raw.decode(errors="replace").rstrip("\r\n")
                if self.agent_pid is None and line.startswith(PID_MARK):
                    self.agent_pid = int(line[len(PID_MARK) :])
                    continue
                if self.ctx.output is not None:
                    self.ctx.output(self.host, line)
        except (OSError, EOFError, paramiko.SSHException, ValueError):
            pass

    def _cleanup(self) -> None:
        conn, self._conn = self._conn, None
        try:
            # After the wrapper's own clean-up only a half-copied graph can be left.
            if (
                conn is not None
                and conn.is_connected
                and self._paths is not None
                and (not self._wrapper_done or (self._uploader and self._uploader.pending))
            ):
                pending = self._uploader.pending if self._uploader else None
                push.cleanup(conn, self._paths, pending)
        except (paramiko.SSHException, EOFError, OSError) as err:
            log.warning("%s: cleanup failed: %s", self.host, err)
        finally:
            if self._uploader is not None:
                self._uploader.close()
            if conn is not None:
                conn.close()
