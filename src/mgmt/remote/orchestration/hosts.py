"""The hosts of a detached cluster (mgmt.remote.orchestration.detach): one connection
per host, a phase run on all of them at once, the hosts' program called, files copied.
A host whose connection went is told as lost (:class:`Lost`), with the runner's reason.

A ^C (or SIGTERM, SIGHUP: see detach) while a phase runs lets the host commands
under way end first (one still on its way would start its process after the
stop); a copy under way starts no process, so it is abandoned instead: it ends
within a chunk, and the host side removes the partial file (the upload's guard,
mgmt.remote.transport.runner.UPLOAD). A second one stops waiting. Stopping what
was started runs on threads of its own, so it never waits for a worker still busy.
"""

import json
import shlex
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mgmt.errors import MgmtError, RemoteError
from mgmt.log import get_logger
from mgmt.remote import protocol
from mgmt.remote.hostspec import HostSpec
from mgmt.remote.protocol import programs
from mgmt.remote.transport.runner import UPLOAD, Runner, is_connection_error
from mgmt.remote.transport.same_host import later_names

log = get_logger("remote")

# The hosts' side of a detached cluster: its program and the modules it imports.
DETACHED = programs.read("detached.py")
# In the order they are loaded: each may import those before it.
DETACHED_MODULES = ("detached_etcd", "detached_orphans", "detached_dir", "detached_start",
                    "detached_status", "detached_stop")  # fmt: skip
# What runs DETACHED on the graph's python: (or the host's, found as START finds it).
DETACHED_RUNNER = programs.with_find_python(programs.read("detached.sh"))
_SHIPPED = [arg for name in DETACHED_MODULES for arg in (name, programs.read(name + ".py"))]


def detached_args(command: str) -> List[str]:
    """The arguments of DETACHED (``python3 -S -c DETACHED ARGS``) running ``command``:
    the modules it imports, NAME TEXT each, then the command."""
    return [*_SHIPPED, command]


CHUNK = 256 * 1024


class Lost(RemoteError):
    """The connection to the host went (it says why, as the runner has it)."""


class Hosts:
    """One connection per host, and a way to run a phase on all of them at once."""

    def __init__(
        self,
        specs: Sequence[HostSpec],
        connect: Callable[[HostSpec], Runner],
        tolerant: bool = False,
    ):
        """``tolerant`` (status, stop): hosts that cannot be reached are left out of
        :attr:`specs` and kept in :attr:`unreachable` (host -> why), instead of
        failing the whole command."""
        self.specs = list(specs)
        self.runners: Dict[str, Runner] = {}
        self.unreachable: Dict[str, str] = {}
        self.stopping = threading.Event()  # set at a ^C: copies under way are abandoned
        self._connect = connect
        self._tolerant = tolerant
        self._pool = ThreadPoolExecutor(max_workers=min(32, max(1, len(self.specs))))

    def __enter__(self) -> "Hosts":
        def one(spec: HostSpec) -> None:
            try:
                self.runners[spec.name] = self._connect(spec)
            except RemoteError as err:
                if not self._tolerant:
                    raise
                self.unreachable[spec.name] = err.message

        try:
            self.each(one)
        except BaseException:
            self.__exit__()
            raise
        self.specs = [s for s in self.specs if s.name in self.runners]
        return self

    def set_aside_second_names(self) -> Dict[str, str]:
        """Logins reached under a second name (same_host.later_names) leave :attr:`specs`
        and their connections close: host -> how it is told. For status and stop,
        which see each host once."""
        later = later_names([(s.name, self.runners[s.name].login()) for s in self.specs])
        for name in later:
            self.runners.pop(name).close()
        self.specs = [s for s in self.specs if s.name not in later]
        return later

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        for runner in self.runners.values():
            runner.close()
        self._pool.shutdown(wait=False)

    def each(self, work: Callable[[HostSpec], Any], specs=None) -> Dict[str, Any]:
        """``work(spec)`` for every host at once; the first host error is raised
        after all have finished (MgmtError naming the host), and so is a ^C."""
        results, errors = self.each_apart(work, specs)
        if errors:
            found = list(errors.values())
            raise found[0] if len(found) == 1 else MgmtError("; ".join(str(e) for e in found))
        return results

    def each_apart(
        self, work: Callable[[HostSpec], Any], specs=None, own_threads: bool = False
    ) -> Tuple[Dict[str, Any], Dict[str, MgmtError]]:
        """As :meth:`each`, but every host's error is returned (host -> error), none
        raised. ``own_threads``: on threads of its own (a stop: the pool's workers may
        still be busy with what an interrupted phase left under way)."""
        specs = self.specs if specs is None else specs
        pool = ThreadPoolExecutor(max_workers=max(1, len(specs))) if own_threads else self._pool
        try:
            futures = {spec.name: pool.submit(work, spec) for spec in specs}
            try:
                wait(futures.values())
            except BaseException:  # ^C
                self.stopping.set()
                _finish_in_flight(futures.values())
                raise
        finally:
            if own_threads:
                pool.shutdown(wait=False)
        results: Dict[str, Any] = {}
        errors: Dict[str, MgmtError] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except MgmtError as err:
                errors[name] = err
            except Exception as err:
                if not is_connection_error(err):
                    raise
                errors[name] = Lost(name, self._lost_why(name, err))
        return results, errors

    def _lost_why(self, host: str, err: Optional[BaseException] = None) -> str:
        runner = self.runners.get(host)
        why = runner.lost() if runner is not None else None
        if why:  # "lost: no answer to SSH keepalives for N s", as attached runs say it
            return why
        if err is None:  # the command ended without a status
            return "connection lost"
        return "connection lost: " + (str(err) or type(err).__name__)

    def call(self, host: str, command: str, request: Dict[str, Any], timeout=60.0) -> Dict:
        """Run the hosts' program's ``command``; its answer (RemoteError if it failed,
        :class:`Lost` if the connection went)."""
        python = next((spec.python for spec in self.specs if spec.name == host), None)
        line = protocol.sh(DETACHED_RUNNER, DETACHED, python or "", *detached_args(command))
        process = self.runners[host].start(line)
        try:
            process.send(json.dumps(request).encode() + b"\n")
            process.close_stdin()
            stdout = process.stdout.read().decode(errors="replace")
            stderr = process.stderr.read().decode(errors="replace")
            status = process.wait(timeout)
        finally:
            process.close()
        try:
            answer = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            if status == -1 or self.runners[host].lost():  # no status: the connection went
                raise Lost(host, f"{command}: {self._lost_why(host)}") from None
            if status is None:
                raise RemoteError(host, f"{command}: no answer in {timeout:g} s") from None
            why = stderr.strip() or stdout.strip() or f"status {status}"
            raise RemoteError(host, f"{command}: {why}") from None
        if "error" in answer:
            raise RemoteError(host, f"{command}: {answer['error']}")
        return answer

    def copy(self, host: str, source: Path, dest: str, mode: int = 0o700) -> None:
        """``source`` to ``dest`` on the host, atomically, in chunks: abandoned (an
        error) as soon as :attr:`stopping` is set; the host removes what it got."""
        size = source.stat().st_size
        script = " ".join(
            ["/bin/sh", "-c", shlex.quote(UPLOAD.strip()), "mgmt-upload"]
            + [shlex.quote(a) for a in (dest, str(size), f"{mode:o}")]
        )
        process = self.runners[host].start(script)
        try:
            with source.open("rb") as local:
                while True:
                    if self.stopping.is_set():
                        raise RemoteError(host, f"copying to {dest}: abandoned (interrupted)")
                    chunk = local.read(CHUNK)
                    if not chunk:
                        break
                    process.send(chunk)
            process.close_stdin()
            stderr = process.stderr.read().decode(errors="replace").strip()
            status = process.wait(60.0)
        finally:
            process.close()  # mid-copy: the host's sh sees its stdin end, and cleans up
        if status == -1:
            raise Lost(host, f"copying to {dest}: {self._lost_why(host)}")
        if status is None:
            raise RemoteError(host, f"copying to {dest}: no end in 60 s once all was sent")
        if status != 0:
            raise RemoteError(host, f"copying to {dest} failed: {stderr or status}")


def _finish_in_flight(futures) -> None:
    """Let what is under way on the hosts end before the run stops what it started:
    a member or an agent whose start was still on its way would otherwise come up
    after the stop, and stay. Copies are abandoned (they end within a chunk).
    Another ^C stops waiting."""
    under_way = [f for f in futures if not f.cancel() and not f.done()]
    if not under_way:
        return
    try:  # a ^C right after this line is said (as a user may press it) is one again, too
        log.warning("interrupted: letting %d host command(s) under way end first", len(under_way))
        wait(under_way)
    except BaseException:
        log.warning("interrupted again: not waiting; something may be left on the hosts")
