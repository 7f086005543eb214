"""The agent's launcher: run by START on the host as ``python3 -S -c <this file>``.

argv: site-packages of the unpacked bundle (may not exist), the bundle, the
graph file, the state dir. stdin: the graph line (base64; empty when the graph
was copied apart), then the agent's settings line (read by the agent itself,
see mgmt.cli.run_remote_agent), then graph edits (see mgmt.remote.protocol).

It writes the graph (atomically), then, when the host already unpacked this
very bundle (keyed by shiv's build id), imports the agent from there and skips
shiv's bootstrap, which costs a start-up as much again. A cached bundle not
unpacked yet is unpacked first (see :func:`unpack`); an uncached one runs from
the zip (zipimport), or, with no build id known, through shiv's bootstrap. It
restores SIGINT (sh starts background jobs with it ignored) and drops the
working directory from the import path, as running the bundle would. Once the
agent is done it exits at once (os._exit, after flushing): tearing down the
interpreter's modules costs a fifth of a start-up. The garbage collector is
off while it starts (imports free nothing); mgmt.engine.agent turns it back on
once the agent runs.

Old bundles are pruned: when a new one is unpacked, every other cached bundle
unused for PRUNE_SECONDS goes, with its unpacked copy. "Unused" is known from
the bundle's mtime, touched at each start, and from a shared lock that every
running agent holds on its bundle: one in use is never removed.

Its first line on stdout names the interpreter (``@@mgmt-remote python PATH
VERSION``, for the initiator's "Running:" line); an older one than 3.6 exits
EXIT_OLD_PYTHON at once. Runs on the host's Python (3.6 and later) with the
standard library only, and is read without a SyntaxError by older ones.
"""

import gc

gc.disable()
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

PRUNE_SECONDS = 30 * 86400  # mgmt.remote.protocol.programs.PRUNE_DAYS
EXIT_NEED_BUNDLE = 95  # mgmt.remote.protocol.EXIT_NEED_BUNDLE
EXIT_OLD_PYTHON = 94  # mgmt.remote.protocol.EXIT_OLD_PYTHON
PYTHON_MARK = "@@mgmt-remote python "  # mgmt.remote.protocol.PYTHON_MARK


def main():
    # No f-strings here: an older Python must read this file to say it is too old.
    version = "%d.%d.%d" % tuple(sys.version_info[:3])  # noqa: UP031
    sys.stdout.write(PYTHON_MARK + (sys.executable or "python") + " " + version + "\n")
    sys.stdout.flush()
    if sys.version_info < (3, 6):  # noqa: UP036
        sys.stderr.write("mgmt-remote: Python " + version + " is too old: 3.6 or later needed\n")
        sys.stderr.flush()
        os._exit(EXIT_OLD_PYTHON)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    site, bundle, graph, state = sys.argv[1:5]
    sys.argv = [bundle, graph, state]
    del sys.path[0]
    data = sys.stdin.buffer.readline().strip()  # bytes: the agent reads on from the same buffer
    if data:
        import base64

        temp = os.path.join(os.path.dirname(graph), "." + os.path.basename(graph) + ".new")
        with open(temp, "xb") as f:
            f.write(base64.b64decode(data))
        os.replace(temp, graph)
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
        os._exit(run_from(site))
    if cached:
        prune(cache, bundle, os.environ["SHIV_ROOT"])
    if os.path.basename(site) == "site-packages":
        # Uncached, the run dir (and so any copy) goes with this run: from the zip.
        os._exit(run_from(unpack(bundle, site) if cached else bundle + "/site-packages"))
    import runpy

    os.environ["SHIV_ENTRY_POINT"] = "mgmt.cli:run_remote_agent"
    runpy.run_path(bundle, run_name="__main__")


def run_from(site):
    """Run the agent with ``site`` (a directory, or a path inside the zip) first on
    the import path; its exit status."""
    sys.path.insert(0, site)
    from mgmt.cli import run_remote_agent

    code = run_remote_agent()
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def unpack(bundle, site):
    """Where to run a cached bundle not unpacked yet from: unpacked now (shiv's
    layout), so that this start writes the bytecode the next one reads. Run
    from the zip instead (zipimport), the agent compiled its modules in memory
    and the next start compiled them again to write it: two cold starts per
    host, not one (each about 50 ms of CPU more than a warm start here,
    python3.11; unpacking the 130-odd files costs 10-15 ms). With no room to
    unpack, the zip all the same."""
    import shutil
    import zipfile

    target = os.path.dirname(site)
    temp = target + "." + str(os.getpid()) + ".partial"
    try:
        with zipfile.ZipFile(bundle) as archive:
            names = [m for m in archive.namelist() if m.startswith("site-packages/")]
            archive.extractall(temp, names)
        os.rename(temp, target)  # whole or not at all
    except OSError:
        pass  # another start unpacked it first, or no room
    finally:
        shutil.rmtree(temp, True)
    return site if os.path.isdir(site) else bundle + "/site-packages"


def prune(cache, bundle, shiv):
    import fcntl
    import glob
    import shutil
    import time

    for old in glob.glob(os.path.join(cache, "*.pyz")):
        try:
            if old == bundle or os.stat(old).st_mtime > time.time() - PRUNE_SECONDS:
                continue
            fd = os.open(old, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                name = os.path.basename(old)
                for d in glob.glob(os.path.join(shiv, name + "_*")):
                    shutil.rmtree(d, True)
                for f in glob.glob(os.path.join(shiv, "." + name + "_*_lock")):
                    os.unlink(f)
                os.unlink(old)
            finally:
                os.close(fd)
        except OSError:
            pass


if __name__ == "__main__":
    main()
