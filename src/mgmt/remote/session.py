"""One host's whole life in a remote run: connect, tunnel, start, stop, clean.

A warm start takes one connection, one port forward and one command, which
checks the cached bundle, makes the run dir, writes the graph and starts the
agent (see :mod:`mgmt.remote.launch`); only a host without the bundle costs a
copy and a second command. The agent's stdout and stderr are streamed as they
come, each line prefixed with the host's name.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Protocol, Tuple

import paramiko

from mgmt.errors import GraphError, RemoteError
from mgmt.graph.located import graph_as_json
from mgmt.log import get_logger
from mgmt.remote import launch, push
from mgmt.remote.connect import ConnectOptions, connect
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.tunnel import ReverseTunnel
from mgmt.settings import EtcdCredentials
from mgmt.world.api import parse_converged_line

log = get_logger("remote")

STOP_GRACE = 10.0  # SIGINT, then SIGKILL after this long (as mgmt did)
# How often a waiting session looks at its connection; a stop request and the
# agent's exit status wake it at once.
WAIT_POLL = 0.5

# Results in the summary.
CONVERGED = "converged"
STOPPED = "stopped"
EXITED = "exited"
FAILED = "failed"


class Cluster(Protocol):
    """The run's etcd, and where convergence is kept, as sessions see them
    (see mgmt.remote.cluster)."""

    credentials: EtcdCredentials

    def target(self) -> Tuple[str, int]: ...

    def report_converged(self, host: str, converged: bool) -> None: ...


@dataclass
class RunContext:
    """What every session of one run shares."""

    bundle: Path
    bundle_sha256: str
    cluster: Cluster
    bundle_build_id: str = ""
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    caching: bool = True
    # What every agent of the run is also told (noop, no_watch, verbosity).
    agent_options: Dict[str, Any] = field(default_factory=dict)
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
        self._agent_channel: Optional[paramiko.Channel] = None  # while the agent runs
        self._stop_sent_at: Optional[float] = None
        self._signal_lock = threading.Lock()

    # -- control from other threads ------------------------------------------

    def stop(self, reason: str = STOPPED) -> None:
        """Ask the session to stop its agent and clean up (idempotent)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()
        channel = self._agent_channel
        if channel is not None:
            self._send_stop(channel)  # now, not at the session's next look

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
            self._uploader = push.Uploader(conn, self.host, lambda: self._stop.is_set())
            channel = launch.start(conn, run_dir="", **self._start_options())
            # While the host runs START: the port goes into the agent's settings;
            # etcd starts when the first agent connects through a tunnel, if ever.
            tunnel = ReverseTunnel(conn.transport, self.ctx.cluster.target, self.host)
            settings = self.agent_settings(self._open_tunnel(tunnel, channel))
            launched = self._started(conn, channel, result)
            self._check_stop()
            status = self._run_agent(conn, launched, settings)
            result.result, result.message = self._judge(status)
        except RemoteError as err:
            result.result = STOPPED if isinstance(err, push.Interrupted) else FAILED
            result.message = err.message
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

    def _open_tunnel(self, tunnel: ReverseTunnel, channel: paramiko.Channel) -> int:
        """The tunnel's port; if sshd refuses it, START's run dir is still found
        (for the clean-up) before the error goes on."""
        try:
            return tunnel.open()
        except BaseException:
            with contextlib.suppress(RemoteError, paramiko.SSHException, EOFError, OSError):
                self._paths = launch.ready(channel, self.host).paths
            raise

    def _start_options(self) -> Dict[str, Any]:
        return dict(
            sha256=self.ctx.bundle_sha256,
            caching=self.ctx.caching,
            graph=self.spec.graph,
            build_id=self.ctx.bundle_build_id,
            timeout=self.ctx.connect.timeout,
        )

    def _started(self, conn, channel: paramiko.Channel, result: HostResult) -> launch.Launch:
        """START past its cache check; copy the bundle and start again if it is missing."""
        started = launch.ready(channel, self.host)
        self._paths = started.paths
        if started.need_bundle:
            started.channel.close()
            push.push_bundle(self._uploader, self.ctx.bundle, started.paths)
            result.bundle = "copied"
            run_dir = started.paths.run_dir
            channel = launch.start(conn, run_dir=run_dir, **self._start_options())
            started = launch.ready(channel, self.host)
            if started.need_bundle:
                started.channel.close()
                raise RemoteError(self.host, "the bundle copied does not match its sha256")
        else:
            log.info("%s: %s", self.host, push.BUNDLE_CACHED)
            result.bundle = "cached"
        return started

    def agent_settings(self, port: int) -> Dict[str, Any]:
        """The agent's settings (mgmt.settings.Settings fields) but the credentials;
        the host adds its graph file and state dir, in the run dir it makes."""
        return {
            "hostname": self.host,
            "no_server": True,
            "seeds": [f"http://127.0.0.1:{port}"],
            "depth": self.ctx.depth + 1,
            "converged_stdout": True,
            **self.ctx.agent_options,
        }

    def _graph_payload(self) -> bytes:
        """The graph as the agent first gets it: as JSON when it has a JSON form
        (the agent then never imports PyYAML, see mgmt.graph.located), else as is."""
        text = self.spec.graph.read_text(encoding="utf-8")
        try:
            as_json = graph_as_json(text)
        except GraphError:
            as_json = None  # edited into a bad state since it was checked: the agent says why
        return (text if as_json is None else as_json).encode("utf-8")

    def _run_agent(self, conn, started: launch.Launch, settings: Dict[str, Any]) -> int:
        graph = self._graph_payload()
        if len(graph) > launch.INLINE_GRAPH_MAX:
            push.push_graph(self._uploader, self.spec.graph, started.paths)
            graph = b""
        log.info(
            "%s: Running: %s",
            self.host,
            launch.command_line(started.paths, self.spec.graph, settings),
        )
        channel = started.channel
        creds = self.ctx.cluster.credentials
        settings = {**settings, "credentials": [creds.username, creds.password]}
        channel.sendall(launch.stdin_lines(graph, settings))
        readers = [
            threading.Thread(target=self._stream, args=(started.stdout,), daemon=True),
            threading.Thread(
                target=self._stream, args=(channel.makefile_stderr("rb"),), daemon=True
            ),
        ]
        for reader in readers:
            reader.start()
        self._agent_channel = channel
        self.started.set()
        self.running.set()
        if self._graph_dirty:
            self.repush_graph()
        try:
            status = self._wait(conn, channel)
        finally:
            self._agent_channel = None
            self.running.clear()  # no more re-copies: the agent is gone
        for reader in readers:
            reader.join(2.0)
        channel.close()
        return status

    def _send_stop(self, channel: paramiko.Channel) -> None:
        """Tell the wrapper to SIGINT the agent, once (from any thread)."""
        with self._signal_lock:
            if self._stop_sent_at is not None:
                return
            self._stop_sent_at = time.monotonic()
        log.debug("%s: stopping agent (pid %s)", self.host, self.agent_pid)
        # If the connection is going, _wait finds out.
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            channel.sendall(b"stop\n")

    def _wait(self, conn, channel: paramiko.Channel) -> int:
        """Wait for the agent to end; stop it (SIGINT, later SIGKILL) when asked."""
        kill_sent = None
        while not channel.status_event.wait(WAIT_POLL):
            if channel.status_event.is_set():
                break  # the status and the close came in together, after the wait
            if not conn.transport.is_active() or channel.closed:
                raise RemoteError(self.host, "connection lost while the agent ran")
            now = time.monotonic()
            stop_sent = self._stop_sent_at
            if self._stop.is_set() and stop_sent is None:
                self._send_stop(channel)  # asked before the agent ran
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
        self._wrapper_done = status not in launch.EXITS_BEFORE_AGENT
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
                if self.agent_pid is None and line.startswith(launch.PID_MARK):
                    self.agent_pid = int(line[len(launch.PID_MARK) :])
                    continue
                converged = parse_converged_line(line)
                if converged is not None:
                    self.ctx.cluster.report_converged(self.host, converged)
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
