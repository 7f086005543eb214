"""The agent's launcher: run by START on the host as ``python3 -S -c <this file>``.

argv: site-packages of the unpacked bundle (may not exist), the bundle, the
graph file, the state dir, and what kind of agent this is ("attached",
"detached"; "" or none for a secondary, which applies no graph). stdin: the
graph line (base64; empty when the graph was copied apart), then the agent's
settings line (read by the agent itself, see mgmt.cli.run_remote_agent), then
graph edits (see mgmt.remote.protocol).

It writes the graph (atomically), then, when the host already unpacked this
very bundle (keyed by shiv's build id), imports the agent from there and skips
shiv's bootstrap, which costs a start-up as much again. A cached bundle not
unpacked yet is unpacked first; an uncached one runs from the zip (zipimport),
or, with no build id known, through shiv's bootstrap. The unpacked copy's
upkeep (unpacking, restoring what it lost, pruning old bundles) is
:mod:`mgmt.remote.protocol.unpacked`'s: the program sent has that file's text
before main runs, its import here a comment (see :mod:`.programs`), for nothing
can be imported from the bundle before it is on the path. It restores SIGINT (sh starts
background jobs with it ignored) and drops the working directory from the
import path, as running the bundle would. Once the agent is done it exits at
once (os._exit, after flushing): tearing down the interpreter's modules costs
a fifth of a start-up. The garbage collector is off while it starts (imports
free nothing); mgmt.engine.agent turns it back on once the agent runs.

One agent per host and login user: an agent holds an exclusive flock on
``~/.cache/mgmt/agent-MACHINE_ID.lock`` for its whole life (the kernel drops it
with the process, however it ends: no stale lock), and writes its kind, pid
and start time into it. An agent that finds the lock held says who holds it
(``@@mgmt-remote busy USER KIND PID SINCE``, instead of the interpreter line) and
exits EXIT_AGENT_HERE: two agents would fight over the host's resources. The
machine id is in the name because hosts may share a home over NFS, where
flock reaches across hosts. A home where the lock cannot be made (none, read
only) runs the agent without it, as before there was one.

Its first line on stdout names the interpreter (``@@mgmt-remote python PATH
VERSION``, for the initiator's "Running:" line); an older one than 3.6 exits
EXIT_OLD_PYTHON at once; 3.6 under the C locale starts itself again first, with
a UTF-8 LC_CTYPE (:func:`coerce_c_locale`). Runs on the host's Python (3.6 and
later) with the standard library only, and is read without a SyntaxError by
older ones.
"""

import gc
import os
import signal
import sys

from mgmt.remote.protocol.unpacked import Restorer, prune, repair, unpack  # see programs.py

EXIT_NEED_BUNDLE = 95  # mgmt.remote.protocol.EXIT_NEED_BUNDLE
EXIT_OLD_PYTHON = 94  # mgmt.remote.protocol.EXIT_OLD_PYTHON
EXIT_NO_GRAPH = 99  # mgmt.remote.protocol.EXIT_NO_GRAPH
EXIT_AGENT_HERE = 89  # mgmt.remote.protocol.EXIT_AGENT_HERE
PYTHON_MARK = "@@mgmt-remote python "  # mgmt.remote.protocol.PYTHON_MARK
BUSY_MARK = "@@mgmt-remote busy "  # mgmt.remote.protocol.BUSY_MARK


def main():
    gc.disable()
    # No f-strings here: an older Python must read this file to say it is too old.
    version = "%d.%d.%d" % tuple(sys.version_info[:3])  # noqa: UP031
    python_line = PYTHON_MARK + (sys.executable or "python") + " " + version + "\n"
    if sys.version_info < (3, 6):  # noqa: UP036
        sys.stdout.write(python_line)
        sys.stdout.flush()
        sys.stderr.write("mgmt-remote: Python " + version + " is too old: 3.6 or later needed\n")
        sys.stderr.flush()
        os._exit(EXIT_OLD_PYTHON)
    if sys.version_info < (3, 7):  # noqa: UP036
        coerce_c_locale()
    site, bundle, graph, state = sys.argv[1:5]
    kind = sys.argv[5] if len(sys.argv) > 5 else ""
    if kind:
        holder = hold_agent_lock(kind)
        if holder is not None:  # said before the interpreter line: no agent runs
            import pwd

            try:
                user = pwd.getpwuid(os.getuid()).pw_name
            except KeyError:
                user = str(os.getuid())
            # Put in words where it is shown (the run's summary, a detached agent's log).
            sys.stdout.write(BUSY_MARK + user + " " + holder + "\n")
            sys.stdout.flush()
            os._exit(EXIT_AGENT_HERE)
    sys.stdout.write(python_line)
    sys.stdout.flush()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = [bundle, graph, state]
    del sys.path[0]
    data = sys.stdin.buffer.readline().strip()  # bytes: the agent reads on from the same buffer
    if data:
        write_graph(graph, data)
    cache = os.path.dirname(bundle)
    cached = os.path.basename(cache) == "bundles"
    if cached:
        import fcntl

        try:
            held = os.open(bundle, os.O_RDONLY)
            fcntl.flock(held, fcntl.LOCK_SH)
            if os.fstat(held).st_nlink == 0:
                raise OSError("pruned")
            os.utime(held)
        except OSError:
            sys.stderr.write("mgmt-remote: a newer version just pruned this bundle; run again\n")
            sys.stderr.flush()
            os._exit(EXIT_NEED_BUNDLE)
    if os.path.isdir(site):
        if cached:  # what a cache cleaner took from the unpacked copy comes back
            sys.meta_path.append(Restorer(bundle, site))
        os._exit(run_from(site, bundle if cached else None))
    if cached:
        prune(cache, bundle, os.environ["SHIV_ROOT"])
    if os.path.basename(site) == "site-packages":
        # Uncached, the run dir (and so any copy) goes with this run: from the zip.
        os._exit(run_from(unpack(bundle, site) if cached else bundle + "/site-packages"))
    import runpy

    os.environ["SHIV_ENTRY_POINT"] = "mgmt.cli:run_remote_agent"
    runpy.run_path(bundle, run_name="__main__")


def coerce_c_locale():
    """PEP 538 for Python 3.6 (3.7 and later do it themselves, as does RHEL 8's
    platform-python): under the C locale (no LANG: an SSH command, sudo's
    env_reset) 3.6 takes file names and commands for ASCII, and a file
    /etc/gr\u00fc\u00dfe or a command naming one failed with "'ascii' codec can't
    encode". Started again, before anything is read or written, with LC_CTYPE
    set to a UTF-8 locale the host has: as 3.7 would, its children too."""
    import codecs

    if os.environ.get("LC_ALL") or codecs.lookup(sys.getfilesystemencoding()).name != "ascii":
        return
    import locale

    names = ("C.UTF-8", "C.utf8", "UTF-8")
    if os.environ.get("LC_CTYPE") in names:  # set already, and it did not help: go on
        return
    for name in names:
        try:
            locale.setlocale(locale.LC_CTYPE, name)
        except locale.Error:
            continue
        try:
            with open("/proc/self/cmdline", "rb") as f:  # this very command line
                argv = f.read().split(b"\0")[:-1]
        except OSError:
            return
        os.environ["LC_CTYPE"] = name
        os.execv(sys.executable, argv)


_held_lock = None  # the lock's descriptor, open for the life of the process


def hold_agent_lock(kind):
    """Take this host's agent lock for the life of this process (see the module's
    docstring); None once held (or if it cannot be made), else what holds it:
    "KIND PID SINCE" as the holder wrote it ("? ? ?" if it has not yet)."""
    global _held_lock
    import fcntl
    import time

    folder = os.path.join(os.path.expanduser("~"), ".cache", "mgmt")
    try:
        with open("/etc/machine-id") as f:
            machine = f.read().strip()
    except OSError:
        machine = ""
    name = "agent-" + machine + ".lock" if machine.isalnum() else "agent.lock"
    try:
        if not os.path.isdir(folder):
            os.makedirs(folder, 0o700)
        # Not inherited (PEP 446): what the agent runs does not hold the lock past it.
        fd = os.open(os.path.join(folder, name), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        import errno

        held = err.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
        # Any other error (ENOLCK: an NFS home without its lock daemon) is no lock.
        holder = os.read(fd, 200).decode("utf-8", "replace").strip() if held else ""
        os.close(fd)
        if not held:
            return None
        return holder if len(holder.split()) == 3 else "? ? ?"
    os.ftruncate(fd, 0)
    os.write(fd, (kind + " " + str(os.getpid()) + " " + str(int(time.time())) + "\n").encode())
    _held_lock = fd
    return None


def write_graph(graph, data):
    """The graph line (base64) into ``graph``, whole or not at all; a host with no
    room for it ends here with why (EXIT_NO_GRAPH), not with a traceback."""
    import base64

    temp = os.path.join(os.path.dirname(graph), "." + os.path.basename(graph) + ".new")
    try:
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(base64.b64decode(data))
        os.replace(temp, graph)
    except OSError as err:
        sys.stderr.write("mgmt-remote: cannot write the graph to " + graph + ": "
                         + (err.strerror or str(err)) + "\n")  # fmt: skip
        sys.stderr.flush()
        os._exit(EXIT_NO_GRAPH)


def run_from(site, bundle=None):
    """Run the agent with ``site`` (a directory, or a path inside the zip) first on
    the import path; its exit status. ``bundle``: what a cached unpacked copy whose
    files were cut short (a crash soon after it was unpacked: ext4 and XFS write the
    data later than the names, leaving them empty) is repaired from; without that
    every start after failed, importing the agent."""
    sys.path.insert(0, site)
    try:
        from mgmt.cli import run_remote_agent
    except Exception:
        if bundle is None or not repair(bundle, site):
            raise
        from mgmt.cli import run_remote_agent

    code = run_remote_agent()
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # ^C before the agent's own handler runs (while it imports): a stop, with
        # no traceback, and the same status on every Python (3.6 exits 1 here,
        # which the initiator would read as a failure; 3.8 and later die of SIGINT).
        os._exit(130)
