"""The agent's exception tree.

Every error a user can cause or meet derives from :class:`MgmtError`. The CLI
maps them to a one-line message and an exit code in exactly one place
(:func:`mgmt.cli.main`), so library code raises and never prints or exits.
"""

from typing import Optional


class MgmtError(Exception):
    """An operation failed (exit code 1)."""

    exit_code = 1


class InputError(MgmtError):
    """Bad input from the user: a flag, a graph file, a URL (exit code 2)."""

    exit_code = 2


class GraphError(InputError):
    """A graph file is invalid; carries the file and line so the user can fix it."""

    def __init__(self, message: str, path: Optional[str] = None, line: Optional[int] = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or "<graph>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}"


class WorldError(MgmtError):
    """etcd could not be started, reached or used."""


class RemoteError(MgmtError):
    """A remote host failed; carries the host so summaries can name it."""

    def __init__(self, host: str, message: str):
        self.host = host
        self.message = message
        super().__init__(f"{host}: {message}")
