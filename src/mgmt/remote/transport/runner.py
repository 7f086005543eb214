"""The runner interface every transport implements, and the ``become`` seam.

Orchestration (mgmt.remote.orchestration) talks to hosts only through this:
it never sees a paramiko object, so a runner on the system's OpenSSH client
(``ssh -o ControlMaster``) can stand in where paramiko is not installed.
"""

import abc
import re
from typing import BinaryIO, Callable, NamedTuple, Optional, Tuple

from mgmt.remote.transport.same_host import Endpoint, Login

Address = Tuple[str, int]
# Once the run stops, a host gets this long to answer before it is reported lost
# (every runner's hurry()), whatever --lost-timeout says.
HURRY_SECONDS = 3.0


class CommandResult(NamedTuple):
    status: int
    stdout: str
    stderr: str


class Become:
    """Running commands as another user. This one is "as the login user": nothing.

    A runner hands every command to :meth:`start` together with its own
    ``start_raw(command, pty)``, which runs a command line as the login user
    (with a pty when asked). :class:`mgmt.remote.transport.sudo.Sudo` wraps the
    command in sudo, answers sudo's password prompt on stdin and falls back to
    a pty only where sudoers demands one (``requiretty``); what it returns is
    the command's Process, its streams past sudo's own exchange.
    """

    # What the "Running:" log line shows before the agent's command ("sudo -u root -- ").
    shown = ""
    # The command runs under a pty: no end of stdin, a hangup when closed.
    pty = False

    def start(self, start_raw: "Callable[[str, bool], Process]", command: str) -> "Process":
        return start_raw(command, False)


class Process(abc.ABC):
    """A command running on a host: its stdin, its output streams, its end."""

    stdout: BinaryIO
    stderr: BinaryIO

    @abc.abstractmethod
    def send(self, data: bytes) -> None:
        """Write to its stdin (OSError, EOFError if it is gone)."""

    @abc.abstractmethod
    def close_stdin(self) -> None: ...

    @abc.abstractmethod
    def wait(self, timeout: Optional[float]) -> Optional[int]:
        """Its exit status once it ended within ``timeout`` (None: still running);
        -1 when it ended without one (the connection went)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Tunnel(abc.ABC):
    """A loopback port on the host whose connections lead to ``target()`` here."""

    port: Optional[int]

    @abc.abstractmethod
    def open(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class Runner(abc.ABC):
    """One host's connection: runs commands there, for the life of a session.

    ``lost()`` says why the host is considered gone (no answer to keepalives
    within the run's --lost-timeout), or None; once lost, every call fails
    with OSError and :meth:`Process.wait` returns -1.
    """

    host: str
    become: Become

    @abc.abstractmethod
    def start(self, command: str) -> Process:
        """Start ``command`` (through :attr:`become`) with its stdin, stdout and stderr."""

    def run(self, command: str, stdin: bytes = b"", timeout: float = 60.0) -> CommandResult:
        """Run a short command to its end and collect its output."""
        process = self.start(command)
        try:
            if stdin:
                process.send(stdin)
            process.close_stdin()
            stdout = process.stdout.read()
            stderr = process.stderr.read()
            status = process.wait(timeout)
        finally:
            process.close()
        return CommandResult(
            -1 if status is None else status,
            stdout.decode(errors="replace"),
            stderr.decode(errors="replace"),
        )

    @abc.abstractmethod
    def tunnel(self, target: Callable[[], Address]) -> Tunnel:
        """A reverse tunnel (not yet open) to ``target()``, asked per connection."""

    @abc.abstractmethod
    def lost(self) -> Optional[str]: ...

    def endpoint(self) -> Optional[Endpoint]:
        """The address and port the connection reached, to tell one host under two
        names; None where it cannot be told."""
        return None

    def login(self) -> Optional[Login]:
        """The user logged in as, at :meth:`endpoint`; None where it cannot be told."""
        return None

    @abc.abstractmethod
    def hurry(self) -> None:
        """The run is stopping: find out soon (seconds) whether the host still answers."""

    @abc.abstractmethod
    def close(self) -> None: ...


# nologin's words (util-linux and shadow alike): the login's shell ran nothing.
NOLOGIN = "This account is currently not available"
RESTRICTED = re.compile(r"\brbash: [^\n;]*restricted")  # bash -r's words


def is_connection_error(err: BaseException) -> bool:
    """Whether ``err`` says the connection went (an OS error, an end of file, or
    paramiko's SSHException, told by name: the OpenSSH transport has no paramiko)."""
    if isinstance(err, (EOFError, OSError)):
        return True
    return any(cls.__name__ == "SSHException" for cls in type(err).__mro__)


def refused_by_login_shell(output: str, status: Optional[int]) -> Optional[str]:
    """Why a command's failure is the login's shell refusing to run it, or None:
    nologin says so; /bin/false exits 1 without a word; rbash says "restricted" of
    what it refuses (a command named with a /, a redirection, exec)."""
    if NOLOGIN in output or (status == 1 and not output.strip()):
        return "the login's shell ran nothing (is it nologin or /bin/false?)"
    if RESTRICTED.search(output):
        return "the login's shell is restricted (rbash) and refused the command"
    return None


# Runner.upload: the file comes on stdin; a partial copy is never renamed into
# place and is removed whatever ends the session (the host-side guard).
UPLOAD = r"""
set -u
dest=$1 size=$2 mode=$3
umask 077
part="${dest%/*}/.${dest##*/}.$$"
trap 'rm -f -- "$part"' EXIT
trap 'exit 1' HUP INT TERM PIPE
head -c "$size" > "$part" || exit 1
got=$(wc -c < "$part")
[ "$got" -eq "$size" ] || { echo "interrupted after $got of $size bytes" >&2; exit 1; }
chmod "$mode" "$part" && mv -f -- "$part" "$dest" || exit 1
trap - EXIT
"""


def upload(runner: Runner, data: bytes, dest: str, mode: int = 0o600) -> None:
    """Write ``data`` to ``dest`` on the host, atomically (OSError naming the file)."""
    import shlex

    script = " ".join(
        ["/bin/sh", "-c", shlex.quote(UPLOAD.strip()), "mgmt-upload"]
        + [shlex.quote(a) for a in (dest, str(len(data)), f"{mode:o}")]
    )
    done = runner.run(script, stdin=data)
    if done.status != 0:
        raise OSError(f"copying to {dest} failed: {done.stderr.strip() or done.status}")
