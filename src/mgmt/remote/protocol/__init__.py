"""Everything the initiator and a remote agent say to each other.

The programs shipped to hosts are files beside this module (see
:mod:`.programs`): ``start.sh`` (START, a POSIX sh script run by one ``exec``)
and ``launcher.py`` (LAUNCHER, the Python that starts the agent). Their
conversation with the initiator, in order:

initiator -> host, the command line
    ``sh -c START mgmt-remote SHA256 cache|nocache RUN_DIR GRAPH BUILD_ID LAUNCHER SIZE
    PYTHON KIND`` (every argument a quoted word: see :func:`sh`; PYTHON "" to find
    one: python3, /usr/libexec/platform-python, python3.13 .. python3.6, then
    /usr/local/bin/python3, /usr/local/bin/python3.13 .. 3.6 (secure_path); KIND
    :data:`ATTACHED`, "" for a secondary, which takes no agent lock). No
    interpreter: exit :data:`EXIT_NO_PYTHON` before anything else.
host -> initiator, stdout
    :data:`NEED_BUNDLE_MARK` or :data:`READY_MARK`, each followed by three
    lines: the run dir, the bundle's path, shiv's root. After need-bundle the
    initiator sends the bundle (SIZE bytes) on stdin; START checks its sha256,
    renames it into place and says ready (or exits 98, leaving nothing).
initiator -> host, stdin, once ready
    the graph line (:func:`graph_line`: base64, empty when the graph was
    copied apart) and the settings line (JSON, see mgmt.settings), then at any
    time :data:`STOP` (SIGINT the agent), :data:`KILL` (SIGKILL it) and graph
    edits (:func:`graph_edit_line`). stdin closing stops the agent too.
host -> initiator, stdout
    :data:`PID_MARK` with the agent's pid, the launcher's :data:`PYTHON_MARK`
    line (its interpreter and version; instead, :data:`BUSY_MARK` and exit
    :data:`EXIT_AGENT_HERE` when another agent runs on the host as this user),
    then the agent's output, with :func:`converged_line` events among it, and
    with --json a last :func:`report_line`; stderr is the agent's log.
    The exit status is the agent's; :data:`EXITS_BEFORE_AGENT` are START's and the launcher's,
    and :data:`EXIT_DETACHED_HERE` says the agent would not start beside a
    detached cluster's.

This module is imported by agents too (the converged events): standard
library only, nothing costly at import.
"""

from typing import Any, BinaryIO, Dict, NamedTuple, Optional

PID_MARK = "@@mgmt-remote pid "
# The launcher's first line: the interpreter START chose, and its version.
PYTHON_MARK = "@@mgmt-remote python "
READY_MARK = "@@mgmt-remote ready"
NEED_BUNDLE_MARK = "@@mgmt-remote need-bundle"
# How an agent of a remote run reports its converged state: a line on stdout,
# which the initiator reads anyway (the fan-out keeps every host's state).
CONVERGED_MARK = "@@mgmt-converged "
# With --json, an agent of a remote run sends its result document (see
# mgmt.engine.report) as one line after this mark, when it ends.
REPORT_MARK = "@@mgmt-report "
STOP = b"stop\n"
KILL = b"kill\n"
GRAPH_EDIT = b"graph "
# A graph longer than this is copied with an upload instead of sent on a line
# (sh reads a line from a pipe a byte at a time).
INLINE_GRAPH_MAX = 64 * 1024
# Exit codes of START, and of the launcher (94, 95, 99), when no agent ran.
EXIT_NO_RUN_DIR = 90
EXIT_NO_PYTHON = 93  # no interpreter found (or none at --python / python:)
EXIT_OLD_PYTHON = 94  # the interpreter is older than 3.6
EXIT_NO_CACHE = 91
EXIT_NEED_BUNDLE = 95  # the launcher found its bundle pruned (by a newer mgmt's start)
EXIT_NO_CD = 96
EXIT_NO_STDIN = 97
EXIT_BAD_COPY = 98
EXIT_NO_GRAPH = 99  # the launcher could not write the graph (a full disk)
EXITS_BEFORE_AGENT = (
    EXIT_NO_RUN_DIR,
    EXIT_NO_CACHE,
    EXIT_NO_PYTHON,
    EXIT_NEED_BUNDLE,
    EXIT_NO_CD,
    EXIT_NO_STDIN,
    EXIT_BAD_COPY,
    EXIT_OLD_PYTHON,
    EXIT_NO_GRAPH,
)

# The agent's own exit status (not START's) when it would not start beside a
# detached cluster's agent (mgmt.remote.orchestration.detach): two agents would
# fight over the same resources. The cluster's supervisor of its agent writes its
# pid to DETACHED_AGENT_SUPERVISOR (see supervise.py), of the same login user.
EXIT_DETACHED_HERE = 92
DETACHED_AGENT_SUPERVISOR = "~/.local/state/mgmt/detached/agent.sup"
DETACHED_HERE = (
    "a detached cluster's agent runs on this host (~/.local/state/mgmt/detached): see it "
    "with `mgmt status`, take it over with `mgmt run --attach`, or end it with `mgmt stop`"
)


def detached_cluster_here() -> bool:
    """Whether a detached cluster's agent runs on this host: the supervisor whose pid
    DETACHED_AGENT_SUPERVISOR holds is alive (a cluster left by a reboot is not)."""
    import os

    try:
        with open(os.path.expanduser(DETACHED_AGENT_SUPERVISOR)) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"supervise" in f.read()
    except (OSError, ValueError):
        return False


# One agent per host and login user (the launcher's lock): the kinds of agent
# that take it, and what an agent refused says about the one that holds it.
ATTACHED = "attached"
DETACHED = "detached"
EXIT_AGENT_HERE = 89
BUSY_MARK = "@@mgmt-remote busy "  # USER KIND PID SINCE (seconds since the epoch)
AGENT_HERE = "{what} runs on this host as {user} (pid {pid}, since {since}): {advice}"
HOLDERS = {
    ATTACHED: (
        "an attached run's agent",
        "two agents would fight over its resources; run again once that run has ended",
    ),
    DETACHED: (
        "a detached cluster's agent",
        "see it with `mgmt status`, take it over with `mgmt run --attach`, or end it with "
        "`mgmt stop`",
    ),
}


def parse_busy_line(line: str) -> Optional[str]:
    """What a :data:`BUSY_MARK` line says of the agent that runs, in words; None
    for any other line."""
    if not line.startswith(BUSY_MARK):
        return None
    import time

    user, kind, pid, since = (line[len(BUSY_MARK) :].split() + ["?"] * 4)[:4]
    what, advice = HOLDERS.get(kind, ("another agent", HOLDERS[ATTACHED][1]))
    if since.isdigit():
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(since)))
    pid = pid if pid.isdigit() else "?"
    return AGENT_HERE.format(what=what, user=user, pid=pid, since=since, advice=advice)


def sh(script: str, *args: str) -> str:
    """A command line running ``script`` with ``args`` as $1.., everything quoted."""
    import shlex

    return " ".join(
        ["/bin/sh", "-c", shlex.quote(script.strip()), "mgmt-remote"]
        + [shlex.quote(a) for a in args]
    )


class RemotePaths(NamedTuple):
    """Where START put this run on the host."""

    run_dir: str
    bundle: str
    shiv_root: str
    bundle_cached: bool

    def graph(self, name: str) -> str:
        return f"{self.run_dir}/{name}"

    @property
    def state_dir(self) -> str:
        return self.run_dir + "/state"


def read_line(stream: BinaryIO) -> str:
    return stream.readline().decode(errors="replace").rstrip("\n")


# How many lines a login may print before START's answer (see read_start).
MAX_BANNER_LINES = 1000


def read_start(stream: BinaryIO) -> "Optional[RemotePaths]":
    """START's answer (ready or need-bundle, with its paths); None if it said neither
    (it failed: its stderr and exit status say why). What comes before the answer
    is the login's own, skipped: a ~/.bashrc that echoes a banner prints it on
    stdout before any command under sshd (bash reads it there), and a line
    without its newline ends where the answer begins."""
    for _ in range(MAX_BANNER_LINES):
        raw = stream.readline()
        if not raw:
            return None
        line = raw.decode(errors="replace").rstrip("\n")
        for mark, cached in ((READY_MARK, True), (NEED_BUNDLE_MARK, False)):
            if line.endswith(mark):
                run, bundle, shiv = read_line(stream), read_line(stream), read_line(stream)
                return RemotePaths(run, bundle, shiv, cached)
    return None


def start_lines(graph: bytes, settings: Dict[str, Any]) -> bytes:
    """The graph line (b"" when it was copied apart) and the settings line, credentials
    included (see mgmt.settings.settings_from_json)."""
    import base64
    import json

    return base64.b64encode(graph) + b"\n" + json.dumps(settings).encode() + b"\n"


def graph_edit_line(graph_json: str) -> bytes:
    """A graph edit for START's guard: the graph's JSON form on one line."""
    return GRAPH_EDIT + graph_json.encode("utf-8") + b"\n"


class Python(NamedTuple):
    """The interpreter an agent runs on, as the launcher reports it."""

    path: str
    version: str

    @property
    def short(self) -> str:
        return ".".join(self.version.split(".")[:2])


def parse_python_line(line: str) -> Optional[Python]:
    if not line.startswith(PYTHON_MARK):
        return None
    path, _, version = line[len(PYTHON_MARK) :].rpartition(" ")
    return Python(path, version) if path else None


def parse_pid_line(line: str) -> Optional[int]:
    if line.startswith(PID_MARK):
        try:
            return int(line[len(PID_MARK) :])
        except ValueError:
            return None
    return None


def converged_line(converged: bool) -> str:
    """The stdout line that reports ``converged`` (see :data:`CONVERGED_MARK`)."""
    return CONVERGED_MARK + ("true" if converged else "false")


def print_converged(converged: bool) -> None:
    """An agent's converged event, on stdout: one write of a whole line, flushed,
    for the initiator reads it as it comes."""
    import sys

    sys.stdout.write(converged_line(converged) + "\n")
    sys.stdout.flush()


def parse_converged_line(line: str) -> Optional[bool]:
    """The state a :func:`converged_line` reports; None for any other line."""
    if not line.startswith(CONVERGED_MARK):
        return None
    value = line[len(CONVERGED_MARK) :].strip()
    return {"true": True, "false": False}.get(value)


def report_line(document_json: str) -> str:
    """The stdout line that carries an agent's --json document (one line of JSON)."""
    return REPORT_MARK + document_json


def parse_report_line(line: str) -> Optional[Dict[str, Any]]:
    """The document a :func:`report_line` carries; None for any other line (or bad JSON)."""
    document = json_after(REPORT_MARK, line)
    return document if isinstance(document, dict) else None


def json_after(mark: str, line: str) -> Any:
    """The JSON value ``line`` carries after ``mark``; None for a line without the
    mark or with bad JSON (a JSON null too: no line of the protocol carries one)."""
    if not line.startswith(mark):
        return None
    import json  # not on the agent's start path

    try:
        return json.loads(line[len(mark) :])
    except ValueError:
        return None


def command_line(paths: RemotePaths, graph: str, settings: Dict[str, Any]) -> str:
    """The ``mgmt run`` command that runs the same agent by hand, for the "Running:" log
    line; derived from the field table (mgmt.settings.FIELDS). The credentials are
    left out: ``--etcd-auth-stdin`` reads them from stdin."""
    import shlex

    from mgmt.settings import agent_argv

    argv = [paths.bundle, "run", "--file", paths.graph(graph), "--prefix", paths.state_dir]
    argv += [*agent_argv(settings), "--etcd-auth-stdin"]
    return " ".join(shlex.quote(a) for a in argv)


# The settings line of a secondary (mgmt.remote.hierarchy) starts with this key
# set to true: the bundle then runs the secondary's fan-out, not an agent.
SECONDARY_SETTING = "secondary"


def is_secondary_line(line: str) -> bool:
    return line.startswith('{"' + SECONDARY_SETTING + '": true')


# A secondary whose hosts run through sudo gets the run's sudo prompt token and
# password (null if none was given) under this key of its settings line: on
# stdin, never on a command line or in a file; not part of the "Running:" line.
SUDO_SECRET_SETTING = "sudo_secret"
