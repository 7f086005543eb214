"""A detached cluster whose directory was removed by hand while it ran, stopped: a
module of the hosts' program (detached.py), shipped with it and loaded by its
``main`` (see there).

With DIR gone, so are the pid files by which ``stop`` finds the supervisors, and
DIR/supervise.py, which knows how to stop them. Left alone, a supervisor started
outside systemd runs on without its files, and an enabled unit starts a
supervisor that is no longer there at each boot, and fails. So they are found by
what is left: the supervisors' command lines (``python3 -S DIR/supervise.py
NAME``) and the units' text. Runs on the host's Python (3.6 and later) with the
standard library only.
"""

import os
import signal
import subprocess
import time

UNIT_DIR = "/etc/systemd/system"  # supervise.UNIT_DIR (gone with DIR)
STOP_WAIT = 20.0  # supervise.STOP_GRACE, and some: each supervisor stops its process first


def stop_orphaned_unit(folder, name):
    """Disable and remove ``name``'s unit if it runs ``folder``'s supervisor (stopped by
    hand, or not). True if there was one."""
    unit = os.path.join(UNIT_DIR, "mgmt-detached-" + name + ".service")
    try:
        with open(unit) as f:
            ours = folder + "/supervise.py" in f.read()
    except OSError:
        return False
    if not ours:
        return False
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    for args in (["disable", "--now"], ["stop"]):
        subprocess.run(["systemctl", *args, os.path.basename(unit)], **quiet)
    os.unlink(unit)
    subprocess.run(["systemctl", "daemon-reload"], **quiet)
    return True


def orphaned_supervisors(folder, name):
    """The pids of this login's supervisors of ``name`` run from ``folder``/supervise.py,
    found by their command lines. Only those that see the file system we see:
    containers that share our pids but not our mounts have a folder of the same
    name that is not ours."""
    script = (folder + "/supervise.py").encode()
    mounts = os.readlink("/proc/self/ns/mnt")
    found = []
    for entry in os.listdir("/proc"):
        try:
            if not entry.isdigit() or os.stat("/proc/" + entry).st_uid != os.getuid():
                continue
            if os.readlink(f"/proc/{entry}/ns/mnt") != mounts:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if script in argv[:-1] and argv[argv.index(script) + 1] == name.encode():
            found.append(int(entry))
    return found


def stop_orphaned(folder, name):
    """``name`` of the cluster whose DIR, ``folder``, is gone: its supervisors outside
    systemd, then its unit. True if there was one of them."""
    supervisors = orphaned_supervisors(folder, name)
    for pid in supervisors:  # each stops its process (its stop signal, then SIGKILL)
        os.kill(pid, signal.SIGTERM)
    deadline = time.time() + STOP_WAIT
    while orphaned_supervisors(folder, name) and time.time() < deadline:
        time.sleep(0.05)
    return stop_orphaned_unit(folder, name) or bool(supervisors)
