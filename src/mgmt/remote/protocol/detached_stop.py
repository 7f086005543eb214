"""The commands of a detached cluster's hosts that end it: ``leave`` (a member's
way out of the membership) and ``stop`` (see detached.py, which ships this
module and runs them).

Runs on the host's Python (3.6 and later) with the standard library only (and,
for ``leave``, the bundle's mgmt package from its zip).
"""

import json
import os
import time

import detached_dir as here  # the cluster's folder on this host, and its files


def leave(request):
    """The members at the client URLs ``leaving`` removed from the cluster's membership,
    one at a time, through those that stay, with the root account this member's
    host holds (through the bundle's own client code): those whose etcd does not
    answer first, so that each removal leaves a membership whose running members
    are a quorum of it. The membership is asked of this host's member (it still
    runs), else of ``staying`` (the cluster's record: members that left before are
    in it still); ``members``: the client URLs of the members it had then."""
    from detached_etcd import healthy, use_bundle

    root = json.loads(here.read_text(here.path("root.json"), "null") or "null")
    if not root:
        raise here.Failed("no root account of the cluster here ({})".format(here.path("root.json")))
    cluster = here.cluster_record()
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
            deadline = time.time() + here.HEALTH_TIMEOUT
            while True:  # a member removed may have led the cluster: it elects another
                try:
                    remover.call("cluster/member/remove", {"ID": member["ID"]})
                    break
                except Exception as err:
                    if "member not found" in str(err):  # a retry after a lost answer
                        break
                    if time.time() > deadline:  # those removed are said all the same
                        why = "removing {}: {}".format(member.get("name"), err)
                        return {"removed": removed, "members": now, "not_removed": why}
                    time.sleep(0.5)
            removed.extend(member["clientURLs"])
    finally:
        remover.close()
    return {"removed": removed, "members": now}


def stop(request):
    """Stop what ``what`` names (with ``owner``: only what that run started, a
    hand-over that failed), then with ``clean`` remove DIR; with ``remains``, only
    what a cluster whose processes all ended left, refused if one runs here now
    (another run started it since this one's ``prepare``). One at a time with the
    starts (detached_dir.one_at_a_time)."""
    with here.one_at_a_time():
        if request.get("remains") and any(here.running(n) for n in here.NAMES):
            raise here.Failed(
                "a detached cluster started here meanwhile, by another run (`mgmt status` "
                "shows it): left as it is"
            )
        return _stop(request)


def _stop(request):
    if not os.path.isdir(here.DIR):  # removed by hand: its processes are found otherwise
        from detached_orphans import stop_orphaned

        return {"stopped": [name for name in request["what"] if stop_orphaned(here.DIR, name)]}
    # With ``owner`` (a run that failed before its hand-over): what that run started alone.
    owner = request.get("owner")
    what = [n for n in request["what"] if owner in (None, here.read_text(here.path(n + ".owner")))]
    stopped = [name for name in what if here.supervision().stop_supervised(here.DIR, name)]
    cluster = here.cluster_record()
    root = os.path.exists(here.path("root.json"))
    if request.get("clean") and (owner is None or not any(here.running(n) for n in here.NAMES)):
        import shutil

        shutil.rmtree(here.DIR, True)
        parent = os.path.dirname(here.DIR)
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
                for unpacked in glob.glob(os.path.join(here.CACHE, "shiv", name + "_*")):
                    shutil.rmtree(unpacked, True)
    return {
        "stopped": stopped,
        "cluster_hosts": cluster.get("hosts") or [],
        "cluster_host": cluster.get("host"),
        "cluster_members": cluster.get("members") or [],  # client URLs, of its first hosts
        "root": root,  # this host can remove members (leave)
    }
