"""COPR credentials: the copr client's own config file, checked before it is used.

``copr.v3.config_from_file`` lets some broken files through to a KeyError or
an AttributeError deep inside the client (no [copr-cli] section, no copr_url);
we check the file first so that each problem is one line naming the file.
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any, Dict, Optional

from mgmt_pkg.errors import InvalidInput

__all__ = ["DEFAULT_CONFIG", "SECTION", "load_config"]

SECTION = "copr-cli"
DEFAULT_CONFIG = Path("~/.config/copr")
REQUIRED = ("copr_url", "login", "token")


def load_config(path: Optional[Path] = None) -> Dict[str, Any]:
    """Read ``path`` (default ~/.config/copr) into the dict that ``copr.v3.Client`` takes."""
    from copr.v3 import CoprException, config_from_file

    chosen = Path(path or DEFAULT_CONFIG).expanduser()
    if not chosen.is_file():
        hint = "" if path else " (get yours from COPR's web UI: API -> copy the config)"
        raise InvalidInput(f"copr config {chosen}: not found{hint}")
    parser = configparser.ConfigParser()
    try:
        parser.read(chosen)
    except configparser.Error as error:
        raise InvalidInput(f"copr config {chosen}: {_first_line(error)}") from error
    if not parser.has_section(SECTION):
        raise InvalidInput(f"copr config {chosen}: no [{SECTION}] section")
    missing = [key for key in REQUIRED if not parser.get(SECTION, key, fallback="").strip()]
    if missing:
        raise InvalidInput(f"copr config {chosen}: [{SECTION}] lacks {', '.join(missing)}")
    try:
        config = config_from_file(str(chosen))
    except (CoprException, ValueError) as error:
        raise InvalidInput(f"copr config {chosen}: {_first_line(error)}") from error
    config["copr_url"] = config["copr_url"].rstrip("/")
    config["config_path"] = str(chosen)
    return config


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
