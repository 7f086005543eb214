"""``status``, the command of a detached cluster's hosts that says what runs
there (see detached.py, which ships this module and runs it).

Runs on the host's Python (3.6 and later) with the standard library only (and
the bundle's mgmt package from its zip, to read convergence from etcd).
"""

import json
import os

import detached_dir as here  # the cluster's folder on this host, and its files


def status(request):
    """What runs here, also when part of DIR is gone (removed by hand): a cluster
    whose cluster.json is missing but whose processes run is still shown."""
    from detached_etcd import convergence, healthy

    if not os.path.exists(here.path("cluster.json")) and not any(
        here.running(n) for n in here.NAMES
    ):
        return {"exists": False}
    cluster = here.cluster_record()
    found = {"exists": True, "cluster": cluster, "dir": here.DIR}
    for name in here.NAMES:
        found[name] = here.supervision().supervised_state(here.DIR, name)
        try:  # NAME.pid is written at each start of the process: when it last started
            found[name]["since"] = os.path.getmtime(here.path(name + ".pid"))
        except OSError:
            found[name]["since"] = None
    try:  # agent.in: an empty line, then the agent's settings
        settings = json.loads((here.read_text(here.path("agent.in"), "") or "").splitlines()[1])
    except (IndexError, ValueError):
        settings = None
    member = cluster.get("member_url")
    found["etcd"]["health"] = healthy(member) if member else None
    found["converged"], found["failed"] = (
        convergence(settings, cluster.get("bundle", "")) if settings else (None, [])
    )
    found["log"] = here.tail(here.path("agent.log"))
    try:
        found["log_size"] = os.path.getsize(here.path("agent.log"))
    except OSError:
        found["log_size"] = 0
    return found
