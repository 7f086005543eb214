"""The programs shipped to hosts, read from the files beside this module.

``start.sh`` and ``launcher.py`` are real files (linted, run by tests as they
are); the initiator sends their text on the command line of one ``exec``, so a
warm start needs no copy. pkgutil reads them from an installed package and from
a bundle alike.
"""

import pkgutil

PRUNE_DAYS = 30  # launcher.py's PRUNE_SECONDS, in days


def _read(name: str) -> str:
    data = pkgutil.get_data(__name__.rpartition(".")[0], name)
    if data is None:
        raise FileNotFoundError(name)
    return data.decode("utf-8")


START = _read("start.sh")
LAUNCHER = _read("launcher.py")
# The hosts' side of a detached cluster (mgmt.remote.orchestration.detach).
DETACHED = _read("detached.py")
DETACHED_RUNNER = _read("detached.sh")  # runs DETACHED on the graph's python:
SUPERVISOR = _read("supervise.py")
