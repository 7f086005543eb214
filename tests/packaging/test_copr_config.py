"""The COPR config file, case by case: read as UTF-8 without interpolation,
each value checked; bad ones exit 2 with one line naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mgmt_pkg.copr.config import load_config
from support.pkgcli import run_cli

GOOD = "[copr-cli]\nlogin = alice\nusername = alice\ntoken = {token}\ncopr_url = {url}\n"


def config_bytes(token: str = "abc", url: str = "https://copr.example.org") -> bytes:
    return GOOD.format(token=token, url=url).encode()


REFUSED = [
    # The line, and the byte counted from the start of the file (a BOM included).
    ("latin-1", GOOD.format(token="j\xf6rg", url="https://c.example.org").encode("latin-1"),
     "copr.conf:4: not UTF-8 text (byte 51); save it as UTF-8"),
    ("bom-latin-1", b"\xef\xbb\xbf" + GOOD.format(token="j\xf6rg", url="https://c.example.org")
     .encode("latin-1"), "copr.conf:4: not UTF-8 text (byte 54); save it as UTF-8"),
    ("utf-16", GOOD.format(token="t", url="https://c.example.org").encode("utf-16"),
     "copr.conf:1: not UTF-8 text (byte 0)"),
    ("binary", bytes(range(256)), "copr.conf:2: not UTF-8 text (byte 128)"),
    ("nul-in-text", b"\x00" * 16, "line 1 holds a NUL byte"),
    ("token-nul", config_bytes(token="a\x00b"), "line 4 holds a NUL byte"),
    ("token-continued", config_bytes(token="abc\n  def"), "token spans several lines"),
    ("login-escape", config_bytes().replace(b"alice\nuser", b"al\x1bice\nuser"),
     "login contains control character"),
    ("url-ftp", config_bytes(url="ftp://copr.example.org"), "copr_url 'ftp://copr.example.org'"),
    ("url-no-scheme", config_bytes(url="copr.example.org"), "is not an http(s) URL"),
    ("url-space", config_bytes(url="https://copr.example.org/a b"), "is not an http(s) URL"),
    ("url-http-encrypted", config_bytes(url="http://copr.example.org"), "should not be http"),
    ("url-port-not-a-number", config_bytes(url="https://127.0.0.1:notaport"),
     "[copr-cli] copr_url 'https://127.0.0.1:notaport' is not an http(s) URL"),
    ("url-port-too-big", config_bytes(url="https://127.0.0.1:99999"), "port is not a number"),
    ("url-ipv6-unclosed", config_bytes(url="https://[::1"), "Invalid IPv6 URL"),
    ("url-ipv6-bad", config_bytes(url="https://[::g]/"), "is not an http(s) URL"),
    # Accepted, and every call went to https://c.example.org/ with "x=1/api_3/..." as its query.
    ("url-query", config_bytes(url="https://c.example.org/?x=1"),
     "has a query ('?x=1'); give COPR's address alone"),
    ("url-fragment", config_bytes(url="https://c.example.org/#top"), "has a fragment ('#top')"),
    # Every call went to URL/api_3/api_3/..., which COPR does not know.
    ("url-api_3", config_bytes(url="https://c.example.org/api_3/"),
     "copr_url 'https://c.example.org/api_3/' ends in /api_3, which the client adds itself; "
     "give COPR's address, 'https://c.example.org'"),
    ("url-empty-label", config_bytes(url="https://copr..example.org"), "an empty label"),
    ("no-section", b"[other]\nx = 1\n", "no [copr-cli] section"),
    ("not-ini", b"just text\n", "copr config"),
    ("bad-boolean", config_bytes() + b"encrypted = maybe\n",
     "[copr-cli] encrypted = 'maybe' is not a boolean"),
    # What basic auth (latin-1 in requests) or COPR (ASCII) cannot take: was an
    # "internal error: UnicodeEncodeError" on sending, and a success with --dry-run.
    ("token-beyond-latin-1", config_bytes(token="t\u00f6k\u00e9n\u20ac"),
     "[copr-cli] token: character 2 is '\u00f6' (U+00F6), not ASCII"),
    ("token-u2028", config_bytes(token="abc\u2028def"), "token: character 4 is '\\u2028'"),
    ("token-c1-control", config_bytes(token="abc\x85def"), "token: character 4 is '\\x85'"),
    ("token-space", config_bytes(token="abc def"), "token: character 4 is a space"),
    ("login-non-ascii", config_bytes().replace(b"login = alice", "login = \u0430lice".encode()),
     "[copr-cli] login: character 1 is '\u0430' (U+0430)"),
    ("username-non-ascii", config_bytes().replace(b"username = alice", "username = j\u00f6rg"
     .encode()), "[copr-cli] username: character 2 is '\u00f6'"),
    ("login-colon", config_bytes().replace(b"login = alice", b"login = al:ice"),
     "login contains ':'"),
]  # fmt: skip


def run(*args: str):
    """``mgmt-pkg ARGS``: its exit code and stderr."""
    result = run_cli(*args)
    return result.code, result.err


@pytest.mark.parametrize(("case", "data", "fragment"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_bad_config_exits_2_in_one_line_naming_it(tmp_path: Path, case, data, fragment):
    config = tmp_path / "copr.conf"
    config.write_bytes(data)
    code, err = run("copr", "project", "alice/x", "--chroot", "fedora-rawhide-x86_64",
                    "--dry-run", "--config", str(config))  # fmt: skip
    assert code == 2, err
    assert err.startswith(f"mgmt-pkg: error: copr config {config}:")
    assert fragment in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("token", ["50%off", "%(login)s", "100%%", "a%"])
def test_a_percent_in_the_token_is_taken_literally(tmp_path: Path, token):
    config = tmp_path / "copr.conf"
    config.write_bytes(config_bytes(token=token))
    assert load_config(config)["token"] == token
    code, err = run("copr", "project", "alice/x", "--chroot", "fedora-rawhide-x86_64",
                    "--dry-run", "--config", str(config))  # fmt: skip
    assert code == 0, err


def test_a_utf8_bom_and_plain_http_without_tls_are_fine(tmp_path: Path):
    config = tmp_path / "copr.conf"
    config.write_bytes(b"\xef\xbb\xbf" + config_bytes(url="http://127.0.0.1:8080/")
                       + b"encrypted = False\n")  # fmt: skip
    loaded = load_config(config)
    assert loaded["copr_url"] == "http://127.0.0.1:8080" and loaded["encrypted"] is False


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--poll-interval", "nan", "--poll-interval: 'nan' is not a number of seconds"),
        ("--poll-interval", "inf", "--poll-interval: 'inf' is not a number of seconds"),
        ("--poll-interval", "-1", "--poll-interval: '-1' is negative"),
        ("--poll-interval", "9" * 5000, "is not a number of seconds"),
        ("--poll-interval", "3601", "--poll-interval: must be at most 3600 seconds"),
        ("--timeout", "1e9", "--timeout: '1e9' is not a number of seconds"),
        ("--timeout", "604801", "--timeout: must be at most 604800 seconds"),
    ],
)
def test_durations_are_bounded_numbers(tmp_path: Path, option, value, message):
    srpm = tmp_path / "x.src.rpm"
    srpm.write_bytes(b"")
    code, err = run("copr", "build", "alice/x", str(srpm), option, value)
    assert code == 2, err
    assert err.startswith("mgmt-pkg: error: ") and message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["copr", "project", "alice/x", "--chroot", "fedora-rawhide-x86_64"],
        ["fake-rpm", "-n", "p", "-v", "1", "-o", "{out}", "--copr", "alice/x"],
    ],
    ids=["project", "fake-rpm"],
)
def test_a_token_basic_auth_cannot_send_is_refused_by_every_command(tmp_path: Path, command):
    config = tmp_path / "copr.conf"
    config.write_bytes(config_bytes(token="t\u00f6k\u00e9n\u20ac"))
    args = [a.format(out=tmp_path / "out") for a in command]
    option = "--copr-config" if command[0] == "fake-rpm" else "--config"
    code, err = run(*args, option, str(config))
    assert code == 2, err
    assert err.startswith(f"mgmt-pkg: error: copr config {config}: [copr-cli] token: "), err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
