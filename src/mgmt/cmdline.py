"""``mgmt``'s command line: the parser, made from the field table
(:data:`mgmt.settings.FIELDS`, so a new option is one line there), and the flags
as :class:`mgmt.settings.Settings`, for ``mgmt run`` and the cluster commands
(``mgmt status|stop``). Only :mod:`mgmt.cli` imports it, and only for a local
command line: a remote agent's settings come as JSON, with no parser.
"""

import sys
from typing import TYPE_CHECKING, Any, Dict, List, NoReturn, Tuple

from mgmt import __version__
from mgmt.cli import PROG
from mgmt.errors import InputError
from mgmt.settings import FIELDS, REMOTE, Field, Settings

if TYPE_CHECKING:
    import argparse
    from pathlib import Path


def build_parser() -> "argparse.ArgumentParser":
    import argparse  # with shutil and gettext, a tenth of an agent's start: not for remote ones

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> "NoReturn":
            """argparse's usage line, then the error as a BadFlags (run_cli says it)."""
            self.print_usage(sys.stderr)
            raise BadFlags(f"{self.prog}: error: {message}")

    parser = Parser(
        prog=PROG,
        description="An event-driven configuration agent that also runs agentless over SSH.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="apply a graph and keep it applied")
    groups = {"": run}
    state = run.add_mutually_exclusive_group()  # --prefix or --tmp-prefix
    for field in FIELDS:
        if field.flag is None:
            continue
        if field.group not in groups:
            groups[field.group] = run.add_argument_group(field.group)
        where = state if field.name in ("prefix", "tmp_prefix") else groups[field.group]
        # No default: a flag's absence from the namespace tells it was not given
        # (settings_from fills the field's default in).
        _add_flag(where, field, argparse.SUPPRESS, default=argparse.SUPPRESS)
    run.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    run.add_argument(
        "--etcd-auth-stdin", action="store_true",
        help="read etcd's 'user:password' from the first line of stdin (for --seeds with auth)",
    )  # fmt: skip
    for name, text in CLUSTER_COMMANDS.items():
        command = commands.add_parser(name, help=text)
        for field in FIELDS:
            if field.group == REMOTE and field.name in CLUSTER_FLAGS:
                _add_flag(command, field, argparse.SUPPRESS, default=argparse.SUPPRESS)
        if name == "status":
            command.add_argument("--json", action="store_true", help=STATUS_JSON)
        command.add_argument("-v", "--verbose", action="count", default=0, help="more log lines")
    return parser


# `mgmt status|stop --remote GRAPH...`: a detached cluster (mgmt.remote.orchestration.detach).
CLUSTER_COMMANDS = {
    "status": "show a detached cluster's hosts: agent, convergence, etcd, last log lines",
    "stop": "stop a detached cluster's agents and etcd and remove what they left",
}

STATUS_JSON = "print the hosts' states as one JSON document (mgmt.remote.orchestration.status)"

CLUSTER_FLAGS = ("remotes", "no_caching", "allow_interactive", "ssh_identity", "ssh_accept_new",
                 "lost_timeout", "sudo", "sudo_user", "ask_sudo_password", "python")  # fmt: skip


def cluster_settings(args: "argparse.Namespace") -> Settings:
    """The flags of ``mgmt status|stop`` as Settings, checked as ``mgmt run``'s are."""
    from mgmt.flag_rules import check_bounds, check_paths

    values = _flag_values(args, [f for f in FIELDS if f.name in CLUSTER_FLAGS])
    values["remotes"] = _remote_paths(values["remotes"])
    if not values["remotes"]:
        raise InputError(f"mgmt {args.command} needs --remote GRAPH (one per host of the cluster)")
    values["json"] = getattr(args, "json", False)  # status's alone
    settings = Settings(cluster_command=args.command, verbosity=args.verbose, **values)
    check_bounds(settings)
    return check_paths(settings)


def _remote_paths(remotes: List[str]) -> "Tuple[Path, ...]":
    """The --remote files as Paths, each once (the same file twice runs once). An
    empty one is refused here: as a Path it is ".", and was said to be "a directory"."""
    from pathlib import Path  # the local command line's only: a remote agent has no parser

    if any(not remote for remote in remotes):
        raise InputError("--remote: empty path")
    return tuple(dict.fromkeys(Path(remote) for remote in remotes))


def _flag_values(args: "argparse.Namespace", fields: List[Field]) -> Dict[str, Any]:
    """Each field's value from the parsed flags (its default if absent); a value
    given more than once (Field.once) is refused rather than the last one taken."""
    values = {f.name: getattr(args, f.name, f.default) for f in fields}
    for field in fields:
        if field.once and hasattr(args, field.name):
            if len(values[field.name]) > 1:
                shown = ", ".join(repr(v) for v in values[field.name])
                raise InputError(f"{field.flag} given more than once ({shown}): give it once")
            values[field.name] = values[field.name][0]
    return values


_FIELD_DEFAULT = object()


def _add_flag(parser, field: Field, suppress: str, default: object = _FIELD_DEFAULT) -> None:
    """One flag of the field table, its action chosen by the field's type;
    ``default``: what argparse sets when it is absent (the field's default)."""
    help_text = suppress if field.hidden else field.help
    if help_text is not suppress:  # argparse would show a SUPPRESS default as such
        help_text = help_text.replace("%(default)s", str(field.default))
    if default is _FIELD_DEFAULT:
        default = [] if field.type is tuple else field.default
    if field.name == "verbosity":
        parser.add_argument("-v", "--verbose", action="count", default=0, help="more log lines")
        parser.add_argument(
            "-q", "--quiet", action="count", default=0, help="only warnings and errors"
        )
    elif field.type is bool:
        parser.add_argument(
            field.flag, dest=field.name, action="store_true", default=default, help=help_text
        )
    elif field.type is tuple or field.once:  # a once-flag's repeats are counted, then refused
        # --remote: made Paths in settings_from, once an empty one is refused
        # (Path("") is ".", the current folder).
        kind = field.type if field.once else str
        parser.add_argument(
            field.flag, dest=field.name, action="append", default=default, type=kind,
            metavar=field.metavar, help=help_text,
        )  # fmt: skip
    else:
        parser.add_argument(
            field.flag, dest=field.name, type=field.type, default=default,
            metavar=field.metavar, help=help_text,
        )  # fmt: skip


def settings_from(args: "argparse.Namespace") -> Settings:
    """The flags as Settings, checked (mgmt.flag_rules.check_settings) before
    anything is started or written."""
    # The command line's own: not a remote agent's.
    from mgmt.flag_rules import check_settings, credentials_from_stdin

    given = {f.name for f in FIELDS if f.flag and hasattr(args, f.name)}
    values = _flag_values(args, [f for f in FIELDS if f.flag])
    seeds = values["seeds"]
    values["seeds"] = tuple(s.strip() for item in seeds for s in item.split(",") if s.strip())
    if "hostname" in given and not values["hostname"]:  # not the system's, in silence
        raise InputError("--hostname: empty; give a name (leave the flag out for the system's)")
    values["hostname"] = values["hostname"] or system_hostname()
    values["remotes"] = _remote_paths(values["remotes"])
    values["cluster_address"] = tuple(values["cluster_address"])
    if args.verbose and args.quiet:
        raise InputError("-v and -q: give one or the other")
    values["verbosity"] = args.verbose - args.quiet
    settings = Settings(**values)
    if args.etcd_auth_stdin:
        if not settings.seeds:  # the embedded etcd has no users: auth there always failed
            raise InputError("--etcd-auth-stdin needs --seeds: only an existing cluster has users")
        settings = settings._replace(credentials=credentials_from_stdin())
    return check_settings(settings, given)


def system_hostname() -> str:
    import socket  # only without --hostname: remote agents are given theirs

    return socket.gethostname()


class BadFlags(Exception):
    """A command line argparse refuses: its words, with the command's name."""
