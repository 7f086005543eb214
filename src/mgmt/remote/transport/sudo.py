"""Running the agent as root (or another user) through sudo, whatever sudo's prompt says.

The command becomes ``sudo -H -S -p PROMPT -u USER -- /bin/sh -c 'printf OK >&2
COMMAND'``, where PROMPT and OK carry a token made fresh for each run
(:func:`new_token`). The exchange with sudo is then read off the command's
stderr without knowing any of sudo's own texts (they change: sudo-rs, locales,
``passprompt``):

- PROMPT seen: sudo wants a password. The password is written to its stdin,
  once; never on a command line, in the environment or in a file. A second
  PROMPT means it was wrong. PROMPT with no password to give is an error too.
  PROMPT carries sudo's ``%p``, whose password it asks for: the login's, or
  root's (or the target's) under ``targetpw``, ``rootpw`` or ``runaspw``,
  which the errors name instead of the login. One host of the run tries the
  password before the others are given it (:mod:`password_gate`): a wrong one
  is tried once, not once per host, against a directory that counts failures.
- OK seen: sudo let us in; the streams from here on are the command's.
- The stream ends first: sudo refused. If it refused before asking anything,
  sudoers may demand a tty (``Defaults requiretty``): the command is started
  again once with a pty (and the pty is kept for that host's later commands).
  A pty is never asked for otherwise: it merges stderr into stdout. Under a
  pty the terminal is put in raw mode, without echo, on both sides of sudo
  (sudo may run the command in a pty of its own), so that bytes (the bundle)
  and long lines (graphs) pass unchanged. A pty never delivers the end of
  stdin: commands under it read a known length (uploads, START's bundle), and
  START's guard learns that the initiator went from the hangup instead.
- Nothing of that within SUDO_TIMEOUT (a PAM module asking its own question,
  which sudo shows instead of our prompt; a directory service that hangs):
  the command is closed and the host fails, saying what sudo said last.

Errors are one line naming the host (a RemoteError); the other hosts go on.
Runs on the initiator, and on a secondary (the OpenSSH runner): Python 3.6.
"""

import binascii
import os
import re
import shlex
import threading
from typing import BinaryIO, Callable, List, Optional, Tuple

from mgmt.errors import RemoteError
from mgmt.remote.transport.password_gate import (
    RIGHT,
    TRYING,
    UNTRIED,
    WRONG,
    PasswordGate,
    PasswordGates,
)
from mgmt.remote.transport.runner import Become, Process, refused_by_login_shell

WRONG_PASSWORD = "sudo: wrong password for {login} (asked again after the one given)"
NOT_TRIED = (
    "sudo: the password given is wrong for {login} (refused on {other}); not tried here,"
    " so that a directory account is not locked out"
)
# Added when sudo asked for another user's password than the login's.
NOT_THE_LOGINS = "; sudoers asks for {whose}'s password, not {login}'s (targetpw, rootpw, runaspw)"
NEEDS_PASSWORD = "sudo asks for {login}'s password and none was given (--ask-sudo-password)"
REFUSED = "sudo refused to run commands as {user} for {login}: {why}"
NO_SUDO = "sudo is not installed (or not on the login's PATH)"
SILENT = "sudo did not let the command start within {seconds:.0f} s; it said: {said}"
SUDO_TIMEOUT = 60.0
# What is kept of sudo's words while waiting (the end, for the error line).
MAX_CHATTER = 64 * 1024
MAX_LINE = 300  # of them, in the error line
NOT_FOUND = 127


def new_token() -> str:
    """A token nobody can guess, made once per run and shared by its hosts."""
    return "mgmt-sudo-" + binascii.hexlify(os.urandom(8)).decode("ascii")


class Sudo(Become):
    """``sudo -u user`` for one host; ``password`` None when none was given."""

    def __init__(
        self,
        host: str,
        login: Optional[str],
        user: str = "root",
        password: Optional[str] = None,
        token: Optional[str] = None,
        timeout: float = SUDO_TIMEOUT,
        gates: Optional[PasswordGates] = None,
    ):
        self.host = host
        self.timeout = timeout
        self.login = login or "the login user"
        self.user = user or "root"
        self._password = password
        # The run's, shared by its hosts (a host alone: its own).
        self.gates = gates if gates is not None else PasswordGates()
        token = token or new_token()
        self.token = token
        # What sudo prints, %p expanded: the user whose password it wants.
        self.prompt = token + ":%p:"
        self._asks = re.compile(re.escape(token.encode()) + rb":([^:\r\n]{0,256}):\Z")
        self.ok = token + "-ok"
        self.pty = False  # learnt: this host's sudoers wants a tty
        self.shown = f"sudo -H -u {self.user} -- "

    def __repr__(self) -> str:  # never the password
        return f"Sudo(host={self.host!r}, user={self.user!r}, pty={self.pty!r})"

    def command(self, command: str, pty: bool) -> str:
        """The command line run by the login user's shell."""
        raw = "stty raw -echo 2>/dev/null; " if pty else ""
        inner = self.script(command, pty)
        sudo = ["sudo", "-H"] + ([] if pty else ["-S"])
        sudo += ["-p", self.prompt, "-u", self.user, "--", "/bin/sh", "-c", inner]
        return raw + "exec " + " ".join(shlex.quote(word) for word in sudo)

    def script(self, command: str, pty: bool) -> str:
        """What sudo runs with /bin/sh -c: the OK mark, then the command.

        The mark is put together by printf ('%s-ok' and the token), never
        written out whole here: sudo quotes the command it refuses ("Sorry,
        user alice is not allowed to execute '/bin/sh -c ...'"), and a mark
        found in that quote read as sudo letting the command in."""
        raw = "stty raw -echo 2>/dev/null; " if pty else ""
        # The command is shell (as for the login's shell): its own line of the script.
        return f"{raw}printf '%s-ok\\n' {self.token} >&2 || exit 125\n{command}"

    def start(self, start_raw: Callable[[str, bool], Process], command: str) -> Process:
        if not self.pty:
            process = start_raw(self.command(command, False), False)
            asked, why = self._exchange(process, process.stderr, self.script(command, False))
            if why is None:
                return process
            status = process.wait(10)
            process.close()
            if asked or status == NOT_FOUND:
                raise self._refused(why, status)
            self.pty = True  # refused before asking: requiretty, most likely
        process = start_raw(self.command(command, True), True)
        asked, why = self._exchange(process, process.stdout, self.script(command, True))
        if why is None:
            return process
        status = process.wait(10)
        process.close()
        raise self._refused(why, status)

    def _refused(self, why: str, status: Optional[int]) -> RemoteError:
        if status == NOT_FOUND:
            return RemoteError(self.host, NO_SUDO)
        shell = refused_by_login_shell(why, status)
        if shell is not None:  # sudo never ran
            return RemoteError(self.host, f"{shell}: {why or f'status {status}'}")
        why = why or f"status {status}"
        return RemoteError(self.host, REFUSED.format(user=self.user, login=self.login, why=why))

    def _exchange(
        self, process: Process, stream: BinaryIO, script: str
    ) -> Tuple[bool, Optional[str]]:
        """Answer sudo until the command runs: (whether sudo asked, None) then,
        or (asked, sudo's last line) when sudo ended first. Wrong or missing
        passwords raise at once. ``script`` (what sudo was asked to run) is
        left out of sudo's words: START is hundreds of lines."""
        silent = threading.Event()

        def give_up() -> None:
            silent.set()
            process.close()  # the read below ends

        watchdog = threading.Timer(self.timeout, give_up)
        watchdog.daemon = True
        watchdog.start()
        try:
            return self._answer(process, stream, silent, script)
        finally:
            watchdog.cancel()

    def _answer(
        self, process: Process, stream: BinaryIO, silent: threading.Event, script: str
    ) -> Tuple[bool, Optional[str]]:
        trying: List[PasswordGate] = []  # the gate whose password this host tries first
        try:
            return self._read(process, stream, silent, script, trying)
        finally:
            for gate in trying:  # ended without a verdict: the next host tries it
                gate.settle(UNTRIED, self.host)

    def _read(
        self,
        process: Process,
        stream: BinaryIO,
        silent: threading.Event,
        script: str,
        trying: List[PasswordGate],
    ) -> Tuple[bool, Optional[str]]:
        ok = self.ok.encode()
        seen = b""
        asked = False
        while True:
            try:
                byte = stream.read(1)
            except (OSError, ValueError):  # closed under us by the watchdog
                byte = b""
            if not byte:
                if silent.is_set():
                    said = _last_lines(seen, script) or "nothing"
                    raise RemoteError(self.host, SILENT.format(seconds=self.timeout, said=said))
                return asked, _last_lines(seen, script)
            seen += byte
            prompt = self._asks.search(seen[-len(self.prompt) - 256 :]) if byte == b":" else None
            if prompt:
                seen = seen[: -len(prompt.group(0))]
                whose = self._whose(prompt.group(1))
                if asked:
                    process.close()
                    for gate in trying:
                        gate.settle(WRONG, self.host)
                    raise RemoteError(self.host, self._wrong(prompt.group(1)))
                if self._password is None:
                    process.close()
                    raise RemoteError(self.host, NEEDS_PASSWORD.format(login=whose))
                gate = self.gates.for_user(whose)

                def give_up() -> bool:  # this host's deadline, or its sudo gone
                    return silent.is_set() or process.wait(0) is not None

                state = gate.take(self.host, give_up)
                if state == WRONG:
                    process.close()
                    other = gate.wrong_on
                    raise RemoteError(self.host, NOT_TRIED.format(login=whose, other=other))
                if state is None:  # gave up waiting: as if sudo had ended after asking
                    process.close()
                    asked = True  # (no second try with a pty)
                    continue
                if state == TRYING:
                    trying.append(gate)
                asked = True
                process.send(self._password.encode("utf-8") + b"\n")
            elif seen.endswith(ok):
                _rest_of_line(stream)
                for gate in trying:
                    gate.settle(RIGHT, self.host)
                return asked, None
            elif len(seen) > MAX_CHATTER:
                seen = seen[-len(self.prompt) - 256 :]

    def _whose(self, name: bytes) -> str:
        """The user sudo asked the password of (%p), the login if it did not say."""
        whose = name.decode("utf-8", "replace")
        return self.login if whose in ("", "%p") else whose

    def _wrong(self, name: bytes) -> str:
        whose = self._whose(name)
        wrong = WRONG_PASSWORD.format(login=whose)
        if whose != self.login and self.login != "the login user":
            wrong += NOT_THE_LOGINS.format(whose=whose, login=self.login)
        return wrong


def _rest_of_line(stream: BinaryIO) -> None:
    byte = b""
    while byte != b"\n":
        byte = stream.read(1)
        if not byte:
            return


def _last_lines(seen: bytes, script: str = "", keep: int = 3) -> str:
    """sudo's last words, one line: its reason is often not its last line
    ("sudo: unknown user bob" comes before an audit plugin's complaint).
    The script sudo quotes when it refuses a command is shown as "...", and a
    line is cut short all the same (a sudo that quotes it otherwise)."""
    text = seen.decode("utf-8", "replace")
    if script:
        text = text.replace(script, "...")
    lines = [line.strip() for line in text.splitlines()]
    lines = [_shortened(line) for line in lines if line][-keep:]
    return "; ".join(lines)


def _shortened(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."
