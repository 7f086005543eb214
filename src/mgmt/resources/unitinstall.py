"""Whether a unit counts as enabled or disabled at boot, for the svc kind's ``startup``.

systemd's UnitFileState says it for most units, not for those it calls
``indirect``:

- one whose ``[Install]`` section has only ``Also=`` (a service started by its
  socket, as pcscd.service or cups.service: ``systemctl enable`` of it enables
  the socket) is indirect whether the units it names are enabled or not. It is
  enabled when all those units are, and disabled when none is, as ``systemctl
  enable`` and ``disable`` of it leave them;
- a template with an instance enabled other than its ``DefaultInstance`` is
  indirect: ``disable`` of it disables every instance, so it is not disabled;
  nor enabled, when it has a DefaultInstance, which ``enable`` of it enables.
"""

from typing import List, Mapping, NamedTuple

from mgmt.resources.unitctl import is_template, unit_properties, unit_text

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


def install_state(props: Mapping[str, str]) -> InstallState:
    """The state at boot of the unit whose properties are ``props``."""
    state = props.get("UnitFileState", "")
    if state == "indirect" and is_template(props.get("Id", "")):
        defaults = install_values(unit_text(props["Id"]), "DefaultInstance")
        if defaults:
            return InstallState(f"{state} (another instance than {defaults[-1]})", False, False)
        return InstallState(f"{state} (an instance; no DefaultInstance)", True, False)
    also = also_units(props.get("FragmentPath", "")) if state == "indirect" else []
    if not also:  # an alias of it enabled under another name: as systemd says
        return InstallState(state, state in ENABLED, state in DISABLED)
    states = {unit: unit_properties(unit).get("UnitFileState", "") for unit in also}
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
    units = list(dict.fromkeys(install_values(text, "Also")))
    return [] if any("%" in unit for unit in units) else units


def install_values(text: str, key: str) -> List[str]:
    """The words of ``key`` in the ``[Install]`` sections of unit file ``text``
    (one file, or `systemctl cat`'s files one after the other), in order; an
    empty assignment empties the list, as systemd reads lists."""
    found: List[str] = []
    section = ""
    for raw in _logical_lines(text):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        name, equals, value = line.partition("=")
        if section != "Install" or not equals or name.strip() != key:
            continue
        if not value.strip():
            found.clear()
        found += value.split()
    return found


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
