"""The sudo exchange on its own: what Sudo does with each thing a sudo may say.

The real sudo (NOPASSWD, password, requiretty, refused) is met in test_sudo.py;
here a local shell stands in for the host, so that what no sudoers on a test
host makes sudo do (a PAM module asking its own question) is covered too.
Each stand-in is started the way a runner starts a command (``start_raw``),
as a real process with pipes.
"""

from __future__ import annotations

import shlex
import threading
from typing import List

import pytest

from mgmt.errors import RemoteError
from mgmt.remote.transport.openssh import SshProcess
from mgmt.remote.transport.password_gate import PasswordGates
from mgmt.remote.transport.sudo import (
    NEEDS_PASSWORD,
    NOT_THE_LOGINS,
    NOT_TRIED,
    SILENT,
    WRONG_PASSWORD,
    Sudo,
)
from support.polling import wait_until

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


# -- one password for the run: one host tries it before the others use it ---------


def _sudo_recording(tmp_path, name: str, after: str) -> str:
    """A sudo that asks, writes what it was given to ``tmp_path/name``, then ``after``."""
    return (
        'printf "%s" "$P" >&2; IFS= read -r pw || exit 1\n'
        f'printf "%s\\n" "$pw" > {tmp_path}/{name}\n{after}'
    )


def test_a_password_refused_on_one_host_is_not_tried_on_the_others(tmp_path):
    """A directory counts failures across hosts: a typo tried on 30 hosts locked the account."""
    wrong = 'printf "Sorry, try again.\\n%s" "$P" >&2; exec sleep 60'
    run = PasswordGates()  # the run's, shared by its hosts
    first = Sudo("h1", "alice", password="typo", token=TOKEN, gates=run)
    with pytest.raises(RemoteError) as caught:
        first.start(stand_in(_sudo_recording(tmp_path, "h1", wrong), []), "true")
    assert str(caught.value) == "h1: " + WRONG_PASSWORD.format(login="alice")
    second = Sudo("h2", "alice", password="typo", token=TOKEN, gates=run)
    with pytest.raises(RemoteError) as caught:
        second.start(stand_in(_sudo_recording(tmp_path, "h2", wrong), []), "true")
    assert str(caught.value) == "h2: " + NOT_TRIED.format(login="alice", other="h1")
    assert (tmp_path / "h1").read_text() == "typo\n"
    assert not (tmp_path / "h2").exists()  # never given it


def test_hosts_asked_while_the_first_tries_wait_for_its_answer_then_use_it(tmp_path):
    right = 'sleep 0.5; date +%s.%N > {d}/{n}-ok; printf "%s\\n" "$OK" >&2; echo ran'
    run = PasswordGates()
    hosts = [Sudo(f"h{n}", "alice", password="good", token=TOKEN, gates=run) for n in range(3)]
    results = {}

    def start(n: int) -> None:
        script = _sudo_recording(tmp_path, f"h{n}", right.format(d=tmp_path, n=f"h{n}"))
        results[n] = hosts[n].start(stand_in(script, []), "true").stdout.read()

    first = threading.Thread(target=start, args=(0,))
    first.start()
    wait_until(lambda: (tmp_path / "h0").exists(), 10, "the first host to be given it")
    others = [threading.Thread(target=start, args=(n,)) for n in (1, 2)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(20)
    assert results == {0: b"ran\n", 1: b"ran\n", 2: b"ran\n"}
    first_ok = float((tmp_path / "h0-ok").read_text())
    for n in (1, 2):  # given the password only once the first host's sudo took it
        assert (tmp_path / f"h{n}").stat().st_mtime >= first_ok - 0.05


def test_a_first_try_that_ends_without_an_answer_lets_the_next_host_try(tmp_path):
    """A sudo that ends after one try (passwd_tries=1) or whose connection goes says
    neither right nor wrong: the next host tries it (and is let in)."""
    gone = 'echo "sudo: 1 incorrect password attempt" >&2; exit 1'
    run = PasswordGates()
    first = Sudo("h1", "alice", password="good", token=TOKEN, gates=run)
    with pytest.raises(RemoteError, match="1 incorrect password attempt"):
        first.start(stand_in(_sudo_recording(tmp_path, "h1", gone), []), "true")
    right = 'printf "%s\\n" "$OK" >&2; echo ran'
    second = Sudo("h2", "alice", password="good", token=TOKEN, gates=run)
    process = second.start(stand_in(_sudo_recording(tmp_path, "h2", right), []), "true")
    assert process.stdout.read() == b"ran\n"
    assert (tmp_path / "h2").read_text() == "good\n"
