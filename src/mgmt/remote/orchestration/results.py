"""What a run reports per host: its result, and the summary table; and what a detached
cluster's host says of its failed resources."""

import contextlib
from typing import Any, Dict, List, NamedTuple, Optional, TextIO

from mgmt.log import OUTPUT_LOCK, one_line

# Results in the summary.
CONVERGED = "converged"
STOPPED = "stopped"
EXITED = "exited"
FAILED = "failed"


class HostResult(NamedTuple):
    host: str
    result: str
    bundle: str = "-"  # copied | cached | -
    seconds: float = 0.0
    message: str = ""
    report: Optional[Dict[str, Any]] = None  # the agent's --json document, if it sent one

    @property
    def failed(self) -> bool:
        return self.result == FAILED


def describe_error(err: BaseException) -> str:
    """An exception's message, or its class's name when it has none (an exception
    is always true, so ``err or name`` would give an empty message)."""
    return str(err) or type(err).__name__


def print_summary(results: List[HostResult], out: TextIO) -> None:
    """One line per host: host, result, bundle copied or cached, time, and why if it failed."""
    rows = [("host", "result", "bundle", "time", "")]
    # A message may carry what the host printed (a login script's ESC sequences,
    # before START failed): shown escaped, as its lines are, not acted on.
    rows += [
        (r.host, r.result, r.bundle, f"{r.seconds:.1f}s", printable(r.message)) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    text = ""
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        text += "  ".join(cells).rstrip() + "\n"
    # Nobody reads (`| head` ended): the exit code still says how the run went.
    with OUTPUT_LOCK, contextlib.suppress(OSError, ValueError):
        out.write(text)
        out.flush()


def run_document(results: List[HostResult]) -> Dict[str, Any]:
    """The --json document of a remote run: one entry per host, each holding the
    document its agent sent (see mgmt.engine.report; null when the host never
    ran its agent to the end)."""
    hosts = [
        {
            "host": r.host,
            "result": r.result,
            "bundle": r.bundle,
            "seconds": round(r.seconds, 3),
            "message": r.message,
            "report": r.report,
        }
        for r in results
    ]
    return {
        "version": 1,
        "status": "failed" if any(r.failed for r in results) else "ok",
        "hosts": hosts,
    }


def describe_failures(host: str, failures: List[Dict[str, str]]) -> str:
    """``host: N resource(s) FAILED`` and a line for each, with its last error (as the
    host wrote it: its control characters, newlines included, shown escaped)."""
    lines = [f"{host}: {len(failures)} resource(s) FAILED"]
    for failure in failures:
        kind, name = (printable(str(failure.get(k, "?"))) for k in ("kind", "name"))
        lines.append(f"  {kind}[{name}]: {printable(str(failure.get('error') or 'failed'))}")
    return "\n".join(lines) + "\n"


def printable(text: str) -> str:
    """``text`` with what a terminal would act on or break a line at (C0 and C1
    controls, DEL, the Unicode line breaks) shown escaped: a host's words."""
    return one_line(text)
