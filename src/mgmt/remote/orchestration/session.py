"""One host's whole life in a remote run: connect, tunnel, start, stop, clean.

A warm start is one connection, one port forward and one command (START, see
mgmt.remote.protocol), which checks the cached bundle, makes the run dir,
writes the graph and starts the agent. A cold start is the same command: the
bundle follows on its stdin, and START's guard removes a partial copy and the
run dir whatever ends the session. Graph edits go down the same stdin, so
they cost no round trip. The agent's stdout and stderr are streamed as they
come, each line prefixed with the host's name; its converged events go to
``report`` (the fan-out keeps them).

The session talks to its host only through a transport Runner.
"""

import contextlib
import functools
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from mgmt.errors import RemoteError
from mgmt.log import get_logger
from mgmt.remote import protocol
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.orchestration import agentstart, ending
from mgmt.remote.orchestration.bundlecopy import ended_mid_copy, send_bundle
from mgmt.remote.orchestration.context import RunContext
from mgmt.remote.orchestration.results import CONVERGED, EXITED, FAILED, STOPPED, HostResult
from mgmt.remote.protocol.programs import LAUNCHER, START
from mgmt.remote.transport.runner import Process, Runner, upload

log = get_logger("remote")

STOP_GRACE = 10.0  # SIGINT, then SIGKILL after this long (as mgmt did)
# How often a waiting session looks at its host; the agent's exit, and the connection's
# loss or close, wake it at once (each 0.25 s was 400 wake-ups a second at 100 hosts).
WAIT_POLL = 1.0
COPYING_BUNDLE = "Copying bundle ({size} bytes), please be patient..."
BUNDLE_CACHED = "Skipping bundle copy, file was cached."
GRAPH_COPIED = "Copied over new graph definition: {path}"
__all__ = ["CONVERGED", "EXITED", "FAILED", "STOPPED", "Session"]


class Interrupted(RemoteError):
    """The run is stopping; the copy under way was abandoned (the host removes it)."""


class Session:
    """Runs one graph on one host; ``run()`` blocks, ``stop()`` may come from any thread."""

    # SIGINT, then SIGKILL after this long; a secondary's sessions have less, so
    # that every level of a via: run has stopped within the initiator's.
    stop_grace = STOP_GRACE
    start_timeout = agentstart.START_TIMEOUT
    lock_kind = protocol.ATTACHED  # one agent per host and user (START's KIND)

    def __init__(self, spec: HostSpec, ctx: RunContext, report: Callable[[str, bool], None]):
        self.spec = spec
        self.ctx = ctx
        self.host = spec.name
        self.report = report
        self.agent_pid: Optional[int] = None
        self.running = threading.Event()  # the agent has started and not yet ended
        self.started = threading.Event()  # the agent was started (stays set)
        self.connected = threading.Event()  # logged in to the host (stays set)
        self.finished = threading.Event()
        self.began: Optional[float] = None  # time.monotonic() as its life began
        self.result: Optional[HostResult] = None
        self.agent_report: Optional[Dict[str, Any]] = None  # its --json document
        self.python: Optional[protocol.Python] = None  # what the launcher runs on
        self._stop_reason: Optional[str] = None
        self._dropped: Optional[str] = None  # why abort() dropped it: the host's failure
        self._stop = threading.Event()
        self._runner: Optional[Runner] = None
        self._process: Optional[Process] = None
        self._paths: Optional[protocol.RemotePaths] = None
        self._graph_dirty = False
        self._wrapper_done = False  # START ended, and removed the run dir
        self._lines_sent = False  # START has the graph and settings: the agent starts
        self._stop_sent_at: Optional[float] = None
        self._send_lock = threading.Lock()

    # -- control from other threads ------------------------------------------

    def stop(self, reason: str = STOPPED) -> None:
        """Ask the session to stop its agent and clean up (idempotent)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()
        runner = self._runner
        if runner is not None:
            runner.hurry()  # a dead host must not hold the stop up
        if self.running.is_set() or self._lines_sent:
            self._send_stop()  # now, not at the session's next look

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def dropped(self) -> Optional[str]:
        """Why :meth:`abort` gave up on it (None: it did not)."""
        return self._dropped

    def abort(self, why: Optional[str]) -> None:
        """Last resort after the grace period: drop the connection under it.

        The host did not confirm its stop: it fails with ``why`` (unless its
        connection was found lost first: that says more); None, it is stopped
        all the same (see fanout's _drop_reason_for)."""
        if self._dropped is None:
            self._dropped = why
        self.stop()
        runner = self._runner
        if runner is not None:
            runner.close()

    def send_graph(self, payload: bytes, as_json: Optional[str]) -> bool:
        """Hand the agent its edited graph; False if it is not running.

        An edit that lands before the agent runs is remembered and sent as soon
        as it does. The edit goes down START's stdin (no round trip); one
        without a one-line JSON form, or too long for a line, is uploaded.
        """
        if self.finished.is_set():
            return False
        if not self.running.is_set() or self.stopping:
            self._graph_dirty = True
            return False
        self._graph_dirty = False
        try:
            if as_json is not None and len(as_json) <= protocol.INLINE_GRAPH_MAX:
                with self._send_lock:
                    self._process.send(protocol.graph_edit_line(as_json))
            else:
                upload(self._runner, payload, self._paths.graph(self.spec.graph.name))
        except (OSError, EOFError, RemoteError) as err:
            log.error("%s: re-copying %s failed: %s", self.host, self.spec.graph, err)
            return False
        log.info("%s: %s", self.host, GRAPH_COPIED.format(path=self.shown_graph()))
        return True

    def shown_graph(self) -> object:
        """The file a graph edit's log line names (a secondary's: the user's, not its plan)."""
        return self.spec.graph

    # -- the life of the session -----------------------------------------------

    def run(self) -> HostResult:
        started = self.began = time.monotonic()
        outcome = {"result": FAILED, "bundle": "-", "message": ""}
        tunnel = None
        try:
            self._runner = runner = self.ctx.connect(self.spec)
            self.connected.set()
            self._check_stop()
            size = self.ctx.bundle.stat().st_size
            self._process = process = runner.start(self._start_command(size))
            process.stderr = agentstart.DrainedStream(process.stderr)  # type: ignore[assignment]
            # While the host runs START: the port goes into the agent's settings;
            # etcd starts when the first agent connects through a tunnel, if ever.
            tunnel = runner.tunnel(self.ctx.endpoint.target)
            port = self._open_tunnel(tunnel, process)
            outcome["bundle"] = self._ready(process, size)
            self._check_stop()
            status = self._run_agent(process, self.agent_settings(port))
            outcome["result"], outcome["message"] = self._judge(status)
        except Exception as err:
            lost = self._runner.lost() if self._runner is not None else None
            stop_reason = (self._stop_reason or STOPPED) if self.stopping else None
            why = ending.judge_error(self.host, err, lost, self._dropped, stop_reason)
            outcome["result"], outcome["message"] = why
        finally:
            if tunnel is not None:
                tunnel.close(cancel=False)  # the connection closes below, and the port with it
            self._cleanup()
            self.result = HostResult(
                self.host,
                seconds=time.monotonic() - started,
                report=self.agent_report,
                **outcome,  # type: ignore[arg-type]
            )
            self.finished.set()
        return self.result

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Interrupted(self.host, "stopped before the agent started")

    def _start_command(self, size: int) -> str:
        mode = "cache" if self.ctx.caching else "nocache"
        args = (self.ctx.bundle_sha256, mode, "", self.spec.graph.name)
        python, build = self.spec.python or "", self.ctx.bundle_build_id
        return protocol.sh(START, *args, build, LAUNCHER, str(size), python, self.lock_kind)

    def _open_tunnel(self, tunnel, process: Process) -> int:
        """The tunnel's port; if sshd refuses it, START's run dir is still found
        (for the clean-up) before the error goes on."""
        try:
            return tunnel.open()
        except BaseException:
            with contextlib.suppress(Exception):
                self._paths = protocol.read_start(process.stdout)
            raise

    def _failed_start(self, process: Process, what: str) -> RemoteError:
        self._wrapper_done = True  # START removes its run dir before it exits
        return agentstart.start_failed(self.host, self.spec.python, process, what)

    def _ready(self, process: Process, size: int) -> str:
        """START past its cache check, the bundle sent first if it was missing."""
        paths = protocol.read_start(process.stdout)
        if paths is None:
            raise self._failed_start(process, "cannot prepare the working dir")
        self._paths = paths
        if paths.bundle_cached:
            log.info("%s: %s", self.host, BUNDLE_CACHED)
            return "cached"
        log.info("%s: %s", self.host, COPYING_BUNDLE.format(size=size))
        pty = self._runner.become.pty
        try:
            sent = send_bundle(process, self.ctx.bundle, size, self._stop.is_set, pty)
        except Exception as err:
            if not ended_mid_copy(process, err):
                raise
            raise self._failed_start(process, "copying the bundle failed") from None
        if not sent:
            raise Interrupted(self.host, "stopped while copying")
        if protocol.read_start(process.stdout) is None:
            raise self._failed_start(process, "copying the bundle failed")
        return "copied"

    def agent_settings(self, port: int) -> Dict[str, Any]:
        """The agent's settings line (mgmt.settings.FIELDS) but the credentials;
        the host adds its graph file and state dir, in the run dir it makes."""
        return {
            "hostname": self.host,
            "no_server": True,
            "seeds": [f"http://127.0.0.1:{port}"],
            "converged_stdout": True,
            **self.ctx.agent_options,
        }

    def secret_settings(self) -> Dict[str, Any]:
        """What the settings line carries beyond :meth:`agent_settings` and never
        shows (the "Running:" line is made without it): the etcd credentials."""
        creds = self.ctx.endpoint.credentials
        if creds is None:
            return {}
        return {"credentials": [creds.username, creds.password]}

    def describe_start(self, paths: protocol.RemotePaths, settings: Dict[str, Any]) -> str:
        """What the host runs, for the "Running:" log line."""
        return protocol.command_line(paths, self.spec.graph.name, settings)

    def _run_agent(self, process: Process, settings: Dict[str, Any]) -> int:
        graph, _ = self._start_payload()
        paths = self._paths
        if len(graph) > protocol.INLINE_GRAPH_MAX:
            upload(self._runner, graph, paths.graph(self.spec.graph.name))
            graph = b""
        command = self.describe_start(paths, settings)
        settings = {**settings, **self.secret_settings()}
        with self._send_lock:
            process.send(protocol.start_lines(graph, settings))
            self._lines_sent = True  # a stop goes to START's guard from now on
        if self.stopping:  # asked while the lines went: stop() may have found none yet
            self._send_stop()
        kill = functools.partial(self._send_locked, process, protocol.KILL)
        self.python, held, silent = agentstart.read_python_within(
            process.stdout, self.start_timeout, kill, process.close
        )
        if silent and not self.stopping:  # killed (and dropped, if it held on)
            python = self.spec.python or "the Python found on the host"
            why = agentstart.SILENT_START.format(python=python, seconds=self.start_timeout)
            raise RemoteError(self.host, why)
        if self.python is None:  # no launcher ran: not a Python (see agentstart)
            wait = functools.partial(self._wait, process)
            raise agentstart.not_started(
                self.host, self.spec.python, held, process.stderr, wait, self._line
            )
        for line in held:
            self._line(line)
        on = f" (Python {self.python.short}, {self.python.path})"
        log.info("%s: Running%s: %s", self.host, on, self._runner.become.shown + command)
        readers = [
            threading.Thread(target=self._stream, args=(process.stdout,), daemon=True),
            threading.Thread(target=self._stream, args=(process.stderr,), daemon=True),
        ]
        for reader in readers:
            reader.start()
        self.started.set()
        self.running.set()
        if self.stopping:
            self._send_stop()
        elif self._graph_dirty:
            self.send_graph(*self._start_payload())  # an edit made while it started
        try:
            status = self._wait(process)
        finally:
            self.running.clear()  # no more edits: the agent is gone
        for reader in readers:
            reader.join(2.0)
        return status

    def _send_locked(self, process: Process, line: bytes) -> None:
        with self._send_lock, contextlib.suppress(Exception):  # a connection going: _wait says
            process.send(line)

    def _start_payload(self) -> Tuple[bytes, Optional[str]]:
        return (self.ctx.start_payload or self.ctx.payload)(self.spec.graph)

    def _send_stop(self) -> None:
        """Tell START's guard to SIGINT the agent, once (from any thread)."""
        with self._send_lock:
            if self._stop_sent_at is not None or self._process is None:
                return
            self._stop_sent_at = time.monotonic()
            log.debug("%s: stopping agent (pid %s)", self.host, self.agent_pid)
            with contextlib.suppress(Exception):  # if the connection is going, _wait finds out
                self._process.send(protocol.STOP)

    def _wait(self, process: Process) -> int:
        """Wait for the agent to end; stop it (SIGINT, later SIGKILL) when asked."""
        kill_sent = None
        while True:
            status = process.wait(WAIT_POLL)
            lost = self._runner.lost()
            if lost is not None:
                raise RemoteError(self.host, lost)
            if status == -1:  # closed without an exit status: the connection went away
                raise RemoteError(self.host, "connection lost while the agent ran")
            if status is not None:
                break
            now = time.monotonic()
            stop_sent = self._stop_sent_at
            if stop_sent is not None and kill_sent is None and now - stop_sent > self.stop_grace:
                kill_sent = now
                log.warning(
                    "%s: agent (pid %s) still running %.0f s after SIGINT; sending SIGKILL",
                    self.host,
                    self.agent_pid,
                    self.stop_grace,
                )
                with self._send_lock:
                    process.send(protocol.KILL)
            elif kill_sent is not None and now - kill_sent > 5:
                raise RemoteError(self.host, f"agent (pid {self.agent_pid}) would not die")
        self._wrapper_done = status not in protocol.EXITS_BEFORE_AGENT
        return status

    def _judge(self, status: int) -> Tuple[str, str]:
        return ending.judge_status(status, self._stop_reason, self.stop_grace, self.python)

    def _stream(self, stream) -> None:
        """Forward agent output line by line, as it comes."""
        try:
            for raw in stream:
                self._line(raw.decode(errors="replace").rstrip("\r\n"))
        except Exception:  # the connection went: _wait says so
            pass

    def _line(self, line: str) -> None:
        """One line from the host: a protocol event, or output to show."""
        if self.agent_pid is None:
            pid = protocol.parse_pid_line(line)
            if pid is not None:
                self.agent_pid = pid
                return
        converged = protocol.parse_converged_line(line)
        if converged is not None:
            self.report(self.host, converged)
            return
        document = protocol.parse_report_line(line)
        if document is not None:
            self.agent_report = document
            return
        if self.ctx.output is not None:
            self.ctx.output(self.host, line)

    def _cleanup(self) -> None:
        runner, self._runner = self._runner, None
        process, self._process = self._process, None
        try:
            if process is not None:
                process.close()  # START's guards see stdin close
            if (
                runner is not None
                and runner.lost() is None
                and getattr(runner, "connected", True)
                and self._paths is not None
                and not self._wrapper_done
            ):
                runner.run(protocol.sh('rm -rf -- "$1"; exit 0', self._paths.run_dir), timeout=10)
        except Exception as err:
            log.warning("%s: cleanup failed: %s", self.host, err)
        finally:
            if runner is not None:
                runner.close()
