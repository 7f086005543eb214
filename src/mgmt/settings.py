"""One settings object for ``mgmt run``, built by the CLI and handed down.

The engine, the world (etcd) and the remote fan-out all read from this object
instead of from module globals or click contexts, so each can be driven by
tests and by ``fab deploy`` without going through the command line.

Records on the agent's start path (these, the graph model, a kind's fields)
are NamedTuples, not dataclasses: importing dataclasses (with inspect, ast and
tokenize) and building a dozen classes cost a remote agent a fifth of its
start-up, paid again on every host of a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

from mgmt.errors import InputError

DEFAULT_PREFIX = Path("/var/lib/mgmt")
CONVERGED_OFF = -1


class EtcdCredentials(NamedTuple):
    """A user and password for etcd's auth; never put on a command line."""

    username: str
    password: str

    def __repr__(self) -> str:
        # So that a logged or printed Settings never shows the password.
        return f"EtcdCredentials(username={self.username!r})"


class Settings(NamedTuple):
    """Everything ``mgmt run`` was asked to do (``_replace`` for a changed copy)."""

    # What to run, and as whom.
    file: Optional[Path] = None
    hostname: str = ""
    # The world: etcd. Without seeds the agent starts its own etcd server.
    seeds: Sequence[str] = ()
    no_server: bool = False
    credentials: Optional[EtcdCredentials] = None
    # State: a fixed prefix, or a private temporary one.
    prefix: Path = DEFAULT_PREFIX
    tmp_prefix: bool = False
    # Behaviour.
    converged_timeout: int = CONVERGED_OFF
    noop: bool = False
    # Print the run's result as one JSON document on stdout (mgmt.engine.report).
    json: bool = False
    no_watch: bool = False
    verbosity: int = 0
    # Remote execution (initiator side).
    remotes: Sequence[Path] = ()
    cconns: int = 0
    no_caching: bool = False
    allow_interactive: bool = False
    ssh_identity: Optional[Path] = None
    ssh_accept_new: bool = False
    # How deep in a remote-execution tree this agent runs (0 = initiator).
    depth: int = 0
    # Report converged state as lines on stdout (mgmt.world.api.CONVERGED_MARK),
    # not in etcd: an agent of a remote run, whose initiator relays them.
    converged_stdout: bool = False

    @property
    def converged_enabled(self) -> bool:
        return self.converged_timeout >= 0


# What a remote agent accepts on its settings line (see settings_from_json), and of
# what type. Its initiator sends all but converged_timeout, which it keeps to itself.
AGENT_SETTINGS = {
    "hostname": str,
    "no_server": bool,
    "seeds": list,
    "depth": int,
    "converged_stdout": bool,
    "converged_timeout": int,
    "noop": bool,
    "no_watch": bool,
    "verbosity": int,
    "credentials": list,
}


def settings_from_json(line: str, **given: object) -> Settings:
    """The settings of a remote run's agent: one JSON object on a line of its stdin.

    The initiator hands its agents their settings this way rather than as flags
    (see mgmt.remote.launch): an agent builds no argument parser, and the etcd
    credentials (``"credentials": [user, password]``) are on no command line.
    Only :data:`AGENT_SETTINGS` are accepted, each of its type. ``given`` adds
    what only the host knows, such as the paths of its run dir.
    """
    try:
        fields = json.loads(line)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        for name, value in fields.items():
            _check_agent_setting(name, value)
    except ValueError as err:
        raise InputError(f"agent settings on stdin: {err}") from None
    if "seeds" in fields:
        fields["seeds"] = tuple(fields["seeds"])  # as settings_from(flags) has them
    if "credentials" in fields:
        fields["credentials"] = EtcdCredentials(*fields["credentials"])
    return Settings(**{**fields, **given})


def _check_agent_setting(name: str, value: object) -> None:
    wanted = AGENT_SETTINGS.get(name)
    if wanted is None:
        raise ValueError(f"unknown setting {name!r}")
    if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
        raise ValueError(f"{name}: expected {wanted.__name__}, got {value!r}")
    strings = isinstance(value, list) and all(isinstance(item, str) for item in value)
    if name == "seeds" and not strings:
        raise ValueError(f"seeds: expected a list of URLs, got {value!r}")
    if name == "credentials" and not (strings and len(value) == 2):  # type: ignore[arg-type]
        raise ValueError("credentials: expected [user, password]")
    if name == "depth" and value < 0:  # type: ignore[operator]
        raise ValueError(f"depth: expected 0 or more, got {value!r}")
    if name == "converged_timeout" and value < CONVERGED_OFF:  # type: ignore[operator]
        raise ValueError(f"converged_timeout: expected -1 or more, got {value!r}")
