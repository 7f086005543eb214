"""Every argument reaches the remote command as one word, whatever it holds (real /bin/sh)."""

from __future__ import annotations

import subprocess

from mgmt.remote.protocol import sh

NASTY = [
    "plain",
    "with space",
    "it's quoted",
    'double "quotes"',
    "$(touch pwned)",
    "'; touch pwned2; '",
    "`id`",
    "semi; rm -rf /",
    "new\nline",
    "*",
    "",
    "--flag=value",
]


def test_arguments_arrive_unchanged_and_nothing_is_evaluated(tmp_path):
    script = 'for a in "$@"; do printf "%s\\0" "$a"; done'
    done = subprocess.run(
        sh(script, *NASTY), shell=True, cwd=tmp_path, capture_output=True, check=True
    )
    assert done.stdout.decode().split("\0")[:-1] == NASTY
    assert list(tmp_path.iterdir()) == []  # the * was not expanded into anything, no file made


def test_the_script_itself_is_one_quoted_word():
    command = sh("echo 'a b' \"$1\"", "x")
    assert command.startswith("/bin/sh -c '") and command.endswith(" mgmt-remote x")
