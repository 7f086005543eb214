"""``mgmt-pkg`` run in-process through its real entry point, error mapping included."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import List

from mgmt_pkg.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def paths(self) -> List[Path]:
        return [Path(line) for line in self.out.splitlines()]


def run_cli(*args: str) -> Result:
    """``mgmt-pkg ARGS``: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    return Result(code, out.getvalue(), err.getvalue())
