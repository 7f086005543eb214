"""The hosts' side of a detached cluster: run by the initiator over SSH as
``python3 -S -c`` (its arguments: below) with one JSON object on stdin; it answers
one JSON object on stdout (``{"error": ...}`` and status 1 on failure).

Everything of the cluster lives in one directory per login user, DIR =
``~/.local/state/mgmt/detached`` (0700): the supervisor (``supervise.py``, see
there for its files: NAME.json, .log, .pid, .sup, .exit, .mode for NAME in
``agent`` and ``etcd``), the agent's graph (in ``graphs/``: its name, whatever
it is, is none of the cluster's own files), its settings (``agent.in``, 0600:
they hold the cluster's credentials), ``launcher.py``, ``cluster.json`` (what
``status`` shows), and on a member ``etcd/`` (the data), ``root.json``
(0600: the cluster's root account, on every member's host: ``leave`` needs it)
and ``peer-{ca,cert,key}.pem`` (0600: its TLS identity towards the other members).

Commands:

- ``prepare``: says where the cached bundle is (and if
  it is there, sha256 checked), which etcd binary a member would run (the
  host's, else the initiator's copy cached by sha256), the address the SSH
  connection arrived on, and whether a cluster already runs here, or left
  DIR behind when its processes all ended;
- ``probe``: before the members start, checks that this one can listen on its
  address and reach the others' peer ports (a clear error, at once, instead of
  a cluster that never gets a quorum);
- ``etcd``: starts this host's member, supervised (the request carries the
  supervisor, written to DIR/supervise.py, as ``agent``'s does);
- ``auth``: once the members have a quorum, turns auth on with the cluster's
  credentials (through the bundle's own client code, mgmt.world.auth), and
  answers the root account it made;
- ``agent``: checks that a member answers, writes the graph and settings (and on
  a member's host, the root account), starts the agent supervised;
- ``graph``: replaces the agent's graph (it reloads it);
- ``status``: the state of the agent and the member (and since when each runs),
  converged or not (and the resources that ended failed), the last log lines;
- ``leave``: before a stop of some of the cluster's hosts, their members leave
  its membership (through a member that stays), so that they do not count
  against the quorum of those that stay;
- ``stop``: stops what ``what`` names (``agent``, ``etcd``; found by their command
  lines and unit files if DIR was removed by hand), and with ``clean`` removes DIR
  (and with ``caching`` false, the cached bundle and etcd).

The program is ``python3 -S -c <this file> NAME TEXT ... COMMAND``: the modules it
imports are shipped with it as NAME TEXT pairs, detached_etcd.py (the cluster's etcd
as this host finds and reaches it) and detached_orphans.py (a cluster whose DIR was
removed by hand), and :func:`load_modules` makes them importable
(mgmt.remote.orchestration.hosts.detached_args gives the whole argument list).

Runs on the host's Python (3.6 and later) with the standard library only (and,
for ``auth`` and ``status``, the bundle's mgmt package from its zip).
"""

import json
import os
import sys
import time

# Its agent.sup is mgmt.remote.protocol.DETACHED_AGENT_SUPERVISOR (attached agents look).
DIR = os.path.join(os.path.expanduser("~"), ".local", "state", "mgmt", "detached")
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "mgmt")
HEALTH_TIMEOUT = 30.0
LOG_LINES = 10
NAMES = ("agent", "etcd")


class Failed(Exception):
    """A one-line reason, sent back as {"error": ...}."""


def path(*names):
    return os.path.join(DIR, *names)


def sha256_of(name):
    import hashlib

    digest = hashlib.sha256()
    with open(name, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def supervision():
    """DIR/supervise.py (written by ``etcd`` and ``agent``: install_supervisor), imported."""
    sys.dont_write_bytecode = True
    if DIR not in sys.path:
        sys.path.insert(0, DIR)
    import supervise

    return supervise


def running(name):
    return (
        os.path.isdir(DIR)
        and os.path.exists(path("supervise.py"))
        and (supervision().supervisor_running(DIR, name) is not None)
    )


def write_private(name, data):
    return supervision().write_private(name, data)


def read_text(name, default=None):
    try:
        with open(name) as f:
            return f.read()
    except OSError:
        return default


# -- commands ---------------------------------------------------------------


def prepare(request):
    """Where things are on this host (the caches made, DIR left alone: a run stopped
    before anything started leaves nothing of a cluster)."""
    from detached_etcd import find_etcd

    for folder in (os.path.join(CACHE, "bundles"), os.path.join(CACHE, "etcd")):
        if not os.path.isdir(folder):
            os.makedirs(folder, 0o700)
    bundle = os.path.join(CACHE, "bundles", request["sha256"] + ".pyz")
    bundle_ok = os.path.isfile(bundle) and sha256_of(bundle) == request["sha256"]
    etcd = find_etcd()
    etcd_cache = None
    if request.get("etcd_sha256"):
        etcd_cache = os.path.join(CACHE, "etcd", request["etcd_sha256"])
        if etcd is None and os.access(etcd_cache, os.X_OK):
            etcd = etcd_cache
    connection = os.environ.get("SSH_CONNECTION", "").split()
    existing = any(running(n) for n in NAMES)
    cluster = cluster_record() if existing else {}
    return {
        "bundle": bundle,
        "bundle_ok": bundle_ok,
        "etcd": etcd,
        "etcd_cache": etcd_cache,
        "etcd_copy": etcd if etcd is not None and etcd == etcd_cache else None,
        # Where the SSH connection arrived; through sudo (no SSH_CONNECTION), where
        # the initiator reached us.
        "address": connection[2] if len(connection) == 4 else request.get("address"),
        "existing": existing,
        # The hosts of the cluster that runs here (as its initiator named them).
        "cluster_hosts": cluster.get("hosts") or [],
        "cluster_host": cluster.get("host"),
        # What a cluster whose processes all ended (a reboot without systemd) left:
        # its etcd data would bring its old auth back, its log its old lines.
        "remains": not existing and os.path.isdir(DIR),
        "python": "{}.{}".format(*sys.version_info[:2]),
        "dir": DIR,
        "time": time.time(),  # this host's clock: the members' certificates must be valid by it
    }


def cluster_record():
    """DIR/cluster.json ({} if it is missing or unreadable)."""
    try:
        found = json.loads(read_text(path("cluster.json"), "") or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def install_supervisor(request):
    """DIR, and in it the supervisor the request carries: the first command that
    starts a process of the cluster on this host (``etcd``, ``agent``) makes them."""
    if not os.path.isdir(DIR):
        os.makedirs(DIR, 0o700)
    with open(path("supervise.py.new"), "w") as f:
        f.write(request["supervisor"])
    os.replace(path("supervise.py.new"), path("supervise.py"))


def claim(request, name):
    """Before this run (``owner``) starts ``name`` (etcd, agent) here: refused if one
    runs already (another run started a cluster here since ``prepare``: its files
    would be overwritten, its process named by none), else the supervisor is
    installed and the run written down as the process's owner, so that a failed
    run's ``stop`` stops what it started alone."""
    if running(name):
        raise Failed(
            f"{name} already runs here: another `mgmt run --detach` started a cluster on "
            "this host meanwhile (`mgmt status` shows it)"
        )
    install_supervisor(request)
    write_private(path(name + ".owner"), request.get("owner") or "")


# The umask this program was started with; it runs with 0077 itself (main).
LOGIN_UMASK = 0o022


def start_supervised(name, argv, **options):
    return supervision().start_supervised(DIR, name, argv, **options)


def start_etcd(request):
    """This host's member; with ``tls`` (PEM text: ca, cert, key) its peers must
    show a certificate of the cluster's CA."""
    claim(request, "etcd")
    address, tls = request["address"], request.get("tls")
    client = "http://{}:{}".format(address, request["client_port"])
    peer = "{}://{}:{}".format("https" if tls else "http", address, request["peer_port"])
    data = path("etcd")
    if not os.path.isdir(data):
        os.mkdir(data, 0o700)
    secure = []
    if tls:
        for name in ("ca", "cert", "key"):
            write_private(path(f"peer-{name}.pem"), tls[name])
        secure = [
            "--peer-trusted-ca-file=" + path("peer-ca.pem"),
            "--peer-cert-file=" + path("peer-cert.pem"),
            "--peer-key-file=" + path("peer-key.pem"),
            "--peer-client-cert-auth",
        ]
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
        *secure,
    ]
    return {"pid": start_supervised("etcd", argv), "client_url": client}


def probe(request):
    """Before the members start: this one can listen on its address, and it reaches
    the others' peer ports."""
    from detached_etcd import probe_peers

    others = [tuple(other) for other in request["others"]]
    probe_peers(request["address"], request["ports"], others, request.get("timeout", 5.0))
    return {"ok": True}


def enable_auth(request):
    from detached_etcd import healthy, use_bundle

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
    return {"ok": True, "root": list(setup.root)}  # for the other members' hosts: ``agent``


def start_agent(request):
    from detached_etcd import reachable

    urls = request["settings"]["seeds"]
    if reachable(urls) is None:
        raise Failed(
            "cannot reach the cluster's etcd at {} from here: the hosts must reach each other "
            "on these addresses (use --cluster-address HOST=ADDR)".format(", ".join(urls))
        )
    claim(request, "agent")
    if not os.path.isdir(path(GRAPHS)):
        os.mkdir(path(GRAPHS), 0o700)
    graph = graph_path(request["graph_name"])
    write_private(graph, request["graph"])
    write_private(path("launcher.py"), request["launcher"])
    write_private(path("agent.in"), "\n" + json.dumps(request["settings"]) + "\n")
    if request.get("root"):  # a member's host: members leave the cluster through it (leave)
        write_private(path("root.json"), json.dumps(request["root"]))
    state = path("state")
    if not os.path.isdir(state):
        os.mkdir(state, 0o700)
    bundle, build = request["bundle"], request.get("build_id") or ""
    shiv = os.path.join(CACHE, "shiv")
    site = f"{shiv}/{os.path.basename(bundle)}_{build}/site-packages" if build else ""
    argv = [sys.executable, "-S", path("launcher.py"), site, bundle, graph, state, "detached"]
    env = {"SHIV_ROOT": shiv, "PYTHONUNBUFFERED": "1"}
    write_private(path("cluster.json"), json.dumps(request["cluster"]))
    # The agent applies the graph with the login's umask, as an attached run's does.
    pid = start_supervised(
        "agent", argv, stdin=path("agent.in"), env=env, stop_signal="INT", umask=LOGIN_UMASK
    )
    return {"pid": pid}


def replace_graph(request):
    """A graph edit (``mgmt run --attach``): the agent reloads a whole file."""
    cluster = json.loads(read_text(path("cluster.json"), "{}") or "{}")
    if not cluster:
        raise Failed("no detached cluster here")
    write_private(graph_path(cluster["graph"]), request["graph"])
    return {"graph": graph_path(cluster["graph"])}


GRAPHS = "graphs"


def graph_path(name):
    """Where the agent's graph ``name`` is kept: DIR/graphs/NAME (DIR/NAME in a cluster
    started before that folder was: a graph named as one of the cluster's files,
    ``cluster.json``, ``agent.json``, took its place)."""
    folder = path(GRAPHS)
    return os.path.join(folder, name) if os.path.isdir(folder) else path(name)


def tail(name, lines=LOG_LINES, chunk=64 * 1024):
    """The last ``lines`` of the log ``name``, from its end alone (it may be megabytes),
    with those of ``name``.1 before them when it has fewer (just emptied by the
    supervisor, which keeps it short)."""
    found = []
    for part in (name, name + ".1"):
        try:
            with open(part, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - chunk))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        found = text.splitlines()[-(lines - len(found)) :] + found
        if len(found) >= lines:
            break
    return "\n".join(found[-lines:])


def status(request):
    """What runs here, also when part of DIR is gone (removed by hand): a cluster
    whose cluster.json is missing but whose processes run is still shown."""
    from detached_etcd import convergence, healthy

    if not os.path.exists(path("cluster.json")) and not any(running(n) for n in NAMES):
        return {"exists": False}
    cluster = cluster_record()
    found = {"exists": True, "cluster": cluster, "dir": DIR}
    for name in NAMES:
        found[name] = supervision().supervised_state(DIR, name)
        try:  # NAME.pid is written at each start of the process: when it last started
            found[name]["since"] = os.path.getmtime(path(name + ".pid"))
        except OSError:
            found[name]["since"] = None
    try:  # agent.in: an empty line, then the agent's settings
        settings = json.loads((read_text(path("agent.in"), "") or "").splitlines()[1])
    except (IndexError, ValueError):
        settings = None
    member = cluster.get("member_url")
    found["etcd"]["health"] = healthy(member) if member else None
    found["converged"], found["failed"] = (
        convergence(settings, cluster.get("bundle", "")) if settings else (None, [])
    )
    found["log"] = tail(path("agent.log"))
    try:
        found["log_size"] = os.path.getsize(path("agent.log"))
    except OSError:
        found["log_size"] = 0
    return found


def leave(request):
    """The members at the client URLs ``leaving`` removed from the cluster's membership,
    one at a time, through those that stay, with the root account this member's
    host holds (through the bundle's own client code): those whose etcd does not
    answer first, so that each removal leaves a membership whose running members
    are a quorum of it. The membership is asked of this host's member (it still
    runs), else of ``staying`` (the cluster's record: members that left before are
    in it still); ``members``: the client URLs of the members it had then."""
    from detached_etcd import healthy, use_bundle

    root = json.loads(read_text(path("root.json"), "null") or "null")
    if not root:
        raise Failed("no root account of the cluster here ({})".format(path("root.json")))
    cluster = cluster_record()
    use_bundle(cluster.get("bundle", ""))
    from mgmt.settings import EtcdCredentials
    from mgmt.world.client import EtcdClient

    def client(urls):
        return EtcdClient(urls, EtcdCredentials(*root), read_timeout=10.0)

    asked = client([u for u in [cluster.get("member_url")] if u] + request["staying"])
    try:
        members = asked.call("cluster/member/list", {}).get("members", [])
    finally:
        asked.close()
    now = [url for m in members for url in m.get("clientURLs") or []]
    leaving = [m for m in members if set(m.get("clientURLs") or []) & set(request["leaving"])]
    staying = [url for m in members if m not in leaving for url in m.get("clientURLs") or []]
    if not staying:  # the others left before: none to leave
        return {"removed": [], "members": now}
    leaving.sort(key=lambda m: healthy(m["clientURLs"][0]))
    removed = []
    remover = client(staying)
    try:
        for member in leaving:
            deadline = time.time() + HEALTH_TIMEOUT
            while True:  # a member removed may have led the cluster: it elects another
                try:
                    remover.call("cluster/member/remove", {"ID": member["ID"]})
                    break
                except Exception as err:
                    if time.time() > deadline:  # those removed are said all the same
                        why = "removing {}: {}".format(member.get("name"), err)
                        return {"removed": removed, "members": now, "not_removed": why}
                    time.sleep(0.5)
            removed.extend(member["clientURLs"])
    finally:
        remover.close()
    return {"removed": removed, "members": now}


def stop(request):
    if not os.path.isdir(DIR):  # removed by hand: its processes are found otherwise
        from detached_orphans import stop_orphaned

        return {"stopped": [name for name in request["what"] if stop_orphaned(DIR, name)]}
    # With ``owner`` (a run that failed before its hand-over): what that run started alone.
    owner = request.get("owner")
    what = [n for n in request["what"] if owner in (None, read_text(path(n + ".owner")))]
    stopped = [name for name in what if supervision().stop_supervised(DIR, name)]
    cluster = cluster_record()
    root = os.path.exists(path("root.json"))
    if request.get("clean") and (owner is None or not any(running(n) for n in NAMES)):
        import shutil

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
    return {
        "stopped": stopped,
        "cluster_hosts": cluster.get("hosts") or [],
        "cluster_host": cluster.get("host"),
        "cluster_members": cluster.get("members") or [],  # client URLs, of its first hosts
        "root": root,  # this host can remove members (leave)
    }


COMMANDS = {
    "prepare": prepare,
    "probe": probe,
    "etcd": start_etcd,
    "auth": enable_auth,
    "agent": start_agent,
    "graph": replace_graph,
    "status": status,
    "stop": stop,
    "leave": leave,
}


def load_modules(shipped):
    """Make the modules shipped with this program importable: ``shipped`` is NAME,
    TEXT, NAME, TEXT ... (their texts as arguments: a program run as ``-c`` has no
    folder of its own to import them from)."""
    for name, text in zip(shipped[::2], shipped[1::2]):
        module = type(sys)(name)
        module.__file__ = name + ".py"  # what a traceback names
        exec(compile(text, module.__file__, "exec"), module.__dict__)
        sys.modules[name] = module


def main():
    global LOGIN_UMASK
    *shipped, command = sys.argv[1:]
    load_modules(shipped)
    LOGIN_UMASK = os.umask(0o077)
    try:
        request = json.loads(sys.stdin.readline() or "{}")
        if command in COMMANDS:
            answer = COMMANDS[command](request)
        else:
            raise Failed(f"unknown command {command!r}")
    except Exception as err:
        if type(err).__name__ == "Failed":  # ours or supervise.py's: a reason
            answer = {"error": str(err)}
        else:  # a bug or an OS error: one line for the initiator
            answer = {"error": f"{type(err).__name__}: {err}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    sys.exit(1 if "error" in answer else 0)


if __name__ == "__main__":
    main()
