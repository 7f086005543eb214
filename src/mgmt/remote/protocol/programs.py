"""The programs shipped to hosts, read from the files beside this module.

``start.sh`` and ``launcher.py`` are real files (linted, run by tests as they
are); the initiator sends their text on the command line of one ``exec``, so a
warm start needs no copy. pkgutil reads them from an installed package and from
a bundle alike. START is findpython.sh's function, then start.sh. The detached
cluster's programs (detached.py with the modules it imports, detached_*.py;
detached.sh, after findpython.sh as START; supervise.py) are read by
mgmt.remote.orchestration (hosts, detach), which only the initiator loads: the
bundle leaves them out (mgmt_pkg.bundle.INITIATOR_FILES).
"""

import pkgutil

PRUNE_DAYS = 30  # launcher.py's PRUNE_SECONDS, in days


def read(name: str) -> str:
    """The text of the program ``name`` beside this module."""
    data = pkgutil.get_data(__name__.rpartition(".")[0], name)
    if data is None:
        raise FileNotFoundError(name)
    return data.decode("utf-8")


# The shell function both sh programs take the host's Python with (one list).
FIND_PYTHON = read("findpython.sh")
START = FIND_PYTHON + read("start.sh")
LAUNCHER = read("launcher.py")
