"""exec's finer points as mgmt has them, and errors that say which command failed."""

from __future__ import annotations

import pytest
from helpers import make_init

from mgmt.resources.base import ResourceError, fill_params
from mgmt.resources.exec import ExecRes


def exec_res(watcher, tmp_path, event=None, **params):
    res = ExecRes("e", fill_params(ExecRes, params))
    res.setup(make_init(watcher, tmp_path, event=event))
    return res


def test_watchcmd_empty_lines_trigger_nothing_as_in_mgmt(watcher, tmp_path):
    """mgmt runs cmd for a watchcmd line with text only (``if text != ""``): each
    empty line (a heartbeat, a blank between records) ran cmd once more here."""
    events = []
    res = exec_res(
        watcher,
        tmp_path,
        event=lambda: events.append(1),
        cmd="true",
        watchcmd="printf '\\n\\r\\n\\nrecord\\n\\n'",
        watchshell="/bin/sh",
    )
    res.watch()
    try:
        (reader,) = res.threads
        reader.join(timeout=10)  # it read to the end: the watchcmd ended
        assert not reader.is_alive()
        assert len(events) == 1  # "record" alone
    finally:
        res.close()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ifcmd": "no-such-command-k8"}, "cannot run ifcmd 'no-such-command-k8': "),
        ({"ifcmd": "true", "ifshell": "/no/such/shell"}, "cannot run ifcmd 'true': its shell"),
        ({"ifcmd": "sleep 30", "timeout": 1}, "ifcmd 'sleep 30' timed out after 1 s"),
    ],
)
def test_an_ifcmd_that_fails_to_run_is_named_as_the_ifcmd(watcher, tmp_path, params, message):
    """The error read as if cmd had failed: with cmd and ifcmd alike (`test -e`
    both), which of the two to fix was a guess."""
    out = tmp_path / "out"
    res = exec_res(watcher, tmp_path, cmd=f"touch {out}", **params)
    with pytest.raises(ResourceError, match=message):
        res.check_apply(True)
    assert not out.exists()
