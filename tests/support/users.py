"""Throw-away login users with sudo rights of a given kind, for the sudo tests and bench.

A user is made with ``useradd`` (on this machine: the hosts share its
/etc/passwd), given a password, the test initiator's key in
``~/.ssh/authorized_keys`` (the hosts' sshd reads ``.ssh/authorized_keys`` too,
see support.sshd) and one sudoers drop-in in /etc/sudoers.d:

- ``nopasswd``: ``USER ALL=(ALL) NOPASSWD: ALL``
- ``exact``: ``USER ALL=(root) NOPASSWD: /bin/sh`` (the README's narrowest rule)
- ``password``: ``USER ALL=(ALL) ALL`` (sudo asks for the user's password)
- ``requiretty``: as ``password``, plus ``Defaults:USER requiretty``
- ``none``: no rule at all (not in sudoers)
- ``some``: ``USER ALL=(root) /usr/bin/id`` (sudo asks, then refuses anything else)
- ``securepath``: as ``nopasswd``, with RHEL's ``secure_path`` (no /usr/local/bin)
- ``targetpw``: as ``password``, plus ``Defaults:USER targetpw`` (sudo asks for the
  password of the user the command runs as: SUSE's default)

Every drop-in sets ``timestamp_timeout=0`` for its user, so that no cached
sudo credential makes a later test pass without asking. Names are
``mgmt-t-<random>``; :func:`sudo_users` removes users, homes and drop-ins
on exit, whatever happened, and the drop-in is checked with ``visudo -c``
before it is put in place (a broken sudoers would lock this machine's sudo).
A process killed outright (SIGKILL, SIGTERM) runs no clean-up: each drop-in
names the pid that made it, and the next :func:`sudo_users` removes the users
of processes that are gone (as support.netns reaps namespaces).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Mapping, Sequence, Union

SUDOERS_D = Path("/etc/sudoers.d")
KINDS = ("nopasswd", "exact", "password", "requiretty", "none", "some", "targetpw", "securepath")


@dataclass(frozen=True)
class User:
    name: str
    kind: str
    password: str
    home: Path

    @property
    def sudoers(self) -> Path:
        return SUDOERS_D / self.name


OWNER_MARK = "# mgmt test user, made by pid "


def _rules(name: str, kind: str) -> str:
    lines = [f"{OWNER_MARK}{os.getpid()}", f"Defaults:{name} timestamp_timeout=0"]
    if kind == "nopasswd":
        lines.append(f"{name} ALL=(ALL) NOPASSWD: ALL")
    elif kind == "exact":
        lines.append(f"{name} ALL=(root) NOPASSWD: /bin/sh")
    elif kind == "password":
        lines.append(f"{name} ALL=(ALL) ALL")
    elif kind == "requiretty":
        lines += [f"Defaults:{name} requiretty", f"{name} ALL=(ALL) ALL"]
    elif kind == "securepath":
        path = "/sbin:/bin:/usr/sbin:/usr/bin"
        lines += [f'Defaults:{name} secure_path="{path}"', f"{name} ALL=(ALL) NOPASSWD: ALL"]
    elif kind == "targetpw":
        lines += [f"Defaults:{name} targetpw", f"{name} ALL=(ALL) ALL"]
    elif kind == "some":
        lines.append(f"{name} ALL=(root) /usr/bin/id")
    elif kind != "none":
        raise ValueError(f"unknown sudo kind {kind!r} (known: {', '.join(KINDS)})")
    return "\n".join(lines) + "\n"


def _install_sudoers(user: User) -> None:
    temp = SUDOERS_D / f".{user.name}.new"  # sudo skips names with a dot
    temp.write_text(_rules(user.name, user.kind))
    temp.chmod(0o440)
    check = subprocess.run(["visudo", "-cqf", str(temp)], capture_output=True, text=True)
    if check.returncode != 0:
        temp.unlink()
        raise RuntimeError(f"sudoers drop-in for {user.name} refused: {check.stderr.strip()}")
    temp.rename(user.sudoers)


def make_user(kind: str, public_key: Path, realm: str = "") -> User:
    """``realm``: a domain login's name (``mgmt-t-...@REALM``, as SSSD's fully
    qualified names); no dot in it, which would make sudo skip the drop-in."""
    if "." in realm:
        raise ValueError(f"realm {realm!r}: sudo skips drop-ins whose name has a dot")
    name = "mgmt-t-" + secrets.token_hex(4) + (f"@{realm}" if realm else "")
    password = "pw-" + secrets.token_hex(8)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    user = User(name, kind, password, Path("/home") / name)
    try:
        subprocess.run(
            ["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True
        )
        ssh = user.home / ".ssh"
        ssh.mkdir(mode=0o700)
        shutil.copy(public_key, ssh / "authorized_keys")
        (ssh / "authorized_keys").chmod(0o600)
        subprocess.run(["chown", "-R", f"{name}:{name}", str(ssh)], check=True)
        _install_sudoers(user)  # "none" too: its timestamp_timeout, and no rule
    except BaseException:
        remove_user(user)
        raise
    return user


def remove_user(user: User) -> None:
    """The drop-in first (a stale rule must never outlive its user), then the user."""
    with contextlib.suppress(FileNotFoundError):
        user.sudoers.unlink()
    with contextlib.suppress(FileNotFoundError):
        (SUDOERS_D / f".{user.name}.new").unlink()
    # -f: also while a process of the user still runs (a test that failed midway).
    subprocess.run(["userdel", "-f", "-r", user.name], capture_output=True, check=False)
    if user.home.exists():
        shutil.rmtree(user.home, ignore_errors=True)
    subprocess.run(["rm", "-rf", f"/run/sudo/ts/{user.name}"], check=False)


def reap_stale() -> None:
    """Remove the test users whose making process is gone."""
    for drop_in in SUDOERS_D.glob("mgmt-t-*"):
        try:
            first = drop_in.read_text().splitlines()[0]
        except (OSError, IndexError):
            continue
        if not first.startswith(OWNER_MARK):
            continue
        pid = int(first[len(OWNER_MARK) :])
        if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
            remove_user(User(drop_in.name, "", "", Path("/home") / drop_in.name))


@contextlib.contextmanager
def sudo_users(
    kinds: Union[Sequence[str], Mapping[str, str]], public_key: Path, realm: str = ""
) -> Iterator[Dict[str, User]]:
    """kind (or a key, given a mapping key -> kind) -> a fresh user; all removed on exit
    (``realm``: see :func:`make_user`)."""
    if os.geteuid() != 0:
        raise PermissionError("making users needs root")
    wanted = dict(kinds) if isinstance(kinds, Mapping) else {kind: kind for kind in kinds}
    reap_stale()
    made: Dict[str, User] = {}
    try:
        for key, kind in wanted.items():
            made[key] = make_user(kind, public_key, realm)
        yield made
    finally:
        for user in made.values():
            remove_user(user)


@contextlib.contextmanager
def other_user(public_key: Path) -> Iterator[User]:
    """A plain user (no sudo rights) to run the agent as with --sudo-user."""
    with sudo_users(["none"], public_key) as made:
        yield made["none"]
