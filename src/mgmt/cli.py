"""``mgmt`` command line: flags -> one :class:`mgmt.settings.Settings` -> the agent.

argparse (not click) keeps the bundle small and start-up fast; everything heavy
is imported only once we know it is needed. The agents of a remote run skip
the parser altogether (:func:`run_remote_agent`): their settings come as JSON.
This is the one place where an :class:`mgmt.errors.MgmtError` becomes a
one-line message and an exit code.
"""

import signal
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NoReturn, Optional, Tuple

from mgmt import __version__
from mgmt.errors import InputError, MgmtError
from mgmt.settings import (
    FIELDS,
    REMOTE,
    Field,
    Settings,
    settings_from_json,
)
from mgmt.statedir import state_dir

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

PROG = "mgmt"


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
    values["hostname"] = values["hostname"] or _system_hostname()
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


def _system_hostname() -> str:
    import socket  # only without --hostname: remote agents are given theirs

    return socket.gethostname()


class _Stop(Exception):
    """A signal arrived before the agent was running."""


def run_agent(settings: Settings) -> int:
    from mgmt.log import get_logger

    log = get_logger("main")
    log.info("This is: %s, version: %s", PROG, __version__)
    holder: List[object] = []

    def on_signal(signum: int, _frame) -> None:
        log.info("interrupted by %s", signal.Signals(signum).name)
        if holder:
            holder[0].stop_from_signal()  # type: ignore[attr-defined]
        else:
            raise _Stop()

    previous = {}
    try:
        # Inside the try: a stop that lands between the two is a stop, not a _Stop escaping.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            # A SIGHUP ignored by who started the agent (nohup, the detached
            # cluster's supervisor) stays ignored; else a closed terminal stops
            # it as ^C does, with its commands' processes, not killed outright.
            if sig != signal.SIGHUP or signal.getsignal(sig) != signal.SIG_IGN:
                previous[sig] = signal.signal(sig, on_signal)
        from mgmt.engine.agent import Agent, read_and_parse

        # Read first: a bad graph fails before a state dir is made or etcd started.
        first = read_and_parse(settings.file) if settings.file is not None else None
        from mgmt.world.lazy import world_for

        with state_dir(settings) as state, world_for(settings, state) as world:
            log.debug("state directory %s", state)
            agent = Agent(settings, world, state, first)
            holder.append(agent)
            code = agent.run()
        log.info("Goodbye!")
        return code
    except _Stop:
        log.info("Goodbye!")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class BadFlags(Exception):
    """A command line argparse refuses: its words, with the command's name."""


def run_cli(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except BadFlags as refused:
        given = sys.argv[1:] if argv is None else argv
        from mgmt.flag_rules import misplaced_run_flag

        misplaced = misplaced_run_flag(given)
        err = f"{PROG}: error: {misplaced}" if misplaced else str(refused)
        print(err, file=sys.stderr)
        if given[:1] == ["run"] and "--json" in given:  # as for any other input error
            import argparse

            flags = argparse.Namespace(noop="--noop" in given, remotes="--remote" in given)
            _error_document(flags)(None, err.partition(": error: ")[2])
        return 2
    if args.command in CLUSTER_COMMANDS:
        return _run(lambda: cluster_settings(args), args.verbose)
    if args.command != "run":
        parser.print_help(sys.stderr)
        return 2
    from mgmt.flag_rules import check_paths

    document = _error_document(args) if getattr(args, "json", False) else None
    return _run(lambda: check_paths(settings_from(args)), args.verbose - args.quiet, document)


def _error_document(args: "argparse.Namespace") -> Callable[[Optional[Settings], str], None]:
    """For --json: print the run's document for a run that ends in an error before
    it has one (bad input, etcd that does not start), so that a script always has
    one to parse: no resources, ``errors`` saying why (see mgmt.engine.report).
    The settings, if they were made; else what the flags say."""

    def document(settings: Optional[Settings], message: str) -> None:
        from mgmt.engine import report

        if settings.remotes if settings else getattr(args, "remotes", None):
            from mgmt.remote.orchestration.results import run_document

            doc = dict(run_document([]), status="failed", errors=[message])
        elif settings is not None:
            doc = report.document(settings.hostname, settings.noop, False, [], [message])
        else:
            host = (getattr(args, "hostname", None) or [""])[-1] or _system_hostname()
            doc = report.document(host, getattr(args, "noop", False), False, [], [message])
        report.print_document(doc)

    return document


def run_remote_agent() -> int:
    """The agent of a remote run, as mgmt.remote.protocol's launcher starts it.

    Arguments: the graph file and the state dir (in the run dir the host made);
    the settings come as one JSON line on stdin (see settings_from_json).
    """

    import os

    # Set for shiv's bootstrap by the launcher: not for what the agent runs.
    for name in ("SHIV_ENTRY_POINT", "SHIV_ROOT"):
        os.environ.pop(name, None)

    mode = {"run": _run_attached_agent}

    def settings() -> Settings:
        if len(sys.argv) != 3:
            raise InputError("a remote agent takes GRAPH STATE_DIR, and its settings on stdin")
        try:  # bytes: the host's locale (C on 3.6) must not decide the encoding
            line = sys.stdin.buffer.readline().decode("utf-8", "surrogateescape")
        except (OSError, ValueError, AttributeError) as err:  # not UTF-8, or no stdin
            raise InputError(f"agent settings on stdin: {err}") from None
        from mgmt.remote.protocol import is_secondary_line

        if is_secondary_line(line):  # a secondary of a via: run (mgmt.remote.hierarchy)
            from mgmt.remote.hierarchy.secondary import run_secondary, secondary_settings

            line, sudo = secondary_settings(line)
            mode["run"] = lambda settings: run_secondary(settings, sudo)
        return settings_from_json(line, file=sys.argv[1], prefix=sys.argv[2])

    return _run(settings, run=lambda settings: mode["run"](settings))


def _run_attached_agent(settings: Settings) -> int:
    """The agent of an attached run, unless a detached cluster runs on this host."""
    from mgmt.remote import protocol

    # Its settings ask for converged events on stdout; a detached agent's do not.
    if settings.converged_stdout and protocol.detached_cluster_here():
        print(f"{PROG}: error: {protocol.DETACHED_HERE}", file=sys.stderr)
        return protocol.EXIT_DETACHED_HERE
    return run_agent(settings)


def _run(
    make_settings: Callable[[], Settings],
    verbosity: int = 0,
    document: Optional[Callable[[Optional[Settings], str], None]] = None,
    run: Optional[Callable[[Settings], int]] = None,
) -> int:
    """Settings, then the agent (or ``run``) or the initiator; errors become a line
    and an exit code (and, with ``document``, the --json document)."""
    from mgmt import log

    settings: Optional[Settings] = None
    try:
        settings = make_settings()
        verbosity = settings.verbosity
        log.setup(verbosity)
        if settings.remotes:
            from mgmt.remote import run_remotes

            return run_remotes(settings)
        return (run or run_agent)(settings)
    except MgmtError as err:
        print(f"{PROG}: error: {_shown_error(err)}", file=sys.stderr)
        if document is not None:  # a run's document is printed as it ends: none was
            document(settings, str(err))
        return err.exit_code
    except KeyboardInterrupt:  # before the agent's handler: said as a later ^C is
        from mgmt.quickexit import exit_interrupted

        exit_interrupted()
    except Exception as err:  # a bug: say so in one line, details with -v
        if verbosity > 0:
            import traceback

            traceback.print_exc()
        print(f"{PROG}: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


def _shown_error(err: MgmtError) -> str:
    """The error, escaped: a path given may hold a newline or ESC. Bad input is one
    line; an operation's error keeps its line breaks (etcd's last lines)."""
    from mgmt.log import escape_table, one_line

    text = str(err)
    return one_line(text) if isinstance(err, InputError) else text.translate(escape_table("\n\t"))


def main(argv: Optional[List[str]] = None) -> NoReturn:
    """``mgmt``: the command line, then leave at once. A ^C before the agent takes
    SIGINT over (argparse's import, the flags) exits 130 with the line a later one
    logs, not a traceback; ``python -m mgmt`` covers this module's import too."""
    from mgmt.quickexit import exit_interrupted, exit_now

    _closed_stdio_to_devnull()
    try:
        code = run_cli(argv)
    except KeyboardInterrupt:
        exit_interrupted()
    exit_now(code)


def _closed_stdio_to_devnull() -> None:
    """A stream closed by the caller (``<&-``, ``>&-``) is None, and using it was an
    internal error: /dev/null takes its place and its number (else the next file's)."""
    import os

    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        if getattr(sys, name) is None:
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


if __name__ == "__main__":
    main()
