"""`mgmt-pkg kickstart check` never prints a password, or part of one, from the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from provision_support import CASES

# Each line has an error that pykickstart reports quoting what it could not take:
# the second half of a password left unquoted, mostly.
LINES = {
    "rootpw": ("rootpw Tr0ub4dor 3xtra", "Unexpected arguments to rootpw command: ['***']"),
    "rootpw-pw": ("rootpw pw pw", "Unexpected arguments to rootpw command: ['***']"),
    "user": ("user --name=bob --password=Tr0ub4dor 3xtra", "unrecognized arguments: ***"),
    "user-spaced": ("user --name=bob --password Tr0ub4dor 3xtra", "unrecognized arguments: ***"),
    "bootloader": ("bootloader --password=Tr0ub4dor 3xtra", "unrecognized arguments: ***"),
    "luks": ("autopart --encrypted --passphrase=Tr0ub4dor 3xtra", "unrecognized arguments: ***"),
    "part-luks": (
        "part / --size=1024 --encrypted --passphrase Tr0ub4dor 3xtra",
        "Unexpected arguments to partition command: ['***']",
    ),
    "wifi": ("network --bootproto=dhcp --wpakey=Tr0ub4dor 3xtra", "unrecognized arguments: ***"),
    "proxy": (
        "url --url=http://a/ --proxy=http://u:Tr0ub4dor@p 3xtra",
        "unrecognized arguments: ***",
    ),
}


@pytest.mark.parametrize("line", LINES.values(), ids=LINES.keys())
def test_check_masks_the_password_in_an_error(tmp_path: Path, line):
    text, message = line
    seed = (CASES / "kickstart" / "seed-layout.ks").read_text()
    path = tmp_path / "x.ks"
    path.write_text(f"{text}\n{seed}")
    result = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "check", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f"{path}:1: error: {message}\n" in result.stderr
    for secret in ("Tr0ub4dor", "3xtra"):
        assert secret not in result.stderr + result.stdout


def test_other_values_are_still_quoted(tmp_path: Path):
    """Only secrets and stray words are masked: a bad size still says what it was,
    and the word masked is never taken out of another ("pw" out of "rootpw")."""
    path = tmp_path / "x.ks"
    path.write_text("part / --size=abc\nrootpw pw pw\n")
    result = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "check", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert f"{path}:1: error: argument --size: invalid int value: 'abc'\n" in result.stderr
    assert f"{path}:2: error: Unexpected arguments to rootpw command: ['***']\n" in result.stderr
