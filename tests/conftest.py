"""Suite-wide policy: in CI a skipped test fails the run.

Tests call :func:`support.require_tools`, which already fails in CI; this hook
is the backstop for any other skip (a marker, an import-time skip) so that a
green CI always means every test ran.
"""

from __future__ import annotations

import pytest

from support import IN_CI

_skipped = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    if IN_CI and _skipped:
        terminalreporter.write_line(
            f"CI: {len(_skipped)} test(s) skipped; in CI every test must run:", red=True
        )
        for nodeid in _skipped:
            terminalreporter.write_line(f"  {nodeid}", red=True)


@pytest.fixture
def mgmt_log():
    """mgmt's log lines (info and up) in a StringIO; the previous set-up is put back after."""
    from io import StringIO

    from mgmt import log

    saved = (log._Output.level, log._Output.stream)
    captured = StringIO()
    log.setup(0, captured)
    yield captured
    log._Output.level, log._Output.stream = saved
