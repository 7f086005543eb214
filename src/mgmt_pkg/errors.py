"""The toolkit's exception tree, mapped to exit codes in :func:`mgmt_pkg.cli.main`."""

from __future__ import annotations

from typing import List


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


PYTHON_TRACEBACK = "Traceback (most recent call last):"
# Lines Python prints between the tracebacks of chained exceptions.
_CHAINING = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


class ToolFailed(MgmtPkgError):
    """A system tool ran and failed; carries the tail of its output (all of it in ``output``).

    A tool written in Python (pip, shiv, a script rpmbuild runs) may die with a
    traceback: its frames mean nothing to the user, so the message keeps only
    the exception line that ends each one. Output that comes down to one line
    is given on the message's line.
    """

    def __init__(self, tool: str, returncode: int, output: str, tail_lines: int = 20):
        self.tool = tool
        self.returncode = returncode
        self.output = output
        lines = without_tracebacks(output.strip().splitlines())[-tail_lines:]
        failed = f"{tool} failed with exit code {returncode}"
        if len(lines) <= 1:
            super().__init__(f"{failed}: {lines[0].strip()}" if lines else failed)
        else:
            tail = "\n".join(lines)
            super().__init__(f"{failed}:\n{tail}")


def without_tracebacks(lines: List[str]) -> List[str]:
    """``lines`` with each Python traceback cut down to its exception line.

    A traceback is its header, then indented lines (frames, source, carets),
    then the unindented exception line, which is kept.
    """
    kept: List[str] = []
    found = in_traceback = False
    for line in lines:
        if line.strip() == PYTHON_TRACEBACK:
            found = in_traceback = True
            continue
        if in_traceback and (line[:1].isspace() or not line.strip()):
            continue
        in_traceback = False
        kept.append(line)
    if not found:
        return list(lines)
    # Of chained tracebacks, their exception lines stay, not the words between them,
    # and a line said again at once is said once: a full disk (shiv's OSError, then
    # the same from each clean-up that wrote) came as the same line three times.
    kept = [line for line in kept if line.strip() and line.strip() not in _CHAINING]
    return [line for i, line in enumerate(kept) if i == 0 or line != kept[i - 1]]


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
