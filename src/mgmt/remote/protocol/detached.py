"""The hosts' side of a detached cluster: run by the initiator over SSH as
``python3 -S -c <this file> <this file> COMMAND`` with one JSON object on stdin;
it answers one JSON object on stdout (``{"error": ...}`` and status 1 on failure).

Everything of the cluster lives in one directory per login user, DIR =
``~/.local/state/mgmt/detached`` (0700): this program (``detached.py``), the
agent's graph, its settings (``agent.in``, 0600: they hold the cluster's
credentials), ``launcher.py``, and for each supervised process NAME (``agent``,
``etcd``): ``NAME.json`` (what to run), ``NAME.log``, ``NAME.pid`` (the
process), ``NAME.sup`` (its supervisor), ``NAME.exit`` (its last status). A
member also keeps ``etcd/`` (the data) and ``root.json`` (0600: the cluster's
root account).

Commands:

- ``prepare``: writes DIR/detached.py, says where the cached bundle is (and if
  it is there, sha256 checked), which etcd binary a member would run (the
  host's, else the initiator's copy cached by sha256), the address the SSH
  connection arrived on, and whether a cluster already runs here;
- ``etcd``: starts this host's member, supervised;
- ``auth``: once the members have a quorum, turns auth on with the cluster's
  credentials (through the bundle's own client code, mgmt.world.auth);
- ``agent``: checks that a member answers, writes the graph and settings,
  starts the agent supervised;
- ``graph``: replaces the agent's graph (it reloads it);
- ``status``: the state of the agent and the member, converged or not, the
  last log lines;
- ``stop``: stops what ``what`` names (``agent``, ``etcd``), and with
  ``clean`` removes DIR (and with ``caching`` false, the cached bundle and etcd);
- ``supervise NAME`` (not from the initiator): runs DIR/NAME.json's command
  until told to stop, restarting it when it fails; it runs as a transient
  systemd unit (``systemd-run``, Restart=on-failure) when systemd is the
  host's init and we are root, else in a session of its own (setsid), so that
  it outlives the SSH session that started it.

Runs on the host's Python (3.6 and later) with the standard library only (and,
for ``auth`` and ``status``, the bundle's mgmt package from its zip).
"""

import json
import os
import signal
import subprocess
import sys
import time

DIR = os.path.join(os.path.expanduser("~"), ".local", "state", "mgmt", "detached")
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mgmt")
ETCD_PATHS = ("/usr/bin/etcd", "/usr/sbin/etcd", "/usr/local/bin/etcd")
STOP_GRACE = 10.0  # SIGINT (agent) or SIGTERM (etcd), then SIGKILL
RESTART_DELAY = 1.0  # after a failure; doubled while it keeps failing at once, up to 30 s
HEALTH_TIMEOUT = 30.0
LOG_LINES = 10
NAMES = ("agent", "etcd")


class Failed(Exception):
    """A one-line reason, sent back as {"error": ...}."""


def path(*names):
    return os.path.join(DIR, *names)


def write_private(name, data, mode=0o600):
    """``data`` into ``name``, whole (written beside it, then renamed)."""
    temp = name + ".new"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    os.replace(temp, name)


def read_text(name, default=None):
    try:
        with open(name) as f:
            return f.read()
    except OSError:
        return default


def sha256_of(name):
    import hashlib

    digest = hashlib.sha256()
    with open(name, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def supervisor_running(name):
    pid = pid_in(path(name + ".sup"))
    return pid if pid is not None and alive(pid, "supervise") else None


# -- commands ---------------------------------------------------------------


def prepare(request, program):
    """Where things are on this host; writes this program into DIR."""
    for folder in (DIR, os.path.join(CACHE, "bundles"), os.path.join(CACHE, "etcd")):
        if not os.path.isdir(folder):
            os.makedirs(folder, 0o700)
    write_private(path("detached.py"), program)
    bundle = os.path.join(CACHE, "bundles", request["sha256"] + ".pyz")
    bundle_ok = os.path.isfile(bundle) and sha256_of(bundle) == request["sha256"]
    etcd = None
    for candidate in ETCD_PATHS:
        if os.access(candidate, os.X_OK):
            etcd = candidate
            break
    etcd_cache = None
    if request.get("etcd_sha256"):
        etcd_cache = os.path.join(CACHE, "etcd", request["etcd_sha256"])
        if etcd is None and os.access(etcd_cache, os.X_OK):
            etcd = etcd_cache
    connection = os.environ.get("SSH_CONNECTION", "").split()
    return {
        "bundle": bundle,
        "bundle_ok": bundle_ok,
        "etcd": etcd,
        "etcd_cache": etcd_cache,
        "address": connection[2] if len(connection) == 4 else None,
        "existing": any(supervisor_running(n) for n in NAMES),
        "python": "{}.{}".format(*sys.version_info[:2]),
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


def start_supervised(name, argv, stdin=None, env=None, stop_signal="TERM"):
    """Start ``argv`` under ``supervise NAME``, detached from the SSH session: a
    transient systemd unit when systemd runs the host (restarted if the supervisor
    itself dies), else a session of its own (setsid)."""
    env = dict(env or {}, HOME=os.path.expanduser("~"))  # a unit starts without one
    spec = {"argv": argv, "stdin": stdin, "env": env, "stop_signal": stop_signal}
    write_private(path(name + ".json"), json.dumps(spec))
    for stale in (".exit", ".pid", ".sup", ".mode"):
        if os.path.exists(path(name + stale)):
            os.unlink(path(name + stale))
    command = [sys.executable, "-S", path("detached.py"), "supervise", name]
    if systemd_runs_here():
        unit = unit_name(name)
        subprocess.run(["systemctl", "reset-failed", unit], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        done = subprocess.run(
            ["systemd-run", "--unit=" + unit, "--collect", "--quiet",
             "--property=Restart=on-failure", "--property=RestartSec=1",
             "--property=KillMode=mixed", "--property=TimeoutStopSec=20",
             "--", *command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True,  # noqa: UP021 (text= is 3.7+)
        )  # fmt: skip
        if done.returncode != 0:
            raise Failed(f"systemd-run {unit}: {done.stdout.strip()}")
        write_private(path(name + ".mode"), "systemd " + unit + "\n")
        deadline = time.time() + 10
        while supervisor_running(name) is None:  # it writes its own pid first thing
            if time.time() > deadline:
                raise Failed(f"{unit} did not start: " + tail(path(name + ".log"), 3))
            time.sleep(0.02)
        return supervisor_running(name)
    log = open(path(name + ".log"), "ab")  # noqa: SIM115 (closed once the child has it)
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=DIR,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    write_private(path(name + ".mode"), "setsid\n")
    write_private(path(name + ".sup"), f"{proc.pid}\n")
    return proc.pid


def start_etcd(request):
    address = request["address"]
    client = "http://{}:{}".format(address, request["client_port"])
    peer = "http://{}:{}".format(address, request["peer_port"])
    data = path("etcd")
    if not os.path.isdir(data):
        os.mkdir(data, 0o700)
    argv = [
        request["binary"],
        "--name=" + request["name"],
        "--data-dir=" + data,
        "--listen-client-urls=" + client,
        "--advertise-client-urls=" + client,
        "--listen-peer-urls=" + peer,
        "--initial-advertise-peer-urls=" + peer,
        "--initial-cluster="
        + ",".join("{}={}".format(*m) for m in sorted(request["peers"].items())),
        "--initial-cluster-state=new",
        "--initial-cluster-token=" + request["token"],
        "--max-txn-ops=100000",  # all of a host's exports in one transaction
    ]
    return {"pid": start_supervised("etcd", argv), "client_url": client}


def healthy(url, timeout=1.0):
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/health", timeout=timeout) as answer:
            return b'"true"' in answer.read()
    except Exception:  # refused, timed out, not HTTP: not healthy
        return False


def use_bundle(bundle):
    """The bundle's mgmt package, imported from its zip (the agent's own client code)."""
    site = bundle + "/site-packages"
    if site not in sys.path:
        sys.path.insert(0, site)


def enable_auth(request):
    url = request["client_url"]
    deadline = time.time() + HEALTH_TIMEOUT
    while not healthy(url):
        if time.time() > deadline:
            peers = ", ".join(request["peer_urls"])
            raise Failed(
                f"the cluster's etcd at {url} has no quorum after {HEALTH_TIMEOUT:.0f} s: its "
                f"members must reach each other on {peers} (use --cluster-address HOST=ADDR); "
                "etcd.log: " + tail(path("etcd.log"), 3)
            )
        time.sleep(0.1)
    use_bundle(request["bundle"])
    from mgmt.settings import EtcdCredentials
    from mgmt.world.auth import enable_auth as enable

    setup = enable(url, run=EtcdCredentials(*request["run"]))
    write_private(path("root.json"), json.dumps(list(setup.root)))
    return {"ok": True}


def reachable(urls, timeout=3.0):
    """The first of ``urls`` that accepts a TCP connection, or None."""
    import socket

    deadline = time.time() + timeout
    while True:
        for url in urls:
            host, _, port = url.split("://", 1)[1].rpartition(":")
            try:
                socket.create_connection((host, int(port)), 0.5).close()
                return url
            except (OSError, ValueError):
                continue
        if time.time() > deadline:
            return None
        time.sleep(0.1)


def start_agent(request):
    urls = request["settings"]["seeds"]
    if reachable(urls) is None:
        raise Failed(
            "cannot reach the cluster's etcd at {} from here: the hosts must reach each other "
            "on these addresses (use --cluster-address HOST=ADDR)".format(", ".join(urls))
        )
    graph = path(request["graph_name"])
    write_private(graph, request["graph"])
    write_private(path("launcher.py"), request["launcher"])
    write_private(path("agent.in"), "\n" + json.dumps(request["settings"]) + "\n")
    state = path("state")
    if not os.path.isdir(state):
        os.mkdir(state, 0o700)
    bundle, build = request["bundle"], request.get("build_id") or ""
    shiv = os.path.join(CACHE, "shiv")
    site = f"{shiv}/{os.path.basename(bundle)}_{build}/site-packages" if build else ""
    argv = [sys.executable, "-S", path("launcher.py"), site, bundle, graph, state]
    env = {"SHIV_ROOT": shiv, "PYTHONUNBUFFERED": "1"}
    write_private(path("cluster.json"), json.dumps(request["cluster"]))
    pid = start_supervised("agent", argv, stdin=path("agent.in"), env=env, stop_signal="INT")
    return {"pid": pid}


def replace_graph(request):
    """A graph edit (``mgmt run --attach``): the agent reloads a whole file."""
    cluster = json.loads(read_text(path("cluster.json"), "{}") or "{}")
    if not cluster:
        raise Failed("no detached cluster here")
    write_private(path(cluster["graph"]), request["graph"])
    return {"graph": path(cluster["graph"])}


def tail(name, lines=LOG_LINES):
    text = read_text(name, "")
    return "\n".join(text.splitlines()[-lines:])


def converged(settings, bundle):
    """This host's converged key in the cluster's etcd (None if it cannot be read)."""
    try:
        use_bundle(bundle)
        from mgmt.settings import EtcdCredentials
        from mgmt.world.client import EtcdClient

        client = EtcdClient(settings["seeds"], EtcdCredentials(*settings["credentials"]),
                            connect_timeout=1.0, read_timeout=2.0)  # fmt: skip
        try:
            _, items = client.range("/_mgmt/converged/" + settings["hostname"])
        finally:
            client.close()
    except Exception:  # etcd away, bundle pruned: unknown
        return None
    return bool(items) and items[0][1].strip() == "true"


def status(request):
    if not os.path.isdir(DIR) or not os.path.exists(path("cluster.json")):
        return {"exists": False}
    cluster = json.loads(read_text(path("cluster.json"), "{}"))
    found = {"exists": True, "cluster": cluster, "dir": DIR}
    for name in NAMES:
        pid = pid_in(path(name + ".pid"))
        sup = supervisor_running(name)
        found[name] = {
            "supervised": sup is not None,
            "pid": pid,
            "running": sup is not None and pid is not None and alive(pid, ""),
            "exit": (read_text(path(name + ".exit"), "") or "").strip() or None,
            "mode": (read_text(path(name + ".mode"), "") or "").strip() or None,
        }
    settings_line = (read_text(path("agent.in"), "\n\n") or "\n\n").splitlines()[1]
    settings = json.loads(settings_line)
    member = cluster.get("member_url")
    found["etcd"]["health"] = healthy(member) if member else None
    found["converged"] = converged(settings, cluster.get("bundle", ""))
    found["log"] = tail(path("agent.log"))
    return found


def stop_supervised(name):
    """SIGTERM the supervisor (it stops its process, SIGKILL after STOP_GRACE) and wait."""
    sup = supervisor_running(name)
    child = pid_in(path(name + ".pid"))
    mode = (read_text(path(name + ".mode"), "") or "").split()
    if mode[:1] == ["systemd"]:
        # systemd must not restart it: the unit is stopped (SIGTERM to the supervisor,
        # which stops its process), and it is gone with --collect.
        subprocess.run(["systemctl", "stop", mode[1]], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
    elif sup is not None:
        os.kill(sup, signal.SIGTERM)
        deadline = time.time() + STOP_GRACE + 5
        while alive(sup, "supervise") and time.time() < deadline:
            time.sleep(0.05)
        if alive(sup, "supervise"):
            os.kill(sup, signal.SIGKILL)
    if child is not None and alive(child, ""):
        spec = json.loads(read_text(path(name + ".json"), "{}") or "{}")
        if spec and alive(child, spec["argv"][0]):
            os.kill(child, signal.SIGKILL)
    return sup is not None or mode[:1] == ["systemd"]


def stop(request):
    if not os.path.isdir(DIR):
        return {"stopped": []}
    stopped = [name for name in request["what"] if stop_supervised(name)]
    if request.get("clean"):
        import shutil

        cluster = json.loads(read_text(path("cluster.json"), "{}") or "{}")
        shutil.rmtree(DIR, True)
        parent = os.path.dirname(DIR)
        for _ in range(3):  # state/mgmt, state, .local: only if we left them empty
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)
        if not request.get("caching", True):
            for cached in (cluster.get("bundle"), cluster.get("etcd_copy")):
                if cached and os.path.exists(cached):
                    os.unlink(cached)
            if cluster.get("bundle"):
                import glob

                name = os.path.basename(cluster["bundle"])
                for unpacked in glob.glob(os.path.join(CACHE, "shiv", name + "_*")):
                    shutil.rmtree(unpacked, True)
    return {"stopped": stopped}


# -- the supervisor -----------------------------------------------------------


def supervise(name):
    """Run DIR/NAME.json's command until SIGTERM; restart it when it ends otherwise."""
    write_private(path(name + ".sup"), f"{os.getpid()}\n")
    # Output to the log, also in a unit (StandardOutput=append: needs systemd 240;
    # RHEL 8 has 239).
    log = os.open(path(name + ".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    spec = json.loads(read_text(path(name + ".json")))
    stop_signal = getattr(signal, "SIG" + spec["stop_signal"])
    state = {"stopping": False, "child": None}

    def on_term(signum, frame):
        state["stopping"] = True
        child = state["child"]
        if child is not None and child.poll() is None:
            child.send_signal(stop_signal)
            signal.alarm(int(STOP_GRACE))

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
    delay = RESTART_DELAY
    while not state["stopping"]:
        started = time.time()
        stdin = open(spec["stdin"], "rb") if spec["stdin"] else subprocess.DEVNULL  # noqa: SIM115
        try:
            state["child"] = subprocess.Popen(spec["argv"], stdin=stdin, env=env, cwd=DIR)
        finally:
            if spec["stdin"]:
                stdin.close()
        write_private(path(name + ".pid"), "{}\n".format(state["child"].pid))
        code = state["child"].wait()
        write_private(path(name + ".exit"), f"{code}\n")
        if state["stopping"]:
            break
        delay = RESTART_DELAY if time.time() - started > 60 else min(delay * 2, 30.0)
        sys.stdout.write(f"mgmt-detached: {name} ended with status {code}; "
                         f"restarting in {delay:.0f} s\n")  # fmt: skip
        sys.stdout.flush()
        end = time.time() + delay
        while not state["stopping"] and time.time() < end:
            time.sleep(0.1)
    return 0


COMMANDS = {
    "etcd": start_etcd,
    "auth": enable_auth,
    "agent": start_agent,
    "graph": replace_graph,
    "status": status,
    "stop": stop,
}


def main():
    if sys.argv[1:2] == ["supervise"]:
        global DIR
        DIR = os.path.dirname(os.path.abspath(sys.argv[0]))  # HOME may be unset in a unit
        sys.exit(supervise(sys.argv[2]))
    program, command = sys.argv[1], sys.argv[2]
    os.umask(0o077)
    try:
        request = json.loads(sys.stdin.readline() or "{}")
        if command == "prepare":
            answer = prepare(request, program)
        elif command in COMMANDS:
            answer = COMMANDS[command](request)
        else:
            raise Failed(f"unknown command {command!r}")
    except Failed as err:
        answer = {"error": str(err)}
    except Exception as err:  # a bug or an OS error: one line for the initiator
        answer = {"error": f"{type(err).__name__}: {err}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    sys.exit(1 if "error" in answer else 0)


if __name__ == "__main__":
    main()
