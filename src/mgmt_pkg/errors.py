"""The toolkit's exception tree, mapped to exit codes in :func:`mgmt_pkg.cli.main`."""

from __future__ import annotations


class MgmtPkgError(Exception):
    """An operation failed (exit code 1)."""

    exit_code = 1


class InvalidInput(MgmtPkgError):
    """Bad input: an option, a file, a value that would inject into a spec (exit 2)."""

    exit_code = 2


class ToolMissing(MgmtPkgError):
    """A system tool is not installed; the message names the package to install."""

    def __init__(self, tool: str, package: str):
        self.tool = tool
        self.package = package
        super().__init__(
            f"{tool} not found: install the {package!r} package "
            f"(apt-get install {package} / dnf install {package})"
        )


class ToolFailed(MgmtPkgError):
    """A system tool ran and failed; carries the tail of its output."""

    def __init__(self, tool: str, returncode: int, output: str, tail_lines: int = 20):
        self.tool = tool
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.rstrip().splitlines()[-tail_lines:])
        super().__init__(f"{tool} failed with exit code {returncode}:\n{tail}")


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwind (removing what the run made), then exit 128+N.

    A BaseException, so that no ``except Exception`` swallows it, and not a
    KeyboardInterrupt, which click would turn into its own "Aborted!".
    """

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
