"""The one state-dir helper of the agent and the --remote initiator."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mgmt.errors import MgmtError
from mgmt.settings import Settings
from mgmt.statedir import state_dir


def test_tmp_prefix_is_private_and_removed_at_exit():
    with state_dir(Settings(tmp_prefix=True), "initiator") as folder:
        path = Path(folder)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
        (path / "etcd").mkdir()
    assert not path.exists()


def test_prefix_with_a_subdir_is_made_private_and_kept(tmp_path):
    with state_dir(Settings(prefix=str(tmp_path / "state")), "initiator") as path:
        assert path == str(tmp_path / "state" / "initiator")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert os.path.isdir(path)
    with state_dir(Settings(prefix=str(tmp_path / "state"))) as path:
        assert path == str(tmp_path / "state")


def test_an_unusable_prefix_says_what_to_do(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    unusable = state_dir(Settings(prefix=str(blocker / "state")), "initiator")
    with pytest.raises(MgmtError, match="--tmp-prefix") as caught:
        unusable.__enter__()
    assert str(blocker / "state" / "initiator") in str(caught.value)


def test_tmp_prefix_without_a_usable_temporary_directory_is_a_clear_error(monkeypatch):
    """It was 'internal error: FileNotFoundError: No usable temporary directory'."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/mgmt-test")
    said = r"^--tmp-prefix: no temporary directory to use .*TMPDIR"
    with pytest.raises(MgmtError, match=said), state_dir(Settings(tmp_prefix=True)):
        pass
