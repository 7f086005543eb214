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
imports are shipped with it as NAME TEXT pairs, and :func:`load_modules` makes
them importable (mgmt.remote.orchestration.hosts.detached_args gives the whole
argument list): detached_dir.py (DIR and its files), detached_start.py (the
commands that set a cluster up), detached_status.py, detached_stop.py (``leave``
and ``stop``), detached_etcd.py (the cluster's etcd as this host finds and reaches
it) and detached_orphans.py (a cluster whose DIR was removed by hand). This file
is only what runs first: a program run as ``-c`` has no folder to import from.

Runs on the host's Python (3.6 and later) with the standard library only (and,
for ``auth`` and ``status``, the bundle's mgmt package from its zip).
"""

import json
import os
import sys


def load_modules(shipped):
    """Make the modules shipped with this program importable: ``shipped`` is NAME,
    TEXT, NAME, TEXT ... (their texts as arguments: a program run as ``-c`` has no
    folder of its own to import them from), each importing those before it."""
    for name, text in zip(shipped[::2], shipped[1::2]):
        module = type(sys)(name)
        module.__file__ = name + ".py"  # what a traceback names
        exec(compile(text, module.__file__, "exec"), module.__dict__)
        sys.modules[name] = module


def commands():
    """The commands by name, from the modules shipped with this program (loaded)."""
    from detached_start import enable_auth, prepare, probe, replace_graph, start_agent, start_etcd
    from detached_status import status
    from detached_stop import leave, stop

    return {
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


def main():
    *shipped, command = sys.argv[1:]
    load_modules(shipped)
    import detached_start
    from detached_dir import Failed

    # The login's umask, for the agent (it applies the graph as an attached one
    # does); what this program writes itself is private.
    detached_start.LOGIN_UMASK = os.umask(0o077)
    try:
        request = json.loads(sys.stdin.readline() or "{}")
        known = commands()
        if command not in known:
            raise Failed(f"unknown command {command!r}")
        answer = known[command](request)
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
