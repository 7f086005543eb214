"""The ``mgmt-pkg`` command group.

Subcommands live in :mod:`mgmt_pkg.commands` and are imported only when run:
``mgmt-pkg fake-rpm`` should cost little more than rpmbuild itself, so the
group must not import jinja2, rpmfile or copr just to start. Errors from the
library are turned into a one-line message and an exit code here, and only here.
"""

from __future__ import annotations

import os
import sys


def _leave_at_once(signum: int, frame: object) -> None:
    """Until main() runs nothing has been made: one line, no traceback, the usual code."""
    os.write(2, b"mgmt-pkg: interrupted\n")
    os._exit(128 + signum)


# Run as the `mgmt-pkg` command (not imported by a program or a test), a ^C or
# SIGTERM during the imports below must not print a KeyboardInterrupt traceback.
# (One before this module runs, in Python's own start, cannot be helped here.)
if os.path.basename(sys.argv[0]) == "mgmt-pkg":
    try:
        import signal  # itself a few ms of imports (enum)
    except KeyboardInterrupt:
        _leave_at_once(2, None)
    signal.signal(signal.SIGINT, _leave_at_once)
    signal.signal(signal.SIGTERM, _leave_at_once)

import importlib  # noqa: E402 (after the handlers above, on purpose)
import signal  # noqa: E402
import threading  # noqa: E402
from typing import Dict, List, NoReturn, Optional  # noqa: E402

import click  # noqa: E402

from mgmt import __version__  # noqa: E402
from mgmt_pkg.errors import Interrupted, MgmtPkgError  # noqa: E402

# name -> "module:attribute" of a click command, imported lazily.
COMMANDS: Dict[str, str] = {
    "fake-rpm": "mgmt_pkg.commands.rpm:fake_rpm",
    "rpm": "mgmt_pkg.commands.rpm:rpm",
    "inspect": "mgmt_pkg.commands.rpm:inspect",
    "repo": "mgmt_pkg.commands.rpm:repo",
    "bundle": "mgmt_pkg.commands.bundle:bundle",
    "copr": "mgmt_pkg.commands.copr:copr",
    "serve": "mgmt_pkg.commands.serve:serve",
    "kickstart": "mgmt_pkg.commands.kickstart:kickstart",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mgmt-pkg")
def cli() -> None:
    """Package and deliver mgmt: phony RPMs, COPR, the agent bundle, provisioning."""


def main(argv: Optional[List[str]] = None) -> None:
    """Run the CLI; library errors become ``mgmt-pkg: error: ...`` and an exit code."""
    try:
        result = cli.main(args=argv, prog_name="mgmt-pkg", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except MgmtPkgError as error:
        click.echo(f"mgmt-pkg: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("mgmt-pkg: interrupted", err=True)
        sys.exit(130)
    except Interrupted as stop:  # raised by the handlers entry() installs; cleanup has run
        name = signal.Signals(stop.signum).name
        click.echo(f"mgmt-pkg: interrupted by {name}; removed what the run had made", err=True)
        sys.exit(stop.exit_code)
    except OSError as error:  # a file or socket the library did not expect to fail
        where = f": {error.filename}" if error.filename else ""
        click.echo(f"mgmt-pkg: error: {error.strerror or error}{where}", err=True)
        sys.exit(1)
    except Exception as error:  # a bug: one line; the traceback with MGMT_PKG_DEBUG=1
        if os.environ.get("MGMT_PKG_DEBUG"):
            raise
        click.echo(f"mgmt-pkg: internal error: {type(error).__name__}: {error}", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def entry() -> NoReturn:
    """The ``mgmt-pkg`` command: :func:`main`, then leave without tearing Python down.

    main() ends in SystemExit so that tests and programs can call it in-process.
    """
    from mgmt.quickexit import exit_now

    swallowed: List[int] = []  # a signal a finalizer swallowed, until sent again

    def interrupt(signum: int, frame: object) -> None:
        # Ignored first: the unwinding this starts stops rpmbuild (SIGTERM, a grace,
        # then SIGKILL) and removes the build tree, hundreds of MB. A second ^C or
        # SIGTERM raising in there would cut it short (no SIGKILL, half a tree
        # left) and its code would replace the first signal's 128+N.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        swallowed.clear()
        raise Interrupted(signum)

    # A string: sys.UnraisableHookArgs is no attribute of sys before Python 3.10.
    def unraisable(info: "sys.UnraisableHookArgs") -> None:  # noqa: UP037
        stop = info.exc_value
        if not isinstance(stop, Interrupted):
            sys.__unraisablehook__(info)
            return
        # The signal landed in a finalizer (a pooled connection closed by the
        # garbage collector), and Python ignores what a finalizer raises: the run
        # went on, deaf to signals from then on. Nothing unwound: the handlers
        # are back, and the same signal is sent again from outside the finalizer.
        swallowed.append(stop.signum)
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        threading.Timer(0.01, os.kill, (os.getpid(), stop.signum)).start()

    # From here on a signal unwinds: temp dirs are removed, rpmbuild is stopped.
    sys.unraisablehook = unraisable
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        try:
            main()
        finally:  # no signal raises past main(): one sent again may still be on its way
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except SystemExit as done:
        code = done.code
    except Interrupted as stop:  # it landed after main() had ended, before the above
        code = stop.exit_code
    else:
        code = 0
    if swallowed:  # main() ended before the signal came again: interrupted all the same
        name = signal.Signals(swallowed[0]).name
        print(f"mgmt-pkg: interrupted by {name}", file=sys.stderr)
        code = 128 + swallowed[0]
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # what sys.exit("message") would have printed
        code = 1
    exit_now(code or 0)


if __name__ == "__main__":
    entry()
