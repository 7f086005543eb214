"""The key exchanges the OpenSSH runner asks for: curve25519 first (see
:mod:`.openssh`, "Key exchange"), the rest of ssh's own list after it.

Runs on secondaries: Python 3.6+, standard library only.
"""

import subprocess
import threading
from typing import Dict, List, Optional

FAST_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")


_kex_lock = threading.Lock()
_kex_lists: Dict[str, Optional[str]] = {}


def kex_for(ssh_config: Optional[str]) -> Optional[str]:
    """The KexAlgorithms to ask for with this ssh_config file (None: ssh's own).

    Only a file that sets no KexAlgorithms and includes no other may have its
    order changed: a list someone chose is theirs, and without ``-F`` the
    system's files apply (crypto policies). Asked once per file (one ``ssh -G``
    per secondary, not one per host: the list is then the same for all)."""
    if not ssh_config:
        return None
    try:
        with open(ssh_config, encoding="utf-8") as handle:
            text = handle.read().lower()
    except OSError:
        return None  # ssh says why, at the login
    if "kexalgorithms" in text or "include" in text:
        return None
    with _kex_lock:
        if ssh_config not in _kex_lists:
            _kex_lists[ssh_config] = fast_kex_first(["-F", ssh_config], "mgmt-kex")
        return _kex_lists[ssh_config]


def fast_kex_first(ssh_options: List[str], target: str) -> Optional[str]:
    """The KexAlgorithms ssh would use for ``target`` (``ssh -G``: its defaults
    and ssh_config's), curve25519 moved first; None to leave them be."""
    try:
        done = subprocess.run(  # a secondary runs this on Python 3.6: no text=
            ["ssh", "-G", *ssh_options, "--", target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,  # noqa: UP021
        )
    except OSError:
        return None
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key.lower() == "kexalgorithms":
            names = value.strip().split(",")
            fast = [name for name in FAST_KEX if name in names]
            if not fast or names[: len(fast)] == fast:
                return None
            return ",".join(fast + [name for name in names if name not in fast])
    return None
