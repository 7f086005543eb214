"""What a secondary says upward, besides what an agent says (see the package).

A secondary (mgmt.remote.hierarchy) is started like an agent, by START, and
speaks the same lines: its pid, ``@@mgmt-converged`` (true when every host it
runs has converged), its log on stderr. On its stdout it adds:

- :func:`relay_line`: one output line of a host below it, with the host's path
  relative to the secondary (``leaf`` or ``s2/leaf``); each level above adds
  its own name, so the initiator prints ``s1/s2/leaf | ...``;
- :func:`leaf_result_line`: the result of one host below it, when it ends
  (the per-host summary's row, as JSON);
- :func:`leaf_converged_line`: one host below it has converged, or is busy
  again (its agent's own converged events, relayed as they come), so that a
  host whose secondary is lost is known to have applied its graph or not;
- :func:`sudo_verdict_line`: the run's sudo password, tried below, was right
  or wrong for a user (or nobody below was asked for it: "untried"), so that
  the level above gives it to its other hosts, or does not.

Runs on hosts: standard library only, Python 3.6+.
"""

import json
from typing import Any, Dict, Optional, Tuple

from mgmt.remote.protocol import json_after

RELAY_MARK = "@@mgmt-via "
LEAF_RESULT_MARK = "@@mgmt-leaf-result "
LEAF_CONVERGED_MARK = "@@mgmt-leaf-converged "
RESULT_FIELDS = ("host", "result", "bundle", "seconds", "message", "report")


def relay_line(path: str, text: str) -> str:
    return RELAY_MARK + path + " | " + text


def parse_relay_line(line: str) -> Optional[Tuple[str, str]]:
    """(path, text) of a :func:`relay_line`; None for any other line."""
    if not line.startswith(RELAY_MARK):
        return None
    path, sep, text = line[len(RELAY_MARK) :].partition(" | ")
    return (path, text) if sep and path else None


def leaf_result_line(result: Dict[str, Any]) -> str:
    return LEAF_RESULT_MARK + json.dumps({k: result.get(k) for k in RESULT_FIELDS})


def parse_leaf_result_line(line: str) -> Optional[Dict[str, Any]]:
    """The fields of a :func:`leaf_result_line` (RESULT_FIELDS); None for any other line."""
    fields = json_after(LEAF_RESULT_MARK, line)
    if not isinstance(fields, dict) or not isinstance(fields.get("host"), str):
        return None
    return fields


def leaf_converged_line(path: str, converged: bool) -> str:
    return LEAF_CONVERGED_MARK + path + (" true" if converged else " false")


def parse_leaf_converged_line(line: str) -> Optional[Tuple[str, bool]]:
    """(path, converged) of a :func:`leaf_converged_line`; None for any other line."""
    if not line.startswith(LEAF_CONVERGED_MARK):
        return None
    path, _, state = line[len(LEAF_CONVERGED_MARK) :].rpartition(" ")
    return (path, state == "true") if path and state in ("true", "false") else None


# With --ssh-accept-new, a key a secondary accepted for a host below it (one
# known_hosts line): the initiator adds it to its own known_hosts, as it does
# for a host it logs in to itself, so the next run checks it.
NEW_HOST_KEY_MARK = "@@mgmt-new-host-key "


def new_host_key_line(known_hosts_line: str) -> str:
    return NEW_HOST_KEY_MARK + known_hosts_line.strip()


def parse_new_host_key_line(line: str) -> Optional[Tuple[str, str, str]]:
    """(entry, key type, base64 key) of a :func:`new_host_key_line`; None for any other."""
    if not line.startswith(NEW_HOST_KEY_MARK):
        return None
    fields = line[len(NEW_HOST_KEY_MARK) :].split()
    if len(fields) != 3 or any(not f.isprintable() for f in fields):
        return None
    return fields[0], fields[1], fields[2]


SUDO_VERDICT_MARK = "@@mgmt-sudo-verdict "
SUDO_VERDICTS = ("right", "wrong", "untried")


def sudo_verdict_line(user: str, verdict: str, host: str) -> str:
    return SUDO_VERDICT_MARK + json.dumps([user, verdict, host])


def parse_sudo_verdict_line(line: str) -> Optional[Tuple[str, str, str]]:
    """(user, verdict, host path) of a :func:`sudo_verdict_line`; None for any other."""
    fields = json_after(SUDO_VERDICT_MARK, line)
    valid = isinstance(fields, list) and len(fields) == 3
    if not valid or not all(isinstance(f, str) for f in fields) or fields[1] not in SUDO_VERDICTS:
        return None
    return fields[0], fields[1], fields[2]
