"""The run's sudo password, tried by one host before the others use it.

``--ask-sudo-password`` gives one password to every host of a run. A login
from a directory (FreeIPA, Active Directory through SSSD) is one account on all
of them, and the directory counts failed attempts across hosts: a typo tried
at once on 30 hosts is 30 failures, and the account is locked (IPA locks after
6 by default, AD after what its policy says). So the first host that sudo asks
tries the password alone; the others wait for what its sudo said. Right: they
all use it, at once. Wrong: none of them tries it, each failing in one line
that names the host where it was refused. No answer (that host's sudo ended
otherwise, its connection went): the next host waiting tries it.

A run keeps its gates (:class:`PasswordGates`), one per user whose password
sudo asks for (its ``%p``); a secondary keeps its own for the hosts below it,
and takes its level's gate as one host would (mgmt.remote.hierarchy): it is
given the password only to try it first, or once it is known right; what its
gate settled goes upward (``on_settle``), so a typo is tried once per run,
not once per secondary.
Runs on the initiator and on secondaries: Python 3.6.
"""

import threading
from typing import Callable, Dict, Optional

# (user, verdict, host where it was tried): a gate settled RIGHT or WRONG.
OnSettle = Callable[[str, str, str], None]

UNTRIED, TRYING, RIGHT, WRONG = "untried", "trying", "right", "wrong"
# How often a waiting host looks whether it should give up (its own deadline,
# its connection gone): waiting costs nothing but this.
POLL = 0.2


class PasswordGate:
    """Whether the run's password is right for one user, as the first host found."""

    def __init__(self, user: str = "", on_settle: Optional[OnSettle] = None) -> None:
        self._cond = threading.Condition()
        self.state = UNTRIED
        self.wrong_on: Optional[str] = None  # the host whose sudo refused it
        self.user = user
        self.on_settle = on_settle

    def take(self, host: str, give_up: Callable[[], bool]) -> Optional[str]:
        """RIGHT: send the password. TRYING: send it, ``host`` tries it first and
        :meth:`settle` says what its sudo said. WRONG: refused on another host
        (``wrong_on``): do not send it. None: ``give_up()`` said to stop waiting."""
        with self._cond:
            while True:
                if self.state in (RIGHT, WRONG):
                    return self.state
                if self.state == UNTRIED:
                    self.state = TRYING
                    return TRYING
                if give_up():
                    return None
                self._cond.wait(POLL)

    def settle(self, verdict: str, host: str) -> None:
        """The trying host's sudo said RIGHT or WRONG; UNTRIED: it said neither."""
        with self._cond:
            if self.state != TRYING:
                return
            self.state = verdict
            if verdict == WRONG:
                self.wrong_on = host
            self._cond.notify_all()
        if verdict != UNTRIED and self.on_settle is not None:
            self.on_settle(self.user, verdict, host)

    def preset(self, verdict: str, host: Optional[str]) -> None:
        """What the level above already knows (RIGHT, or WRONG on ``host``): no
        host here tries the password first."""
        with self._cond:
            self.state = verdict
            self.wrong_on = host if verdict == WRONG else None
            self._cond.notify_all()


class PasswordGates:
    """A run's gates, one per user whose password sudo asks for (its ``%p``): the
    run makes one and gives it to the Sudo of each of its hosts."""

    def __init__(self, on_settle: Optional[OnSettle] = None) -> None:
        self._gates: Dict[str, PasswordGate] = {}
        self._lock = threading.Lock()
        self.on_settle = on_settle  # a secondary's: the verdict goes upward

    def for_user(self, whose: str) -> PasswordGate:
        with self._lock:
            gate = self._gates.get(whose)
            if gate is None:
                gate = self._gates[whose] = PasswordGate(whose, self.on_settle)
            return gate
