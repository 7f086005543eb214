"""The commands of a detached cluster's hosts that set it up: ``prepare``,
``probe``, ``etcd``, ``auth``, ``agent`` and ``graph`` (see detached.py, which
ships this module and runs them).

Runs on the host's Python (3.6 and later) with the standard library only (and,
for ``auth``, the bundle's mgmt package from its zip).
"""

import json
import os
import sys
import time

import detached_dir as here  # the cluster's folder on this host, and its files


def prepare(request):
    """Where things are on this host (the caches made, DIR left alone: a run stopped
    before anything started leaves nothing of a cluster)."""
    from detached_etcd import find_etcd

    for folder in (os.path.join(here.CACHE, "bundles"), os.path.join(here.CACHE, "etcd")):
        os.makedirs(folder, 0o700, exist_ok=True)  # two runs' prepare at once: both make it
    bundle = os.path.join(here.CACHE, "bundles", request["sha256"] + ".pyz")
    bundle_ok = os.path.isfile(bundle) and here.sha256_of(bundle) == request["sha256"]
    etcd = find_etcd()
    etcd_cache = None
    if request.get("etcd_sha256"):
        etcd_cache = os.path.join(here.CACHE, "etcd", request["etcd_sha256"])
        if etcd is None and os.access(etcd_cache, os.X_OK):
            etcd = etcd_cache
    connection = os.environ.get("SSH_CONNECTION", "").split()
    existing = any(here.running(n) for n in here.NAMES)
    cluster = here.cluster_record() if existing else {}
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
        "remains": not existing and os.path.isdir(here.DIR),
        "python": "{}.{}".format(*sys.version_info[:2]),
        "dir": here.DIR,
        "time": time.time(),  # this host's clock: the members' certificates must be valid by it
    }


def install_supervisor(request):
    """DIR, and in it the supervisor the request carries: the first command that
    starts a process of the cluster on this host (``etcd``, ``agent``) makes them."""
    if not os.path.isdir(here.DIR):
        os.makedirs(here.DIR, 0o700)
    with open(here.path("supervise.py.new"), "w") as f:
        f.write(request["supervisor"])
    os.replace(here.path("supervise.py.new"), here.path("supervise.py"))


def claim(request, name):
    """Before this run (``owner``) starts ``name`` (etcd, agent) here: refused if one
    runs already (another run started a cluster here since ``prepare``: its files
    would be overwritten, its process named by none), else the supervisor is
    installed and the run written down as the process's owner, so that a failed
    run's ``stop`` stops what it started alone."""
    if here.running(name):
        raise here.Failed(
            f"{name} already runs here: another `mgmt run --detach` started a cluster on "
            "this host meanwhile (`mgmt status` shows it)"
        )
    install_supervisor(request)
    here.write_private(here.path(name + ".owner"), request.get("owner") or "")


# The umask this program was started with; it runs with 0077 itself (main).
LOGIN_UMASK = 0o022


def start_supervised(name, argv, **options):
    return here.supervision().start_supervised(here.DIR, name, argv, **options)


def start_etcd(request):
    """This host's member; with ``tls`` (PEM text: ca, cert, key) its peers must
    show a certificate of the cluster's CA."""
    with here.one_at_a_time():  # from claim() until its supervisor runs
        return _start_etcd(request)


def _start_etcd(request):
    from detached_etcd import AUTO_COMPACTION

    claim(request, "etcd")
    address, tls = request["address"], request.get("tls")
    if ":" in address and not address.startswith("["):  # IPv6, as SSH_CONNECTION gives it
        address = "[" + address + "]"
    client = "http://{}:{}".format(address, request["client_port"])
    peer = "{}://{}:{}".format("https" if tls else "http", address, request["peer_port"])
    data = here.path("etcd")
    if not os.path.isdir(data):
        os.mkdir(data, 0o700)
    secure = []
    if tls:
        for name in ("ca", "cert", "key"):
            here.write_private(here.path(f"peer-{name}.pem"), tls[name])
        secure = [
            "--peer-trusted-ca-file=" + here.path("peer-ca.pem"),
            "--peer-cert-file=" + here.path("peer-cert.pem"),
            "--peer-key-file=" + here.path("peer-key.pem"),
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
        *AUTO_COMPACTION,  # for as long as the cluster lives (detached_etcd says why)
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
    deadline = time.time() + here.HEALTH_TIMEOUT
    while not healthy(url):
        if time.time() > deadline:
            peers = ", ".join(request["peer_urls"])
            raise here.Failed(
                f"the cluster's etcd at {url} has no quorum after {here.HEALTH_TIMEOUT:.0f} s: its "
                f"members must reach each other on {peers} (use --cluster-address HOST=ADDR); "
                "etcd.log: " + here.tail(here.path("etcd.log"), 3)
            )
        time.sleep(0.1)
    use_bundle(request["bundle"])
    from mgmt.settings import EtcdCredentials
    from mgmt.world.auth import enable_auth as enable

    setup = enable(url, run=EtcdCredentials(*request["run"]))
    here.write_private(here.path("root.json"), json.dumps(list(setup.root)))
    return {"ok": True, "root": list(setup.root)}  # for the other members' hosts: ``agent``


def start_agent(request):
    """The agent, once a member of the cluster answers: its graph and settings
    written, started supervised."""
    with here.one_at_a_time():  # from claim() until its supervisor runs
        return _start_agent(request)


def _start_agent(request):
    from detached_etcd import reachable

    urls = request["settings"]["seeds"]
    if reachable(urls) is None:
        raise here.Failed(
            "cannot reach the cluster's etcd at {} from here: the hosts must reach each other "
            "on these addresses (use --cluster-address HOST=ADDR)".format(", ".join(urls))
        )
    claim(request, "agent")
    if not os.path.isdir(here.path(here.GRAPHS)):
        os.mkdir(here.path(here.GRAPHS), 0o700)
    graph = here.graph_path(request["graph_name"])
    here.write_private(graph, request["graph"])
    here.write_private(here.path("launcher.py"), request["launcher"])
    here.write_private(here.path("agent.in"), "\n" + json.dumps(request["settings"]) + "\n")
    if request.get("root"):  # a member's host: members leave the cluster through it (leave)
        here.write_private(here.path("root.json"), json.dumps(request["root"]))
    state = here.path("state")
    if not os.path.isdir(state):
        os.mkdir(state, 0o700)
    bundle, build = request["bundle"], request.get("build_id") or ""
    shiv = os.path.join(here.CACHE, "shiv")
    site = f"{shiv}/{os.path.basename(bundle)}_{build}/site-packages" if build else ""
    argv = [sys.executable, "-S", here.path("launcher.py"), site, bundle, graph, state, "detached"]
    env = {"SHIV_ROOT": shiv, "PYTHONUNBUFFERED": "1"}
    here.write_private(here.path("cluster.json"), json.dumps(request["cluster"]))
    # The agent applies the graph with the login's umask, as an attached run's does.
    pid = start_supervised(
        "agent", argv, stdin=here.path("agent.in"), env=env, stop_signal="INT", umask=LOGIN_UMASK
    )
    return {"pid": pid}


def replace_graph(request):
    """A graph edit (``mgmt run --attach``): the agent reloads a whole file."""
    cluster = json.loads(here.read_text(here.path("cluster.json"), "{}") or "{}")
    if not cluster:
        raise here.Failed("no detached cluster here")
    here.write_private(here.graph_path(cluster["graph"]), request["graph"])
    return {"graph": here.graph_path(cluster["graph"])}
