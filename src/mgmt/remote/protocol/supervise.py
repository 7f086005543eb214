"""The supervisor of a detached cluster's processes, and how they are started and stopped.

Written by ``detached.py etcd`` and ``agent`` into the cluster's directory DIR on the host
(mgmt.remote.protocol.detached) and run from there as ``python3 -S
DIR/supervise.py NAME``: it runs DIR/NAME.json's command (the agent, or the
etcd member; its argv, stdin, environment, stop signal and umask) with its
output appended to DIR/NAME.log (kept under LOG_LIMIT, the older part in
NAME.log.1), writes NAME.sup (its own pid), NAME.pid (the process) and NAME.exit
(its last status), restarts the process when it ends (1 s, doubling while it
keeps failing at once, up to 30 s), and on SIGTERM stops it (its stop signal,
SIGKILL after STOP_GRACE) and exits.

It runs as a systemd unit when systemd is the host's init and we are root:
UNIT_DIR/mgmt-detached-NAME.service, enabled (WantedBy=default.target) so that
the cluster comes back when the host reboots, and Restart=on-failure so that
systemd starts it again if it dies itself (a transient one, ``systemd-run``, for
this boot only, where UNIT_DIR cannot be written). Else it runs in a session of
its own (setsid), and nothing starts it after a reboot. Either way it outlives
the SSH session that started it. ``detached.py`` imports this file for
:func:`start_supervised`, :func:`stop_supervised`, :func:`supervisor_running` and
:func:`supervised_state`.

Runs on the host's Python (3.6 and later) with the standard library only.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

STOP_GRACE = 10.0  # the stop signal (SIGINT for the agent, SIGTERM for etcd), then SIGKILL
UNIT_DIR = "/etc/systemd/system"
# What systemd does with the supervisor, as systemd-run's --property= and a unit's
# [Service] alike.
SERVICE = ("Restart=on-failure", "RestartSec=1", "KillMode=mixed", "TimeoutStopSec=20")
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
# NAME.log is kept under this (NAME.json's "log_limit" may say another): a cluster runs
# for months, its agent logging each event. Past it, the log is copied to NAME.log.1
# (the one older generation kept) and emptied in place, as the process writes to it
# (O_APPEND: its next line lands at the start).
LOG_LIMIT = 8 << 20
LOG_CHECK = 1.0  # seconds between two looks at the log's size


class Failed(Exception):
    """A one-line reason, sent back to the initiator as {"error": ...}."""


def write_private(name, data, mode=0o600):
    """``data`` into ``name``, whole (written beside it, then renamed); an OSError
    names ``name``, and leaves no part of it (a full disk)."""
    temp = name + ".new"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.replace(temp, name)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise OSError(err.errno, f"cannot write {name}: {err.strerror}") from None


def read_text(name, default=None):
    try:
        with open(name) as f:
            return f.read()
    except OSError:
        return default


def alive(pid, marker):
    """``pid`` runs and its command line holds ``marker`` (a pid file may be stale)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read() and _state(pid) != "Z"
    except (OSError, ValueError):
        return False


def _state(pid):
    text = read_text(f"/proc/{pid}/stat", "")
    return text.rpartition(")")[2].split()[0] if ")" in text else ""


def pid_in(name):
    try:
        return int((read_text(name) or "").strip())
    except ValueError:
        return None


def supervisor_running(folder, name):
    pid = pid_in(os.path.join(folder, name + ".sup"))
    return pid if pid is not None and alive(pid, "supervise") else None


def supervised_state(folder, name):
    """What runs of ``name`` and how, from its files (``detached.py status``)."""

    def said(suffix):
        return (read_text(os.path.join(folder, name + suffix), "") or "").strip() or None

    pid = pid_in(os.path.join(folder, name + ".pid"))
    sup = supervisor_running(folder, name)
    return {
        "supervised": sup is not None,
        "pid": pid,
        "running": sup is not None and pid is not None and alive(pid, ""),
        "exit": said(".exit"),
        "mode": said(".mode"),
    }


def systemd_runs_here():
    """systemd is this host's init (and we are root: the system manager is ours to ask)."""
    import shutil

    return (
        os.geteuid() == 0
        and os.path.isdir("/run/systemd/system")
        and shutil.which("systemd-run") is not None
    )


def unit_name(name):
    return "mgmt-detached-" + name + ".service"


def unit_text(name, command):
    """The unit file that runs the supervisor ``command`` of NAME, now and at each boot."""

    def word(arg):  # systemd's quoting; % and $ are its specifiers and variables
        escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + escaped.replace("%", "%%").replace("$", "$$") + '"'

    after = " " + unit_name("etcd") if name == "agent" else ""  # a member first, at boot
    lines = [
        "[Unit]",
        "Description=mgmt detached cluster: " + name,
        "After=network.target" + after,
        # Never given up on: by default systemd stops restarting a unit that failed 5
        # times in 10 s, and a cluster that lives on must not end for good that way.
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "ExecStart=" + " ".join(word(arg) for arg in command),
        *SERVICE,
        "",
        "[Install]",
        "WantedBy=default.target",
    ]
    return "\n".join(lines) + "\n"


def _systemctl(*args):
    return subprocess.run(
        ["systemctl", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        universal_newlines=True,  # noqa: UP021 (text= is 3.7+)
    )  # fmt: skip


def start_supervised(folder, name, argv, stdin=None, env=None, stop_signal="TERM", umask=None):
    """Start ``argv`` under the supervisor, detached from the SSH session; its pid.
    ``umask``: the process's (None: the supervisor's, 0022 in a unit)."""

    def path(suffix):
        return os.path.join(folder, name + suffix)

    env = dict(env or {}, HOME=os.path.expanduser("~"))  # a unit starts without one
    spec = {"argv": argv, "stdin": stdin, "env": env, "stop_signal": stop_signal, "umask": umask}
    write_private(path(".json"), json.dumps(spec))
    for stale in (".exit", ".pid", ".sup", ".mode"):
        if os.path.exists(path(stale)):
            os.unlink(path(stale))
    command = [sys.executable, "-S", os.path.join(folder, "supervise.py"), name]
    if systemd_runs_here():
        unit = unit_name(name)
        _systemctl("reset-failed", unit)
        try:
            write_private(os.path.join(UNIT_DIR, unit), unit_text(name, command), mode=0o644)
            _systemctl("daemon-reload")
            starting = ["systemctl", "enable", "--now", unit]
        except OSError:  # not ours to write: for this boot only
            starting = ["systemd-run", "--unit=" + unit, "--collect", "--quiet"]
            starting += ["--property=" + line for line in SERVICE] + ["--", *command]
        done = subprocess.run(
            starting, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True,  # noqa: UP021 (text= is 3.7+)
        )  # fmt: skip
        if done.returncode != 0:
            raise Failed(f"{' '.join(starting[:2])} {unit}: {done.stdout.strip()}")
        write_private(path(".mode"), "systemd " + unit + "\n")
        deadline = time.time() + 10
        while supervisor_running(folder, name) is None:  # it writes its pid first thing
            if time.time() > deadline:
                raise Failed(f"{unit} did not start; see {path('.log')}")
            time.sleep(0.02)
        return supervisor_running(folder, name)
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=folder,
        start_new_session=True,
        close_fds=True,
    )
    write_private(path(".mode"), "setsid\n")
    write_private(path(".sup"), f"{proc.pid}\n")
    # Returned once it is known as running (exec'd as the supervisor), as a unit's
    # is above: a start asking right after (another run's, at once) must see it.
    deadline = time.time() + 10
    while supervisor_running(folder, name) is None and proc.poll() is None:
        if time.time() > deadline:
            break
        time.sleep(0.005)
    return proc.pid


def stop_supervised(folder, name):
    """Stop the supervisor (it stops its process) and wait; True if there was one."""
    sup = supervisor_running(folder, name)
    mode = (read_text(os.path.join(folder, name + ".mode"), "") or "").split()
    if mode[:1] == ["systemd"]:
        # systemd must not start it again, now or at boot: the unit is disabled and
        # stopped (SIGTERM to the supervisor, which stops its process), its file
        # removed (a transient one is gone with --collect).
        _systemctl("disable", "--now", mode[1])
        _systemctl("stop", mode[1])
        unit_file = os.path.join(UNIT_DIR, mode[1])
        if os.path.exists(unit_file):
            os.unlink(unit_file)
            _systemctl("daemon-reload")
    elif sup is not None:
        os.kill(sup, signal.SIGTERM)
        deadline = time.time() + STOP_GRACE + 5
        while alive(sup, "supervise") and time.time() < deadline:
            time.sleep(0.05)
        if alive(sup, "supervise"):
            os.kill(sup, signal.SIGKILL)
    # Read now, not before: a supervisor stopped as it started its process wrote it since.
    child = pid_in(os.path.join(folder, name + ".pid"))
    if child is not None and alive(child, ""):
        spec = json.loads(read_text(os.path.join(folder, name + ".json"), "{}") or "{}")
        if spec and alive(child, spec["argv"][0]):
            os.kill(child, signal.SIGKILL)
    return sup is not None or mode[:1] == ["systemd"]


def supervise(folder, name):
    """Run FOLDER/NAME.json's command until SIGTERM; restart it when it ends otherwise."""

    def path(suffix):
        return os.path.join(folder, name + suffix)

    write_private(path(".sup"), f"{os.getpid()}\n")
    # Output to the log, also in a unit (StandardOutput=append: needs systemd 240;
    # RHEL 8 has 239).
    log = os.open(path(".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    spec = json.loads(read_text(path(".json")))
    stop_signal = getattr(signal, "SIG" + spec["stop_signal"])
    state = {"stopping": False, "child": None, "signalled": None}

    def stop_child():
        """The stop signal to the child, once (SIGKILL after STOP_GRACE)."""
        child = state["child"]
        if child is not None and child is not state["signalled"] and child.poll() is None:
            state["signalled"] = child
            child.send_signal(stop_signal)
            signal.alarm(int(STOP_GRACE))

    def on_term(signum, frame):
        state["stopping"] = True
        stop_child()

    def on_alarm(signum, frame):
        child = state["child"]
        if child is not None and child.poll() is None:
            child.kill()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, on_alarm)
    env = dict(os.environ)
    env.update(spec["env"])
    if spec.get("umask") is not None:
        os.umask(spec["umask"])  # what the supervisor writes has modes of its own
    delay = RESTART_DELAY
    while not state["stopping"]:
        started = time.time()
        stdin = open(spec["stdin"], "rb") if spec["stdin"] else subprocess.DEVNULL  # noqa: SIM115
        try:
            state["child"] = subprocess.Popen(spec["argv"], stdin=stdin, env=env, cwd=folder)
        finally:
            if spec["stdin"]:
                stdin.close()
        # A stop that came while it started (its stdin opened, its fork and exec)
        # found no child to stop: this one would run on, waited for ever.
        if state["stopping"]:
            stop_child()
        _note(path(".pid"), "{}\n".format(state["child"].pid))
        code = _wait(state["child"], path(".log"), spec.get("log_limit") or LOG_LIMIT)
        _note(path(".exit"), f"{code}\n")
        if state["stopping"]:
            break
        # 1 s after a first quick failure, then doubling while they go on (the next
        # delay is set after this one is taken).
        delay = delay if time.time() - started < 60 else RESTART_DELAY
        _say(f"mgmt-detached: {name} ended with status {code}; restarting in {delay:.0f} s")
        end = time.time() + delay
        while not state["stopping"] and time.time() < end:
            time.sleep(0.1)
        delay = min(delay * 2, MAX_RESTART_DELAY)
    return 0


def _wait(child, log, limit):
    """``child``'s exit status, its log kept under ``limit`` meanwhile."""
    while True:
        try:
            return child.wait(timeout=LOG_CHECK)
        except subprocess.TimeoutExpired:
            _bound_log(log, limit)
            for name, text in list(_UNWRITTEN.items()):  # room again, maybe
                _note(name, text)


def _bound_log(log, limit):
    """Past ``limit``, ``log`` goes to ``log``.1 and is emptied in place (the process
    and ``tail -F``, which follows it for an initiator, keep it open; as with
    logrotate's copytruncate, a line written between the copy and the emptying is lost)."""
    try:
        if os.path.getsize(log) <= limit:
            return
        import shutil

        with open(log, "rb") as source:
            older = os.open(log + ".1.new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(older, "wb") as target:
                shutil.copyfileobj(source, target)
        os.replace(log + ".1.new", log + ".1")
        os.truncate(log, 0)
    except OSError as err:  # a full disk, say: the process runs on all the same
        if str(err) not in _SAID:  # once, not each second
            _SAID.add(str(err))
            _say(f"mgmt-detached: could not keep {log} short: {err}")


_SAID = set()
_UNWRITTEN = {}  # file -> text: what _note could not write yet


def _note(name, text):
    """One of the supervisor's files (NAME.pid, NAME.exit) written, if it can be, else
    tried again each LOG_CHECK while the process runs: on a full disk it supervises
    on (dead, nothing would start its process again, and a unit restarted at once
    would die as well, until systemd gives up)."""
    try:
        write_private(name, text)
        _UNWRITTEN.pop(name, None)
    except OSError:
        _UNWRITTEN[name] = text
        with contextlib.suppress(OSError):
            os.unlink(name + ".new")


def _say(line):
    """A line of the supervisor's own in the log, if it can be written."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(supervise(os.path.dirname(os.path.abspath(sys.argv[0])), sys.argv[1]))
