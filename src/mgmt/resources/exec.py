"""The exec kind: run a command when triggered, optionally guarded by ``ifcmd``.

Triggers are the first run, a change in a resource it depends on, each line a
``watchcmd`` prints, and every ``pollint`` seconds. With ``ifcmd``, ``cmd`` runs
only when ``ifcmd`` exits 0 (so ``ifcmd`` is the check and ``cmd`` the fix).
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

from mgmt.resources.base import Field, FieldError, Resource, ResourceError
from mgmt.resources.execwords import MAX_COMMAND, command_argv, split_command
from mgmt.resources.fields import MAX_SECONDS, number_field, shown
from mgmt.resources.filesafe import check_owner_value, is_id

TAIL_CHARS = 400
# Of a command's stdout and stderr, the agent keeps this much of each, the last:
# one that prints without end must not fill its memory.
OUTPUT_KEPT = 64 * 1024
# Seconds a command has between SIGTERM and SIGKILL (on timeout and on stop).
STOP_GRACE = 2.0
# Once a command has ended, seconds its output is still read: a daemon it left
# running (`server &`) may hold its stdout open for ever (see _output_tails).
DRAIN = 0.5


class ExecRes(Resource):
    kind = "exec"
    fields = {
        "cmd": Field(str, required=True, doc="the command that makes the state right"),
        "shell": Field(str, default="", doc="run cmd with this shell (e.g. /bin/sh)"),
        "timeout": number_field(0, MAX_SECONDS, 0, doc="seconds before cmd is killed (0: none)"),
        "watchcmd": Field(
            str, default="", doc="long-running command; each output line (64 KiB at most) triggers"
        ),
        "watchshell": Field(str, default="", doc="shell for watchcmd"),
        "ifcmd": Field(str, default="", doc="run cmd only when this exits 0"),
        "ifshell": Field(str, default="", doc="shell for ifcmd"),
        "pollint": number_field(0, MAX_SECONDS, 0, doc="also trigger every N seconds (0: never)"),
        "state": Field(str, default="", doc="accepted for mgmt compatibility"),
        "user": Field((str, int), doc="run the commands as this user (name or uid; needs root)"),
        "group": Field((str, int), doc="and group (default: the user's own)"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        for key, shell_key in (("cmd", "shell"), ("watchcmd", "watchshell"), ("ifcmd", "ifshell")):
            text = params.get(key) or ""
            if len(text) > MAX_COMMAND:
                message = f"a command of {len(text)} characters is longer than {MAX_COMMAND}"
                raise FieldError(key, message)
            if not params.get(shell_key):
                try:
                    split_command(text)
                except ValueError as err:
                    raise FieldError(key, f"cannot split {shown(text)}: {err}") from None
        if not params["cmd"].strip():
            raise FieldError("cmd", "must not be empty")
        for key in ("user", "group"):
            problem = check_owner_value("owner" if key == "user" else key, params.get(key))
            if problem:
                raise FieldError(key, problem)

    def __init__(self, name: str, params: Mapping[str, Any], meta=None):
        super().__init__(name, params, meta)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.children: List[subprocess.Popen] = []
        self.threads: List[threading.Thread] = []

    # -- watching ---------------------------------------------------------

    def watch(self) -> None:
        if self.params["watchcmd"]:
            self._thread(self._watch_command, "watchcmd")
        if self.params["pollint"]:
            self._thread(self._poll, "pollint")

    def _thread(self, target, what: str) -> None:
        thread = threading.Thread(target=target, name=f"{self!r} {what}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _poll(self) -> None:
        while not self.stop.wait(self.params["pollint"]):
            self.init.event()

    def _watch_command(self) -> None:
        argv = command_argv(self.params["watchcmd"], self.params["watchshell"])
        try:
            proc = self._spawn(
                argv, self._identity(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except ResourceError as err:  # closed before it started, or no such user here
            if not self.stop.is_set():
                self.init.log.error("watchcmd cannot start: %s", err)
            return
        except OSError as err:
            self.init.log.error("watchcmd cannot start: %s", err)
            return
        assert proc.stdout is not None
        # A line, or each OUTPUT_KEPT bytes of one that never ends: a watchcmd that
        # prints without a newline must not fill the agent's memory, and is active.
        for chunk in iter(lambda: proc.stdout.readline(OUTPUT_KEPT), b""):
            if self.stop.is_set():
                break
            # As mgmt: a line with text triggers, an empty one (a heartbeat) does not.
            if chunk not in (b"\n", b"\r\n"):
                self.init.event()
        proc.wait()
        self._forget(proc)
        if not self.stop.is_set():
            ended = how_ended(proc.returncode)
            self.init.log.warning("watchcmd %s; no longer watching", ended)

    # -- processes --------------------------------------------------------

    def _identity(self) -> Dict[str, Any]:
        return run_as(self.params.get("user"), self.params.get("group"), repr(self))

    def _spawn(self, argv: List[str], identity: Dict[str, Any], **kwargs) -> subprocess.Popen:
        # Own process group, so close() can stop a shell and everything it started.
        with self.lock:
            if self.stop.is_set():
                raise ResourceError(repr(self), "stopping")
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs, **identity
            )
            self.children.append(proc)
        return proc

    def _forget(self, proc: subprocess.Popen) -> None:
        with self.lock:
            if proc in self.children:
                self.children.remove(proc)

    def _run(
        self, cmd: str, shell: str, timeout: Optional[int], role: str = ""
    ) -> subprocess.CompletedProcess:
        """Run ``cmd``; ``role`` ("ifcmd ") names it in errors, apart from cmd."""
        identity = self._identity()
        try:
            argv = command_argv(cmd, shell)
            proc = self._spawn(argv, identity, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as err:
            # What could not be run: the shell, when one was given.
            what = role + (f"{shown(cmd)}: its shell {shell}" if shell else shown(cmd))
            raise ResourceError(repr(self), f"cannot run {what}: {err.strerror or err}") from None
        try:
            out, err, held = _output_tails(proc, timeout or None)
        except subprocess.TimeoutExpired:
            _stop_groups([proc])
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            message = f"{role}{shown(cmd)} timed out after {timeout} s"
            raise ResourceError(repr(self), message) from None
        finally:
            self._forget(proc)
        if held:
            self.init.log.info(
                "%s ended; what it left running keeps its output open, not read further",
                shown(cmd),
            )
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def close(self) -> None:
        self.stop.set()
        with self.lock:
            children = list(self.children)
        _stop_groups(children)
        for thread in self.threads:
            thread.join(timeout=2)

    # -- check and apply --------------------------------------------------

    def check_apply(self, apply: bool) -> bool:
        if not apply:  # a user or group this host lacks fails --noop as it would the run
            self._identity()
        ifcmd = self.params["ifcmd"]
        if ifcmd:
            guard = self._run(ifcmd, self.params["ifshell"], self.params["timeout"], "ifcmd ")
            if guard.returncode != 0:
                self.init.log.debug("ifcmd exited %s: nothing to do", guard.returncode)
                return True
        cmd = self.params["cmd"]
        # What --json lists (and --noop names): the command; a command has no value
        # found (``actual``), whatever its ifcmd said.
        self.note("cmd", cmd, None)
        if not apply:
            self.init.log.info("would run %r (noop)", cmd)
            return False
        result = self._run(cmd, self.params["shell"], self.params["timeout"])
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            self.init.log.debug("| %s", line)
        if result.returncode != 0:
            tail = result.stderr.decode("utf-8", "replace").strip()[-TAIL_CHARS:]
            said = f": {tail}" if tail else " (nothing on stderr)"
            raise ResourceError(repr(self), f"{shown(cmd)} {how_ended(result.returncode)}{said}")
        self.init.log.info("ran %r", cmd)
        return False


def how_ended(code: int) -> str:
    """``exited 3``, or for a command a signal ended (Popen's -9), ``was killed by
    signal 9 (SIGKILL)``: "exited -9" read as an exit status no command returns."""
    if code >= 0:
        return f"exited {code}"
    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:  # a real-time signal has no name
        name = ""
    return f"was killed by signal {-code}{name}"


def run_as(user: Any, group: Any, who: str) -> Dict[str, Any]:
    """Popen's arguments to run a command as ``user`` and ``group`` (mgmt's exec
    fields), looked up now (a user made earlier in the run is found); {} for the
    agent's own. The group defaults to the user's, with the user's other groups,
    as login and sudo give them (mgmt kept the agent's: root's group for a
    command run as nobody). ResourceError for a name this host lacks, or when
    the agent, not root, cannot change who it is."""
    if user is None and group is None:
        return {}
    import grp
    import pwd

    uid, gid, name = os.getuid(), os.getgid(), None
    try:
        if user is not None:
            entry = pwd.getpwuid(int(user)) if _numeric(user) else pwd.getpwnam(user)
            uid, gid, name = entry.pw_uid, entry.pw_gid, entry.pw_name
    except KeyError:
        if not _numeric(user):
            raise ResourceError(who, f"user: no user named {user!r} on this host") from None
        if group is None:  # no entry, so no group of its own: never root's by default
            message = f"user: uid {user} has no entry on this host: give its group too"
            raise ResourceError(who, message) from None
        uid = int(user)
    try:
        if group is not None:
            gid = int(group) if _numeric(group) else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ResourceError(who, f"group: no group named {group!r} on this host") from None
    groups = os.getgrouplist(name, gid) if name is not None else [gid]
    if (uid, gid) != (os.getuid(), os.getgid()) and os.geteuid() != 0:
        raise ResourceError(who, "user and group: the agent runs as another user, not root")
    if sys.version_info >= (3, 9):  # noqa: UP036 - set in the child by C code (threads)
        return {"user": uid, "group": gid, "extra_groups": groups}

    def become() -> None:  # Python 3.6 to 3.8: in the child, before exec
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)

    return {"preexec_fn": become}


def _numeric(value: Any) -> bool:
    return isinstance(value, int) or is_id(value)


def _stop_groups(procs: List[subprocess.Popen], grace: float = STOP_GRACE) -> None:
    """SIGTERM each process group, then SIGKILL the groups whose leader is still up after ``grace``.

    Without the SIGKILL a command that ignores SIGTERM (``trap '' TERM``) would
    block its worker forever and outlive the agent. A leader that ended but is
    not reaped yet still holds its group's id: that group is signalled too (a
    watchcmd's ``sh -c 'watcher &'``, whose shell ended at once). So is one
    whose leader ended at the SIGTERM while others of it ignore it (a shell's
    ``sh -c "trap '' TERM; ..." &``): they outlived a timeout and the agent.
    """
    running = [proc for proc in procs if proc.returncode is None]
    for proc in running:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # Not reaped yet, so the group id cannot have been reused.
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
            continue
        # The leader is reaped: while a member is left, the group keeps its id
        # (Linux reuses no id a group still holds), so it is that group's still.
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(proc.pid):
            _signal_group(proc, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _output_tails(proc: subprocess.Popen, timeout: Optional[float]) -> Tuple[bytes, bytes, bool]:
    """The last OUTPUT_KEPT bytes of ``proc``'s stdout and stderr once both closed
    and it ended (communicate() would keep all of them), and whether a process it
    left running still held them DRAIN seconds after it ended (they are closed
    then, as Go's WaitDelay does: the command is done, its daemon runs on);
    TimeoutExpired past ``timeout`` seconds."""
    import selectors  # only when a command runs: not at every agent's start

    kept = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    deadline = None if timeout is None else time.monotonic() + timeout
    ended: Optional[float] = None  # when proc was seen ended with its pipes still open

    def left() -> Optional[float]:
        if deadline is None:
            return None
        if deadline <= time.monotonic():
            raise subprocess.TimeoutExpired(proc.args, timeout)  # type: ignore[arg-type]
        return deadline - time.monotonic()

    def wait() -> Optional[float]:
        # How long to wait for output: until proc is seen ended (looked at every
        # DRAIN / 5 s, only while it prints nothing), then what DRAIN has left.
        if ended is not None:  # it ended in time: the drain is no timeout of its own
            return ended + DRAIN - time.monotonic()
        rest = left()
        return DRAIN / 5 if rest is None else min(DRAIN / 5, rest)

    with selectors.DefaultSelector() as selector:
        for pipe in kept:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            if ended is None and proc.poll() is not None:
                ended = time.monotonic()
            if ended is not None and time.monotonic() - ended >= DRAIN:
                break
            for key, _ in selector.select(max(0.0, wait())):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer = kept[key.fileobj]
                buffer += chunk
                if len(buffer) > 2 * OUTPUT_KEPT:  # cut now and then, not at every read
                    del buffer[:-OUTPUT_KEPT]
        held = bool(selector.get_map())
    for pipe in kept:
        pipe.close()
    if ended is None:  # its output closed, it may still run: within its time
        proc.wait(left())
    out, err = (bytes(kept[pipe][-OUTPUT_KEPT:]) for pipe in (proc.stdout, proc.stderr))
    return out, err, held
