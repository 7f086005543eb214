"""The sudo exchange on its own: what Sudo does with each thing a sudo may say.

The real sudo (NOPASSWD, password, requiretty, refused) is met in test_sudo.py;
here a local shell stands in for the host, so that what no sudoers on a test
host makes sudo do (a PAM module asking its own question) is covered too.
Each stand-in is started the way a runner starts a command (``start_raw``),
as a real process with pipes.
"""

from __future__ import annotations

import shlex
from typing import List

import pytest

from mgmt.errors import RemoteError
from mgmt.remote.transport.openssh import SshProcess
from mgmt.remote.transport.sudo import (
    NEEDS_PASSWORD,
    NOT_THE_LOGINS,
    SILENT,
    WRONG_PASSWORD,
    Sudo,
)

TOKEN = "mgmt-sudo-0123456789abcdef"


def stand_in(script: str, started: List[str]):
    """start_raw for a host whose "sudo" is ``script`` (sh; $P the prompt, $OK the mark)."""

    def start_raw(command: str, pty: bool) -> SshProcess:
        started.append(command)
        # As over SSH: a pty merges stderr into stdout; the process is the only
        # holder of its pipes (exec), so ending it ends them.
        merge = "exec 2>&1\n" if pty else ""
        body = f"{merge}P='{TOKEN}:alice:'; OK='{TOKEN}-ok'\n{script}"
        return SshProcess(["sh", "-c", body])

    return start_raw


def test_the_password_is_written_once_when_asked_and_the_command_output_follows():
    started: List[str] = []
    script = (
        'printf "%s" "$P" >&2; IFS= read -r pw; [ "$pw" = s3cret ] || exit 1\n'
        'printf "%s\\n" "$OK" >&2; echo "command output"; cat'
    )
    sudo = Sudo("h", "alice", password="s3cret", token=TOKEN)
    process = sudo.start(stand_in(script, started), "true")
    process.send(b"after sudo\n")
    process.close_stdin()
    assert process.stdout.read() == b"command output\nafter sudo\n"
    assert process.wait(10) == 0
    assert len(started) == 1 and "s3cret" not in started[0]  # not on the command line
    assert f"-p {TOKEN}:" in started[0] and "-S" in started[0].split()


def test_a_second_prompt_is_a_wrong_password():
    script = (
        'printf "%s" "$P" >&2; read -r pw; printf "Sorry, try again.\\n%s" "$P" >&2; exec sleep 60'
    )
    sudo = Sudo("h", "alice", password="wrong", token=TOKEN)
    with pytest.raises(RemoteError) as caught:
        sudo.start(stand_in(script, []), "true")
    assert str(caught.value) == "h: " + WRONG_PASSWORD.format(login="alice")


def test_a_prompt_without_a_password_to_give_is_said_so():
    sudo = Sudo("h", "alice", token=TOKEN)
    with pytest.raises(RemoteError) as caught:
        sudo.start(stand_in('printf "%s" "$P" >&2; exec sleep 60', []), "true")
    assert str(caught.value) == "h: " + NEEDS_PASSWORD.format(login="alice")


def test_a_refusal_before_asking_is_tried_again_once_with_a_pty():
    started: List[str] = []
    script = 'echo "sudo: sorry, you must have a tty to run sudo" >&2; exit 1'
    sudo = Sudo("h", "alice", token=TOKEN)
    with pytest.raises(RemoteError, match="you must have a tty"):
        sudo.start(stand_in(script, started), "true")
    assert len(started) == 2 and sudo.pty
    assert "stty raw -echo" in started[1] and "-S" not in started[1].split()


def test_a_question_that_is_not_ours_ends_after_the_timeout_naming_it():
    script = 'printf "Enter your one-time code: " >&2; exec sleep 60'
    sudo = Sudo("h", "alice", password="s3cret", token=TOKEN, timeout=0.5)
    with pytest.raises(RemoteError) as caught:
        sudo.start(stand_in(script, []), "true")
    said = "Enter your one-time code:"
    assert str(caught.value) == "h: " + SILENT.format(seconds=0.5, said=said)


def test_a_refusal_quoting_the_command_is_not_taken_for_the_command_starting():
    """sudo quotes what it refuses to run ("Sorry, user alice is not allowed to
    execute '/bin/sh -c SCRIPT' ..."): the script holds the OK mark's makings, and
    once held the mark itself, so the refusal read as the command running, and
    the host failed later with all of START in its "one line"."""
    started: List[str] = []

    def start_raw(command: str, pty: bool) -> SshProcess:
        started.append(command)
        # What sudo -S does for a command sudoers does not allow: ask, then quote it.
        script = shlex.split(command)[-1]
        refusal = f"Sorry, user alice is not allowed to execute '/bin/sh -c {script}' as root on h."
        body = 'printf "%s" "$P" >&2; read -r pw; printf "%s\\n" "$R" >&2; exit 1'
        return SshProcess(["env", f"P={TOKEN}:alice:", f"R={refusal}", "sh", "-c", body])

    sudo = Sudo("h", "alice", password="s3cret", token=TOKEN)
    start = "echo '@@mgmt-remote ready'\n" + "\n".join(f": line {n}" for n in range(300))
    with pytest.raises(RemoteError) as caught:
        sudo.start(start_raw, start)
    assert str(caught.value) == (
        "h: sudo refused to run commands as root for alice: Sorry, user alice is not "
        "allowed to execute '/bin/sh -c ...' as root on h."
    )
    assert len(started) == 1  # asked, then refused: no second try with a pty


@pytest.mark.parametrize(
    ("asked_for", "said"),
    [
        ("alice", WRONG_PASSWORD.format(login="alice")),
        # targetpw/rootpw: sudo wants root's, and the login typed their own.
        (
            "root",
            WRONG_PASSWORD.format(login="root")
            + NOT_THE_LOGINS.format(whose="root", login="alice"),
        ),
        (
            "john smith",
            WRONG_PASSWORD.format(login="john smith")
            + NOT_THE_LOGINS.format(whose="john smith", login="alice"),
        ),
        ("%p", WRONG_PASSWORD.format(login="alice")),  # a sudo that does not expand %p
    ],
)
def test_a_wrong_password_names_whose_password_sudo_asked_for(asked_for, said):
    """The prompt carries sudo's %p: the user whose password it wants."""
    started: List[str] = []
    script = (
        f'P="{TOKEN}:{asked_for}:"; printf "%s" "$P" >&2; read -r pw; '
        'printf "Sorry, try again.\\n%s" "$P" >&2; exec sleep 60'
    )
    sudo = Sudo("h", "alice", password="mine", token=TOKEN)
    with pytest.raises(RemoteError) as caught:
        sudo.start(stand_in(script, started), "true")
    assert str(caught.value) == "h: " + said
    assert f"-p {TOKEN}:%p:" in started[0]
