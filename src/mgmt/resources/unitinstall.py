"""Whether a unit counts as enabled or disabled at boot, for the svc kind's ``startup``.

systemd's UnitFileState says it for most units. Not for one whose ``[Install]``
section has only ``Also=`` (a service started by its socket, as pcscd.service
or cups.service: ``systemctl enable`` of it enables the socket): that one is
``indirect`` whether the units it names are enabled or not. Such a unit is
enabled when all those units are, and disabled when none is, as ``systemctl
enable`` and ``disable`` of it leave them.
"""

from typing import Callable, Dict, List, Mapping, NamedTuple

# UnitFileState values that satisfy startup: enabled / disabled.
ENABLED = ("enabled", "alias", "static", "generated", "indirect")
# Not enabled either: masked or linked (for good or for this boot: -runtime), or a
# unit made at run time (systemd-run): `systemctl disable` would have nothing to do.
DISABLED = ("disabled", "static", "masked", "masked-runtime", "linked", "linked-runtime",
            "transient", "indirect", "generated", "")  # fmt: skip


class InstallState(NamedTuple):
    shown: str  # as a note and an error show it
    enabled: bool  # startup: enabled holds
    disabled: bool  # startup: disabled holds


def install_state(
    props: Mapping[str, str], read: Callable[[str], Mapping[str, str]]
) -> InstallState:
    """The unit's state at boot, from its properties ``props``; ``read`` gives
    another unit's properties (those its ``Also=`` names, for an indirect unit)."""
    state = props.get("UnitFileState", "")
    also = also_units(props.get("FragmentPath", "")) if state == "indirect" else []
    if not also:  # an alias or another instance of a template enabled: as systemd says
        return InstallState(state, state in ENABLED, state in DISABLED)
    states = {unit: read(unit).get("UnitFileState", "") for unit in also}
    shown = ", ".join(f"{unit} {each or 'unknown'}" for unit, each in states.items())
    return InstallState(
        f"{state} (Also= {shown})",
        all(each in ENABLED for each in states.values()),
        all(each in DISABLED for each in states.values()),
    )


def also_units(path: str) -> List[str]:
    """The units the ``[Install]`` section of the unit file at ``path`` names in
    ``Also=``; none when it cannot be read, or names one through a specifier
    (``%i``), which only systemd expands."""
    if not path.startswith("/"):
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return []
    found: Dict[str, None] = {}
    section = ""
    for raw in _logical_lines(text):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, equals, value = line.partition("=")
        if section != "Install" or not equals or key.strip() != "Also":
            continue
        if not value.strip():  # an empty Also= empties the list, as for every list
            found.clear()
        found.update((unit, None) for unit in value.split())
    if any("%" in unit for unit in found):
        return []
    return list(found)


def _logical_lines(text: str) -> List[str]:
    """The file's lines, comments dropped and those continued with a backslash joined."""
    lines: List[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and line.lstrip().startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines
