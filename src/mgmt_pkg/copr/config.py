"""COPR credentials: the copr client's own config file, read and checked here.

``copr.v3.config_from_file`` lets broken files through to a KeyError, an
AttributeError or a UnicodeDecodeError deep inside the client, and its
configparser interpolates "%" (a token with "%" in it fails). So the file is
read here, as UTF-8 text without interpolation, each value checked, and the
dict that ``copr.v3.Client`` takes is built from it; each problem is one line
naming the file and the key.
"""

from __future__ import annotations

import configparser
import re
import stat
from pathlib import Path
from typing import Any, Dict, Optional

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.paths import not_utf8, stat_named
from mgmt_pkg.urls import url_problem

__all__ = ["DEFAULT_CONFIG", "SECTION", "load_config"]

SECTION = "copr-cli"
DEFAULT_CONFIG = Path("~/.config/copr")
REQUIRED = ("copr_url", "login", "token")
# What config_from_file takes; the rest of the section is ignored, as there.
FIELDS = ("username", "login", "token", "copr_url")
_URL = re.compile(r"https?://[^\s/?#@]+(:[0-9]+)?(/\S*)?")
MAX_SIZE = 1 << 20  # a config is a few lines; anything this big is not one


def load_config(path: Optional[Path] = None) -> Dict[str, Any]:
    """Read ``path`` (default ~/.config/copr) into the dict that ``copr.v3.Client`` takes."""
    chosen = Path(path or DEFAULT_CONFIG).expanduser()
    where = f"copr config {chosen}"
    info = stat_named(where, chosen)
    if info is None or not stat.S_ISREG(info.st_mode):
        hint = "" if path else " (get yours from COPR's web UI: API -> copy the config)"
        raise InvalidInput(f"{where}: not found{hint}")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(_read_text(chosen, where), source=str(chosen))
    except configparser.Error as error:
        raise InvalidInput(f"{where}: {_first_line(error)}") from error
    if not parser.has_section(SECTION):
        raise InvalidInput(f"{where}: no [{SECTION}] section")
    section = parser[SECTION]
    missing = [key for key in REQUIRED if not section.get(key, "").strip()]
    if missing:
        raise InvalidInput(f"{where}: [{SECTION}] lacks {', '.join(missing)}")
    config: Dict[str, Any] = {key: section.get(key) for key in FIELDS}
    for key, value in config.items():
        if value is not None:
            _check_value(where, key, value)
    config["encrypted"] = _boolean(where, section, "encrypted", True)
    config["gssapi"] = _boolean(where, section, "gssapi", None)
    url = config["copr_url"]
    _check_url(where, url)
    if config["encrypted"] and url.startswith("http://"):
        raise InvalidInput(
            f"{where}: The `copr_url` should not be http (set encrypted = False for a "
            "server without TLS, or get an up-to-date config from COPR)"
        )
    config["copr_url"] = url.rstrip("/")
    config["config_path"] = str(chosen)
    return config


def _read_text(path: Path, where: str) -> str:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_SIZE + 1)
    except OSError as error:
        raise InvalidInput(f"{where}: cannot read: {error.strerror}") from None
    if len(data) > MAX_SIZE:
        raise InvalidInput(f"{where}: larger than {MAX_SIZE} bytes, not a copr config")
    try:
        # Decoded whole (not as utf-8-sig, which counts bytes after the BOM): the
        # byte named is then the file's.
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(where, error) from None
    text = text.removeprefix("\ufeff")  # COPR's page gives UTF-8; a BOM is harmless
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InvalidInput(f"{where}: line {line} holds a NUL byte (a binary or UTF-16 file?)")
    return text


def _boolean(
    where: str, section: configparser.SectionProxy, key: str, default: Optional[bool]
) -> Optional[bool]:
    """configparser's booleans, with the key named when the value is none of them."""
    try:
        return section.getboolean(key, default)
    except ValueError:
        raise InvalidInput(
            f"{where}: [{SECTION}] {key} = {section[key]!r} is not a boolean "
            "(true/false, yes/no, on/off, 1/0)"
        ) from None


def _check_url(where: str, url: str) -> None:
    """An http(s) URL that requests can parse: scheme, a host name or address, a numeric port.

    The regex alone lets "host:notaport" and "[::1" through, which requests then
    reports as a network error ("cannot reach") although the file is at fault.
    """
    problem = f"{where}: [{SECTION}] copr_url {url!r} is not an http(s) URL"
    if not _URL.fullmatch(url):
        raise InvalidInput(problem)
    why = url_problem(url, ("http", "https"))
    if why is not None:
        raise InvalidInput(f"{problem} ({why})")
    # The client appends "/api_3/..." to copr_url as text: after a "?" or "#"
    # every call would go to the same page, with the API path as its query.
    if re.search(r"/api_3/*$", url):
        raise InvalidInput(
            f"{where}: [{SECTION}] copr_url {url!r} ends in /api_3, which the client "
            f"adds itself; give COPR's address, {re.sub(r'/api_3/*$', '', url)!r}"
        )
    for mark, what in (("?", "a query"), ("#", "a fragment")):
        if mark in url:
            raise InvalidInput(
                f"{where}: [{SECTION}] copr_url {url!r} has {what} "
                f"({url[url.index(mark) :]!r}); give COPR's address alone, "
                "e.g. https://copr.fedorainfracloud.org"
            )


# Sent as they are: login and token as HTTP basic auth (requests encodes it as
# latin-1, so anything past U+00FF fails deep inside it), the user name in URL
# paths. COPR's own are ASCII (its tokens are generated lowercase letters, its
# user names those of Fedora accounts), so a non-ASCII character, a space or a
# U+2028 is a copy-paste mistake that no COPR server would accept anyway.
_ASCII_KEYS = ("login", "username", "token")


def _check_value(where: str, key: str, value: str) -> None:
    """One line, no control characters: a continuation line (an indented line
    after the key) would make a token of two lines, which no server accepts.
    Login, user name and token: printable ASCII without spaces; a login has no
    ":" either, which basic auth takes as the end of the user name."""
    if "\n" in value:
        raise InvalidInput(f"{where}: [{SECTION}] {key} spans several lines (an indented line)")
    bad = [c for c in value if ord(c) < 0x20 or ord(c) == 0x7F]
    if bad:
        raise InvalidInput(f"{where}: [{SECTION}] {key} contains control character {bad[0]!r}")
    if key not in _ASCII_KEYS:
        return
    for index, char in enumerate(value, 1):
        if not "!" <= char <= "~":
            what = "a space" if char == " " else f"{char!r} (U+{ord(char):04X}), not ASCII"
            raise InvalidInput(
                f"{where}: [{SECTION}] {key}: character {index} is {what}; COPR's logins, "
                "user names and tokens are ASCII letters, digits and punctuation "
                "(copy the config again from COPR's web UI: API)"
            )
    if key == "login" and ":" in value:
        raise InvalidInput(
            f"{where}: [{SECTION}] login contains ':', which HTTP basic auth cannot send"
        )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
