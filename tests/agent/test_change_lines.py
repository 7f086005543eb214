"""A kind logs a change ("created", "wrote content", "started") only once it is made.

A change that fails must show as the failure alone: a "created" line followed
by "failed" told the reader the file existed. Each failure below is real (a
regular file where a directory is needed) or injected at the one call that makes
the change; nothing here touches the machine outside tmp_path.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pytest
from helpers import AgentProcess, run_mgmt

import mgmt.resources.file as file_mod
import mgmt.resources.filetree as filetree_mod
import mgmt.resources.svc as svc_mod
from mgmt.resources.base import Init, ResourceError, fill_params
from mgmt.resources.file import FileRes
from mgmt.resources.hostname import HostnameRes
from mgmt.resources.svc import SvcRes
from mgmt.resources.unitctl import UnitError
from support.polling import wait_for


class RecordingLog:
    """A resource's logger that keeps its info lines, each with what ``probe``
    saw at the moment it was logged (so a test can tell "after the change")."""

    def __init__(self, probe: Optional[Callable[[], Any]] = None):
        self.probe = probe or (lambda: None)
        self.lines: List[Tuple[str, Any]] = []

    def info(self, msg: str, *args: Any, **_kw: Any) -> None:
        self.lines.append((msg % args if args else msg, self.probe()))

    def debug(self, msg: str, *args: Any, **_kw: Any) -> None:
        pass

    warning = error = debug

    @property
    def texts(self) -> List[str]:
        return [text for text, _ in self.lines]


def setup(res, watcher, tmp_path, log: RecordingLog):
    res.setup(Init("test", log, str(tmp_path / "state"), watcher, lambda: None,
                   stopping=threading.Event()))  # fmt: skip
    return res


def file_res(watcher, tmp_path, log: RecordingLog, **params) -> FileRes:
    return setup(FileRes("f", fill_params(FileRes, params)), watcher, tmp_path, log)


def fail(*_args: Any, **_kw: Any) -> None:
    raise OSError(errno.EIO, "Input/output error")


def dangling(tmp_path: Path) -> Path:
    """A directory that cannot be made: a link to nowhere holds its name (as /proc
    refuses /proc/nonexistent-dir, but inside tmp_path). The file below it reads
    as missing, so the kind sets out to create it."""
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere" / "deeper")
    return link


def test_a_file_whose_directory_cannot_be_made_is_not_logged_as_created(watcher, tmp_path):
    target = dangling(tmp_path) / "x"
    log = RecordingLog()
    res = file_res(watcher, tmp_path, log, path=str(target), content="x")
    with pytest.raises(ResourceError):
        res.check_apply(True)
    assert log.texts == []


# (name, prepare(tmp_path) -> params, (object, attribute) whose call fails)
def _create(tmp: Path) -> dict:
    return {"path": str(tmp / "new"), "content": "x"}


def _rewrite(tmp: Path) -> dict:
    (tmp / "f").write_text("old")
    return {"path": str(tmp / "f"), "content": "new"}


def _mode(tmp: Path) -> dict:
    (tmp / "f").write_text("same")
    (tmp / "f").chmod(0o600)
    return {"path": str(tmp / "f"), "content": "same", "mode": "0644"}


def _owner(tmp: Path) -> dict:
    (tmp / "f").write_text("same")
    return {"path": str(tmp / "f"), "content": "same", "owner": os.getuid() + 4242}


def _absent(tmp: Path) -> dict:
    (tmp / "f").write_text("bye")
    return {"path": str(tmp / "f"), "state": "absent"}


def _dir_to_file(tmp: Path) -> dict:
    (tmp / "d").mkdir()
    return {"path": str(tmp / "d"), "content": "x", "force": True}


def _new_dir(tmp: Path) -> dict:
    return {"path": str(tmp / "d") + "/"}


def _tree(tmp: Path) -> dict:
    (tmp / "src").mkdir()
    (tmp / "src" / "a").write_text("a")
    (tmp / "dst").mkdir()
    return {"path": str(tmp / "dst") + "/", "source": str(tmp / "src"), "recurse": True}


FAILURES = [
    ("create", _create, (file_mod, "atomic_write")),
    ("rewrite", _rewrite, (file_mod, "atomic_write")),
    ("mode", _mode, (os, "fchmod")),
    ("owner", _owner, (os, "fchown")),
    ("absent", _absent, (os, "unlink")),
    ("directory-to-file", _dir_to_file, (file_mod, "remove_tree")),
    ("new-directory", _new_dir, (os, "makedirs")),
    ("tree-copy", _tree, (filetree_mod, "atomic_write")),
]


@pytest.mark.parametrize("prepare, target", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_a_change_that_fails_logs_no_line_claiming_it(watcher, tmp_path, monkeypatch,
                                                      prepare, target):  # fmt: skip
    work = tmp_path / "w"
    work.mkdir()
    params = prepare(work)
    log = RecordingLog()
    res = file_res(watcher, tmp_path, log, **params)
    monkeypatch.setattr(*target, fail)
    with pytest.raises(ResourceError, match="Input/output error"):
        res.check_apply(True)
    monkeypatch.undo()
    assert log.texts == []
    # Under noop the same difference is still announced, as what would be done.
    noop_log = RecordingLog()
    assert file_res(watcher, tmp_path, noop_log, **params).check_apply(False) is False
    assert noop_log.texts and all("would" in t for t in noop_log.texts), noop_log.texts


def test_each_change_line_comes_once_the_change_is_on_disk(watcher, tmp_path):
    path = tmp_path / "f"

    def seen() -> Tuple[Optional[str], Optional[int]]:
        try:
            return path.read_text(), stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            return None, None

    log = RecordingLog(seen)
    first = file_res(watcher, tmp_path, log, path=str(path), content="one")
    assert first.check_apply(True) is False
    res = file_res(watcher, tmp_path, log, path=str(path), content="two", mode="0600")
    assert res.check_apply(True) is False  # content then, on the new file, nothing else
    path.chmod(0o640)
    assert res.check_apply(True) is False
    gone = file_res(watcher, tmp_path, log, path=str(path), state="absent")
    assert gone.check_apply(True) is False
    assert log.lines == [
        (f"created {path}", ("one", 0o644)),
        (f"wrote content of {path}", ("two", 0o600)),
        (f"set mode 0600 on {path}", ("two", 0o600)),
        (f"removed {path}", (None, None)),
    ]


def test_the_agent_logs_only_the_failure_of_a_file_it_cannot_create(tmp_path):
    # The tester's case end to end: one file that cannot be written, one that can.
    bad, good = dangling(tmp_path) / "x", tmp_path / "out" / "good"
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: lines\nresources:\n  file:\n"
        f"  - {{name: badfile, path: {bad}, content: x}}\n"
        f"  - {{name: good, path: {good}, content: y}}\n"
    )
    args = ["--file", str(graph), "--tmp-prefix", "--no-server", "--converged-timeout", "0"]
    result = run_mgmt(args)
    assert result.returncode == 1, result.stderr
    assert "badfile: failed: " in result.stderr
    assert f"created {bad}" not in result.stderr
    assert f"good: created {good}" in result.stderr and good.read_text() == "y"


def test_hostname_logs_only_the_names_it_did_set(watcher, tmp_path):
    # In memory: the names and how they are set are replaced, the machine's are never read.
    names = {"static_hostname": "old", "transient_hostname": "t", "pretty_hostname": "Old"}
    log = RecordingLog(lambda: dict(names))
    params = {"static_hostname": "web1", "pretty_hostname": "Web 1"}
    res = setup(HostnameRes("h", fill_params(HostnameRes, params)), watcher, tmp_path, log)

    def set_name(key: str, value: str) -> None:
        if key == "pretty_hostname":
            raise OSError(errno.EROFS, "Read-only file system")
        names[key] = value

    res.current = lambda: dict(names)  # type: ignore[method-assign]
    res._set = set_name  # type: ignore[method-assign]
    with pytest.raises(ResourceError, match="cannot set pretty_hostname: Read-only"):
        res.check_apply(True)
    assert log.lines == [("set static_hostname to 'web1' (was 'old')", {**names})]
    assert names["static_hostname"] == "web1"


def test_svc_logs_a_step_only_once_systemctl_did_it(watcher, tmp_path, monkeypatch):
    ran: List[str] = []

    def systemctl(argv: List[str]) -> None:
        if argv[0] == "start":
            raise UnitError("systemctl start failed: Job for x.service failed")
        ran.append(argv[0])
        props["UnitFileState"] = "enabled"  # the enable took: the kind reads it back

    props = {"LoadState": "loaded", "ActiveState": "inactive", "UnitFileState": "disabled"}
    monkeypatch.setattr(svc_mod, "unit_properties", lambda unit: props)
    monkeypatch.setattr(svc_mod, "properties", lambda unit: props)
    monkeypatch.setattr(svc_mod, "systemctl", systemctl)
    log = RecordingLog(lambda: list(ran))
    params = {"state": "running", "startup": "enabled"}
    res = setup(SvcRes("x", fill_params(SvcRes, params)), watcher, tmp_path, log)
    with pytest.raises(ResourceError, match="start failed"):
        res.check_apply(True)
    assert log.lines == [("enabled x.service", ["enable"])]


def test_a_noop_difference_checked_again_is_listed_once_in_json(tmp_path):
    # Each check's differences were added to --json's changes: a file touched
    # (each touch an event, a check) listed its one difference once per check.
    target = tmp_path / "f"
    target.write_text("old\n")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f'graph: g\nresources:\n  file:\n  - name: f\n    path: {target}\n    content: "new\\n"\n'
    )
    state = str(tmp_path / "state")
    agent = AgentProcess(
        ["--file", str(graph), "--no-server", "--prefix", state, "--noop", "--json"],
        tmp_path / "agent.log",
        confined=tmp_path,
    )
    try:
        for checks in (1, 2, 3):
            assert wait_for(lambda n=checks: agent.log.count("would rewrite content") >= n)
            os.utime(target)  # the same state, checked again
    finally:
        assert agent.stop() == 0, agent.log
    assert target.read_text() == "old\n"
    (line,) = [x for x in agent.log.splitlines() if x.startswith('{"version"')]
    (row,) = json.loads(line)["resources"]
    assert row["result"] == "would-change"
    assert [(c["field"], c["applied"]) for c in row["changes"]] == [("content", False)]
