"""Lock the initiator's etcd down to one per-run user before tunnelling it out.

A reverse SSH tunnel exposes the initiator's etcd on each remote host's
loopback, where any local user could connect. With auth on, only a client
holding this run's password gets in, and only to the /_mgmt/ prefix. Both
passwords are random and live in memory only; the run's password reaches the
remote agent on its stdin, in its settings line (see mgmt.remote.protocol).
"""

import secrets
from typing import NamedTuple, Optional

from mgmt.settings import EtcdCredentials
from mgmt.world.client import EtcdClient, encode, prefix_end

MGMT_PREFIX = "/_mgmt/"
RUN_USER_PREFIX = "mgmt-run-"


class AuthSetup(NamedTuple):
    """The cluster's root account and the run's restricted account."""

    root: EtcdCredentials
    run: EtcdCredentials


def new_run_credentials() -> EtcdCredentials:
    """A fresh per-run user and password; made before etcd starts (agents get them at launch)."""
    return EtcdCredentials(f"{RUN_USER_PREFIX}{secrets.token_hex(4)}", secrets.token_urlsafe(24))


def enable_auth(
    client_url: str, prefix: str = MGMT_PREFIX, run: Optional[EtcdCredentials] = None
) -> AuthSetup:
    """Create root and a per-run user (``run``, or new) with readwrite on ``prefix`` only,
    then enable auth.

    Meant for a fresh embedded server (auth still off); raises WorldError otherwise.
    """
    root = EtcdCredentials("root", secrets.token_urlsafe(24))
    run = run or new_run_credentials()
    role = run.username  # a role of its own, named after the user
    client = EtcdClient([client_url])
    try:
        # etcd refuses to enable auth unless root exists and holds the root role.
        client.call("auth/user/add", {"name": root.username, "password": root.password})
        client.call("auth/role/add", {"name": "root"})
        client.call("auth/user/grant", {"user": root.username, "role": "root"})
        client.call("auth/role/add", {"name": role})
        client.call(
            "auth/role/grant",
            {
                "name": role,
                "perm": {
                    "permType": "READWRITE",
                    "key": encode(prefix),
                    "range_end": encode(prefix_end(prefix)),
                },
            },
        )
        client.call("auth/user/add", {"name": run.username, "password": run.password})
        client.call("auth/user/grant", {"user": run.username, "role": role})
        client.call("auth/enable", {})
    finally:
        client.close()
    return AuthSetup(root=root, run=run)
