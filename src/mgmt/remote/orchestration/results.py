"""What a run reports per host: its result, and the summary table."""

from typing import List, NamedTuple, TextIO

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

    @property
    def failed(self) -> bool:
        return self.result == FAILED


def print_summary(results: List[HostResult], out: TextIO) -> None:
    """One line per host: host, result, bundle copied or cached, time, and why if it failed."""
    rows = [("host", "result", "bundle", "time", "")]
    rows += [(r.host, r.result, r.bundle, f"{r.seconds:.1f}s", r.message) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        out.write("  ".join(cells).rstrip() + "\n")
    out.flush()
