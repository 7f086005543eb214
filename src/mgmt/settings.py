"""One settings object for ``mgmt run``, derived from one field table.

:data:`FIELDS` lists every option once: its name, type, default, flag and help,
and whether a remote run's agents are told it. From it come the ``mgmt run``
flags (mgmt.cli), :class:`Settings`, the settings line an agent reads
(:func:`settings_from_json`) and the "Running:" line the initiator logs
(:func:`agent_argv`), so a new option is one line here.

The engine, the world (etcd) and the remote fan-out all read from the Settings
object instead of from module globals or click contexts, so each can be driven
by tests and by ``fab deploy`` without going through the command line.

Records on the agent's start path are NamedTuples, not dataclasses: importing
dataclasses (with inspect, ast and tokenize) cost a remote agent a fifth of its
start-up, paid again on every host of a run. For the same reason paths are
strings (--file, --prefix, --ssh-identity): pathlib, with the urllib.parse and
ipaddress it imports, cost each agent start 3.4 ms of CPU (python3.11, medians
of 60), about a tenth of it.
"""

import json
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from mgmt.errors import InputError
from mgmt.graph.limits import first_control
from mgmt.resources.fields import MAX_SECONDS, shown

DEFAULT_PREFIX = "/var/lib/mgmt"
CONVERGED_OFF = -1
# A host that answers no SSH keepalive for this long is reported lost.
DEFAULT_LOST_TIMEOUT = 30
# The most hosts, connections or etcd members a count flag takes. The longest
# timeout is a resource's, MAX_SECONDS (a year; -1 is "never" where a flag allows
# it): a longer one overflowed in the thread waiting (the converger died).
MAX_COUNT = 10000


class EtcdCredentials(NamedTuple):
    """A user and password for etcd's auth; never put on a command line."""

    username: str
    password: str

    def __repr__(self) -> str:
        # So that a logged or printed Settings never shows the password.
        return f"EtcdCredentials(username={self.username!r})"


class Field(NamedTuple):
    """One option. ``flag`` None: not on the command line; ``hidden``: not in --help.
    ``agent``: sent to a remote run's agents and accepted on their settings line.
    ``group``: where --help lists it ("" for the main list, else its heading).
    ``bounds``: an int's least and greatest value (mgmt.flag_rules.check_settings)."""

    name: str
    type: type
    default: Any
    help: str = ""
    flag: Optional[str] = None
    agent: bool = False
    hidden: bool = False
    group: str = ""
    metavar: Optional[str] = None
    bounds: Optional[Tuple[int, int]] = None

    @property
    def once(self) -> bool:
        """A value given at most once on the command line: given twice, the last
        one would win unnoticed. Switches and lists (--remote) may repeat."""
        return self.type not in (bool, tuple)


REMOTE = "remote execution"
# fmt: off
FIELDS: Tuple[Field, ...] = (
    # What to run, and as whom.
    Field("file", str, None, "the graph file (YAML) to run", "--file"),
    Field("hostname", str, "", "this host's name (default: the system's; not with --remote)",
          "--hostname", agent=True),
    # The world: etcd. Without seeds the agent starts its own etcd server.
    Field("seeds", tuple, (), "etcd client URL(s) of an existing cluster (repeat or "
          "comma-separate; with --remote, its first http:// one)", "--seeds", agent=True,
          metavar="URL"),
    Field("no_server", bool, False, "do not start an embedded etcd", "--no-server", agent=True),
    Field("credentials", EtcdCredentials, None, agent=True),
    # State: a fixed prefix, or a private temporary one (mgmt.cli makes them exclusive).
    Field("prefix", str, DEFAULT_PREFIX, "state directory (default %(default)s; a remote "
          "run's: a private temp dir unless given)", "--prefix"),
    Field("tmp_prefix", bool, False, "use a private temporary state directory, removed at "
          "exit", "--tmp-prefix"),
    # Behaviour.
    Field("converged_timeout", int, CONVERGED_OFF, "exit 0 after N idle seconds (-1: never)",
          "--converged-timeout", agent=True, metavar="N", bounds=(CONVERGED_OFF, MAX_SECONDS)),
    Field("noop", bool, False, "report what would change; change nothing", "--noop",
          agent=True),
    Field("json", bool, False, "print the run's result as JSON on stdout at the end", "--json",
          agent=True),
    Field("no_watch", bool, False, "do not reload the graph file on changes", "--no-watch",
          agent=True),
    Field("verbosity", int, 0, "-v more log lines, -q only warnings and errors", "-v",
          agent=True),
    # Remote execution (initiator side).
    Field("remotes", tuple, (), "run this graph on the host named by its `remote:` key "
          "(repeatable)", "--remote", group=REMOTE, metavar="FILE"),
    Field("cconns", int, 0, "at most N SSH connections at once (0: no limit)", "--cconns",
          group=REMOTE, metavar="N", bounds=(0, MAX_COUNT)),
    Field("no_caching", bool, False, "do not keep the agent on remotes", "--no-caching",
          group=REMOTE),
    Field("allow_interactive", bool, False, "offer a password prompt", "--allow-interactive",
          group=REMOTE),
    Field("ssh_identity", str, None, "SSH private key", "--ssh-identity", group=REMOTE,
          metavar="PATH"),
    Field("ssh_accept_new", bool, False, "trust unknown host keys", "--ssh-accept-new",
          group=REMOTE),
    Field("lost_timeout", int, DEFAULT_LOST_TIMEOUT, "report a host that answers no SSH "
          "keepalive for N seconds as lost (default %(default)s)", "--lost-timeout",
          group=REMOTE, metavar="N", bounds=(1, MAX_SECONDS)),
    # As whom and with what the agents run (a graph's sudo: and python: keys win for its host).
    Field("sudo", bool, False, "run the agents as root through sudo (for a non-root login)",
          "--sudo", group=REMOTE),
    Field("sudo_user", str, "", "run the agents through sudo as USER (implies --sudo)",
          "--sudo-user", group=REMOTE, metavar="USER"),
    Field("ask_sudo_password", bool, False, "ask once, without echo, for the sudo password "
          "of every host", "--ask-sudo-password", group=REMOTE),
    Field("python", str, "", "the hosts' Python (default: the first of python3, "
          "/usr/libexec/platform-python, python3.13 .. python3.6)", "--python", group=REMOTE,
          metavar="PATH"),
    # Detached clusters (mgmt.remote.orchestration.detach).
    Field("detach", bool, False, "once converged, hand the cluster over (its own etcd on the "
          "hosts) and exit; the agents run on", "--detach", group=REMOTE),
    Field("cluster_size", int, 0, "etcd members of a detached cluster (default: 1 for one or "
          "two hosts, 3 from three)", "--cluster-size", group=REMOTE, metavar="K",
          bounds=(0, MAX_COUNT)),
    Field("cluster_address", tuple, (), "the address the other hosts reach HOST at (default: "
          "the one SSH reached)", "--cluster-address", group=REMOTE, metavar="HOST=ADDR"),
    Field("attach", bool, False, "take a detached cluster back: stream its logs, push graph "
          "edits; ^C stops it (with --detach: leaves it running)", "--attach", group=REMOTE),
    # `mgmt status` / `mgmt stop` of a detached cluster: set by mgmt.cli, no flag.
    Field("cluster_command", str, ""),
    # An agent of a remote run: converged state as lines on stdout
    # (mgmt.remote.protocol.CONVERGED_MARK), not in etcd; its initiator relays them.
    Field("converged_stdout", bool, False, "", "--converged-stdout", agent=True, hidden=True),
)
# fmt: on
FIELD_BY_NAME: Dict[str, Field] = {f.name: f for f in FIELDS}


class _SettingsBase(NamedTuple("_SettingsBase", [(f.name, f.type) for f in FIELDS])):  # type: ignore[misc]
    __slots__ = ()


_SettingsBase.__new__.__defaults__ = tuple(f.default for f in FIELDS)  # type: ignore[attr-defined]


class Settings(_SettingsBase):
    """Everything ``mgmt run`` was asked to do (``_replace`` for a changed copy);
    its fields are :data:`FIELDS`."""

    __slots__ = ()


# What a remote agent accepts on its settings line, and of what JSON type.
AGENT_SETTINGS: Dict[str, type] = {
    f.name: list if f.type in (tuple, EtcdCredentials) else f.type for f in FIELDS if f.agent
}
MAX_SETTINGS_LINE = 64 * 1024


def settings_from_json(line: str, **given: object) -> Settings:
    """The settings of a remote run's agent: one JSON object on a line of its stdin.

    The initiator hands its agents their settings this way rather than as flags
    (see mgmt.remote.protocol): an agent builds no argument parser, and the etcd
    credentials (``"credentials": [user, password]``) are on no command line.
    Only :data:`AGENT_SETTINGS` are accepted, each of its type. ``given`` adds
    what only the host knows, such as the paths of its run dir.
    """
    try:
        if len(line) > MAX_SETTINGS_LINE:
            raise ValueError(f"longer than {MAX_SETTINGS_LINE} bytes")
        fields = json.loads(line)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        for name, value in fields.items():
            _check_agent_setting(name, value)
    except RecursionError:
        raise InputError("agent settings on stdin: nested too deeply") from None
    except ValueError as err:
        raise InputError(f"agent settings on stdin: {err}") from None
    if "seeds" in fields:
        fields["seeds"] = tuple(fields["seeds"])  # as the command line has them
    if "credentials" in fields:
        fields["credentials"] = EtcdCredentials(*fields["credentials"])
    fields.update(given)
    return Settings(**fields)


def check_one_line(name: str, value: str) -> None:
    """Text that reaches file names, etcd keys and logs: UTF-8, no control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name}: not valid UTF-8: {shown(value)}") from None
    if first_control(value) is not None:
        raise ValueError(f"{name}: control character in {shown(value)}")


def check_hostname(name: str, value: str) -> None:
    """A host name as the etcd keys hold it (``/_mgmt/exported/<host>/...``)."""
    check_one_line(name, value)
    if "/" in value or not value.strip():
        raise ValueError(f"{name}: not a host name: {shown(value)}")


def _check_agent_setting(name: str, value: object) -> None:
    wanted = AGENT_SETTINGS.get(name)
    if wanted is None:
        raise ValueError(f"unknown setting {shown(name)}")
    if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
        raise ValueError(f"{name}: expected {wanted.__name__}, got {shown(value)}")
    items = value if isinstance(value, list) else [value]
    strings = all(isinstance(item, str) for item in items)
    for item in items:
        if isinstance(item, str):
            check_one_line(name, item)
    if name == "seeds" and not strings:
        raise ValueError(f"seeds: expected a list of URLs, got {shown(value)}")
    if name == "credentials" and not (strings and len(items) == 2):
        raise ValueError("credentials: expected [user, password]")
    if name == "hostname":
        check_hostname(name, value)  # type: ignore[arg-type]
    bounds = FIELD_BY_NAME[name].bounds
    if bounds is not None and value < bounds[0]:  # type: ignore[operator]
        raise ValueError(f"{name}: expected {bounds[0]} or more, got {shown(value)}")
    if bounds is not None and value > bounds[1]:  # type: ignore[operator]
        raise ValueError(f"{name}: expected {bounds[1]} or less, got {shown(value)}")


def agent_settings(settings: Settings) -> Dict[str, Any]:
    """What every agent of a remote run is told of the initiator's settings.

    --converged-timeout is not among them: an agent that exits by itself stops
    collecting what hosts starting later export. Agents report their idle state
    instead, and the initiator decides (see mgmt.remote.orchestration.fanout).
    The session adds the host's own: hostname, seeds, credentials.
    """
    keep = {
        "hostname",
        "seeds",
        "credentials",
        "converged_timeout",
        "no_server",
        "converged_stdout",
    }
    return {f.name: getattr(settings, f.name) for f in FIELDS if f.agent and f.name not in keep}


def agent_argv(fields: Dict[str, Any]) -> List[str]:
    """The ``mgmt run`` flags that give what a settings line gives (for the
    "Running:" log line), credentials aside."""
    argv: List[str] = []
    for field in FIELDS:
        value = fields.get(field.name)
        if not field.agent or field.flag is None or value in (None, False, "", ()):
            continue
        if field.name == "verbosity":
            argv += ["-v"] * value if value > 0 else ["-q"] * -value
        elif field.type is bool:
            argv.append(field.flag)
        elif field.type is tuple:
            for item in value:
                argv += [field.flag, str(item)]
        else:
            argv += [field.flag, str(value)]
    return argv
