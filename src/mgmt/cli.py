"""``mgmt`` command line: flags -> one :class:`mgmt.settings.Settings` -> the agent.

argparse (not click) keeps the bundle small and start-up fast; everything heavy
is imported only once we know it is needed. The agents of a remote run skip
the parser altogether (:func:`run_remote_agent`): their settings come as JSON.
This is the one place where an :class:`mgmt.errors.MgmtError` becomes a
one-line message and an exit code.
"""

import signal
import sys
from typing import TYPE_CHECKING, Callable, List, NoReturn, Optional

from mgmt import __version__
from mgmt.errors import InputError, MgmtError
from mgmt.settings import Settings, settings_from_json
from mgmt.statedir import state_dir

if TYPE_CHECKING:
    import argparse

PROG = "mgmt"


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


def run_cli(argv: Optional[List[str]] = None) -> int:
    from mgmt.cmdline import (
        CLUSTER_COMMANDS,
        BadFlags,
        build_parser,
        cluster_settings,
        settings_from,
    )

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
            from mgmt.cmdline import system_hostname

            host = (getattr(args, "hostname", None) or [""])[-1] or system_hostname()
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
