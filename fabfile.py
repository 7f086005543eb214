"""``fab deploy``: run a graph on hosts over SSH, the way ``mgmt run --remote`` does.

    fab -H web1,web2 deploy --graph site.yaml            # the same graph on each host
    fab deploy --graph remote2a.yaml --graph remote2b.yaml   # each graph's remote: key

A thin layer over :func:`mgmt.remote.run_remotes`: the same sessions, trust,
bundle cache, tunnels and convergence. Fabric's conventions apply as usual:
hosts and aliases from ~/.ssh/config, fabric.yaml, ``-i KEY``,
``--prompt-for-login-password``, ``-S ssh_config``, and for sudo
``--prompt-for-sudo-password`` or ``sudo.password`` / ``sudo.user`` in the
config (fabric.yaml, ``-f FILE``): ``fab -H alice@web1 --prompt-for-sudo-password
deploy --sudo --graph site.yaml`` runs the agent as root, exactly as
``mgmt run --remote --sudo --ask-sudo-password`` does (the same code path).

Fabric runs a task once per -H host, one after another; we want one run with
every host at once (they exchange resources through the run's etcd), so
``deploy`` only records each host and the run happens once, in its post-task.
The bundle is (re)built into dist/mgmt when it is missing or older than the
agent's sources, unless $MGMT_BUNDLE names one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from fabric import Connection, task
from invoke import Context
from invoke.exceptions import Exit

if TYPE_CHECKING:
    from mgmt.remote.hostspec import HostSpec

HERE = Path(__file__).resolve().parent
# This checkout's mgmt and mgmt-pkg first: what the staleness check reads is what
# the bundle is built from (and what runs the hosts). Fabric puts only this folder
# on the path, so the installed mgmt was used: a release, or another checkout's
# editable install, and the edits checked here never reached a host.
if (HERE / "src" / "mgmt").is_dir() and str(HERE / "src") not in sys.path:
    sys.path.insert(0, str(HERE / "src"))
BUNDLE = HERE / "dist" / "mgmt"
SOURCES = HERE / "src" / "mgmt"
NO_GRAPH = "deploy: give --graph FILE"
# mgmt-pkg's files that decide what the bundle holds (PyYAML's pin, what is left
# out): mgmt.remote.orchestration.bundlefile.RECIPE, counted as sources here too.
RECIPE = tuple(HERE / "src" / "mgmt_pkg" / name for name in ("bundle.py", "minify.py"))

# Fabric calls a task once per -H host, so deploy gathers them here for the one
# run in its post-task; nothing else keeps state between tasks.
_hosts: List[Connection] = []
_options: dict = {}


def bundle_is_stale(
    bundle: Path = BUNDLE, sources: Path = SOURCES, recipe: Tuple[Path, ...] = RECIPE
) -> bool:
    """Missing, or older than any source file of the agent or the recipe that
    bundles it (make's rule): a new PyYAML pin left the old one in dist/mgmt.
    Every file, not only *.py: the bundle ships the shell programs (start.sh,
    findpython.sh) that a `via:` secondary sends on; not __pycache__, which
    any import of the sources rewrites."""
    if not bundle.is_file():
        return True
    built = bundle.stat().st_mtime
    shipped = (p for p in sources.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files = [*shipped, *(p for p in recipe if p.is_file())]
    return any(p.stat().st_mtime > built for p in files)


def ensure_bundle() -> Path:
    """$MGMT_BUNDLE if set, else dist/mgmt, rebuilt first when stale."""
    if os.environ.get("MGMT_BUNDLE"):
        return Path(os.environ["MGMT_BUNDLE"])
    if bundle_is_stale():
        from mgmt_pkg.bundle import build_bundle
        from mgmt_pkg.errors import MgmtPkgError

        print(f"deploy: building {BUNDLE.relative_to(HERE)} (stale or missing)")
        try:
            info = build_bundle(BUNDLE)
        except MgmtPkgError as err:  # mgmt-pkg's errors are no MgmtError: a traceback
            raise Exit(f"deploy: error: {err}", code=err.exit_code) from None
        except KeyboardInterrupt:  # Invoke would exit 1, in silence: a stop is 130
            raise Exit("deploy: interrupted while building the bundle (nothing written)",
                       code=130) from None  # fmt: skip
        print(f"deploy: bundle {info.size} bytes, sha256 {info.sha256}")
    return BUNDLE


def _run(c: Context, graphs: List[str], connections: List[Connection]) -> None:
    from mgmt import log
    from mgmt.errors import MgmtError
    from mgmt.flag_rules import check_graph_file, check_settings
    from mgmt.remote import run_remotes
    from mgmt.remote.hostspec import load_remotes
    from mgmt.settings import Settings

    if not graphs:  # deploy says so without -H; with -H, mgmt run's words came, not ours
        raise Exit(NO_GRAPH, code=2)
    options = dict(_options)
    log.setup(options["verbosity"])
    # Fabric's sudo conventions: the user from its config unless --sudo-user says.
    sudo = c.config.get("sudo", {})
    if options["sudo"] and not options["sudo_user"] and sudo.get("user"):
        options["sudo_user"] = sudo["user"]
    specs: Optional[List[HostSpec]] = None
    try:
        for name in ("converged_timeout", "cconns", "lost_timeout"):
            options[name] = _number(name, options[name])
        settings = Settings(remotes=[Path(g) for g in graphs], tmp_prefix=True, **options)
        # mgmt run's checks, and every graph read, before a bundle is built or a host reached.
        check_settings(settings, {"remotes"})
        for graph in graphs:
            check_graph_file("--graph", graph)
        if connections:
            if len(graphs) != 1:
                raise Exit("deploy: with -H give exactly one --graph (run on every host)", code=2)
            specs = _specs(Path(graphs[0]), connections)
        else:
            load_remotes(settings.remotes)
        code = run_remotes(
            settings,
            fabric_config=c.config,
            bundle=ensure_bundle(),
            specs=specs,
            sudo_password=sudo.get("password"),  # --prompt-for-sudo-password, sudo.password
        )
    except MgmtError as err:
        raise Exit(f"deploy: error: {err}", code=err.exit_code) from None
    if code:
        raise Exit(code=code)


def _number(name: str, text: str) -> int:
    """A number option as typed (invoke would turn an int default's bad value into a
    traceback); its range is checked with mgmt run's (mgmt.flag_rules)."""
    from mgmt.errors import InputError

    try:
        return int(text)
    except ValueError:
        flag = "--" + name.replace("_", "-")
        raise InputError(f"{flag} {text!r}: not a whole number") from None


def _specs(graph: Path, connections: List[Connection]) -> List[HostSpec]:
    """-H hosts running one graph: its sudo: and python: keys apply to each."""
    from mgmt.errors import InputError
    from mgmt.graph.parse import load_graph
    from mgmt.remote.hostspec import HostSpec

    for cx in connections:
        # Fabric takes any number for a port: 99999 was tried, and failed that host
        # as "Connection refused"; mgmt run refuses it in a remote: key up front.
        if not 0 < cx.port < 65536:
            raise InputError(f"-H {cx.user}@{cx.original_host}:{cx.port}: invalid port (1-65535)")
    keys = load_graph(graph)
    specs = [
        HostSpec(
            target=cx.original_host,
            graph=graph,
            user=cx.user,
            port=cx.port,
            sudo=keys.sudo,
            python=keys.python,
        )
        for cx in connections
    ]
    # One host given twice (-H a,a) runs once, as one graph given twice does: two
    # agents would fight over its resources.
    unique: Dict[Tuple, HostSpec] = {}
    for spec in specs:
        unique.setdefault((spec.target, spec.user, spec.port), spec)
    return list(unique.values())


@task
def _deploy_all(c):
    """Runs once, after deploy was called for every -H host."""
    graphs = _options.pop("graphs", [])
    hosts = list(_hosts)
    _hosts.clear()  # one run per `fab` invocation, even if a program calls it twice
    _run(c, graphs, hosts)


@task(
    iterable=["graph"],
    post=[_deploy_all],
    help={
        "graph": "graph file (with -H: one graph run on every host; without: each one's remote:)",
        "converged-timeout": "end once all hosts were idle this many seconds (-1: run until ^C)",
        "cconns": "at most this many hosts at once (0: all)",
        "no-caching": "do not keep the agent bundle on the hosts",
        "noop": "report what would change, change nothing",
        "ssh-accept-new": "add unknown host keys to known_hosts (a changed key is refused)",
        "lost-timeout": "report a host that answers no SSH keepalive for this long as lost",
        "sudo": "run the agent as root through sudo (password: --prompt-for-sudo-password)",
        "sudo-user": "with --sudo: run the agent as this user (default: sudo.user, else root)",
        "python": "the hosts' Python (default: python3, platform-python, python3.13..3.6)",
        "verbose": "more log lines",
    },
)
def deploy(
    c,
    graph,
    converged_timeout="5",  # strings: checked by _number, with the flag named
    cconns="0",
    no_caching=False,
    noop=False,
    ssh_accept_new=False,
    lost_timeout="30",
    sudo=False,
    sudo_user="",
    python="",
    verbose=False,
):
    """Run --graph on every host (-H) over SSH, exchanging resources through one etcd."""
    _options.update(
        graphs=list(graph),
        converged_timeout=converged_timeout,
        cconns=cconns,
        no_caching=no_caching,
        noop=noop,
        ssh_accept_new=ssh_accept_new,
        lost_timeout=lost_timeout,
        sudo=sudo,
        sudo_user=sudo_user,
        python=python,
        verbosity=1 if verbose else 0,
    )
    if isinstance(c, Connection):
        _hosts.append(c)  # the run itself happens once, in _deploy_all
    elif not graph:
        raise Exit(NO_GRAPH, code=2)
