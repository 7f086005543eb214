"""What ``ssh`` says when a login fails, in one line for a host's summary row.

ssh prints a changed host key as a 15-line banner of "@" lines whose advice
names the known_hosts file it was given: on a secondary, the run's private copy,
gone when the run ends. The row says instead what a direct host's does
(mgmt.remote.transport.trust): the key it showed, and the command that removes
the old key from your own known_hosts, where the secondary's lines come from.
Anything else ssh says is kept, its lines joined.

Runs on secondaries: Python 3.6+, standard library only.
"""

import re

_CHANGED = re.compile(r"Host key for (\S+) has changed and you have requested strict checking")
_SHOWN = re.compile(r"The fingerprint for the (\S+) key sent by the remote host is\s+(\S+?)\.?\n")
_UNKNOWN = re.compile(
    r"No (\S+) host key is known for (\S+) and you have requested strict checking"
)


def login_failure(stderr: str) -> str:
    """ssh's stderr at a failed login, as one line (see the module)."""
    text = stderr.replace("\r", "")
    changed = _CHANGED.search(text)
    if changed is not None:
        entry = changed.group(1)
        shown = _SHOWN.search(text + "\n")
        key = f"{shown.group(1)} {shown.group(2)}" if shown else "another key"
        return (
            f"HOST KEY CHANGED: {entry} showed {key}, not the key your known_hosts has. "
            "Someone may be intercepting the connection. Refused; if the host was "
            f"really reinstalled, remove the old key with: ssh-keygen -R '{entry}'"
        )
    unknown = _UNKNOWN.search(text)
    if unknown is not None:
        return (
            f"unknown host key: your known_hosts has no {unknown.group(1)} key for "
            f"{unknown.group(2)}. Accept the host's key with --ssh-accept-new, or add it "
            "to your known_hosts"
        )
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
