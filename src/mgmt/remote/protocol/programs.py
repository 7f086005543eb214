"""The programs shipped to hosts, read from the files beside this module.

``start.sh`` and ``launcher.py`` are real files (linted, run by tests as they
are); the initiator sends their text on the command line of one ``exec``, so a
warm start needs no copy. pkgutil reads them from an installed package and from
a bundle alike. START is start.sh with findpython.sh's function in it; LAUNCHER
is launcher.py with unpacked.py's text in it (its import commented out). The
detached cluster's programs (detached.py with the modules it imports,
detached_*.py; detached.sh, with findpython.sh as START; supervise.py) are read by
mgmt.remote.orchestration (hosts, detach), which only the initiator loads: the
bundle leaves them out (mgmt_pkg.bundle.INITIATOR_FILES).
"""

import pkgutil

PRUNE_DAYS = 30  # unpacked.py's PRUNE_SECONDS, in days


def read(name: str) -> str:
    """The text of the program ``name`` beside this module."""
    data = pkgutil.get_data(__name__.rpartition(".")[0], name)
    if data is None:
        raise FileNotFoundError(name)
    return data.decode("utf-8")


def with_find_python(program: str) -> str:
    """An sh ``program`` with findpython.sh's function (the one list of the hosts'
    Pythons) after its leading comments: its own first line stays first, which
    is what ``ps`` shows of ``sh -c PROGRAM`` on the host (``# START: ...``)."""
    lines = program.splitlines(keepends=True)
    head = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    return "".join(lines[:head]) + read("findpython.sh") + "".join(lines[head:])


# launcher.py's import of unpacked.py, whose text the program sent holds instead.
UNPACKED_IMPORT = "from mgmt.remote.protocol.unpacked import "
MAIN_GUARD = 'if __name__ == "__main__":'


def with_unpacked(launcher: str) -> str:
    """launcher.py as it is sent: one ``-c`` program (before the bundle is on the path
    there is nothing to import from), its import of unpacked.py a comment and
    unpacked.py's text before it calls main: each line of launcher.py keeps its
    number, so that a traceback from a host names the line in this repository."""
    lines = launcher.splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith(UNPACKED_IMPORT)]
    guard = [i for i, line in enumerate(lines) if line.startswith(MAIN_GUARD)]
    if len(at) != 1 or len(guard) != 1 or guard[0] < at[0]:
        raise ValueError("launcher.py must import unpacked.py in one line, before main runs")
    lines[at[0]] = "# " + lines[at[0]]  # its text is below, before main runs
    return "".join(lines[: guard[0]]) + read("unpacked.py") + "\n\n" + "".join(lines[guard[0] :])


START = with_find_python(read("start.sh"))
LAUNCHER = with_unpacked(read("launcher.py"))
