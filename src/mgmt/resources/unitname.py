"""How the svc kind names a unit: the suffix a bare name gets, and what systemd
refuses as a unit name (checked when the graph is read, not at run time)."""

import string
from typing import Optional

from mgmt.resources.fields import shown

# What systemd accepts in a unit name (systemd.unit(5), unit_name_is_valid): anything
# else can never name a unit, so it is refused when the graph is read, not at run time.
UNIT_CHARS = frozenset(string.ascii_letters + string.digits + ":-_.\\@")
UNIT_NAME_MAX = 255


def unit_name(name: str) -> str:
    """``nginx`` -> ``nginx.service``; a name with a unit suffix stays as it is."""
    suffixes = (".service", ".socket", ".target", ".timer", ".path", ".mount", ".automount",
                ".swap", ".slice", ".scope", ".device")  # fmt: skip
    return name if name.endswith(suffixes) else name + ".service"


def unit_name_problem(unit: str) -> Optional[str]:
    """Why systemd would refuse ``unit`` as a unit name, or None when it is one."""
    if len(unit) > UNIT_NAME_MAX:
        return f"{len(unit)} characters, systemd allows {UNIT_NAME_MAX}"
    bad = next((ch for ch in unit if ch not in UNIT_CHARS), None)
    if bad is not None:
        return f"{shown(bad)} is not allowed (only ASCII letters, digits and : - _ . \\ @)"
    if unit.rfind(".") == 0:  # only the suffix: ".service"
        return "it has nothing before its suffix"
    # systemd refuses a leading "@"; a leading "-" would read as an option to systemctl.
    if unit.startswith(("-", "@")):
        return f"it cannot start with {shown(unit[0])}"
    return None
