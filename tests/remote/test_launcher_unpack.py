"""The launcher's unpacking of a cached bundle: what shiv wrote comes out whole, anything else
falls back to running from the zip, and nothing lands outside the target.

The launcher reads the zip itself (struct and zlib, not zipfile: see
mgmt.remote.protocol.unpacked.extract), so these check it against zipfile's own
reading of the real bundle, and feed it the zips it must refuse.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from mgmt.remote.protocol import unpacked
from mgmt.remote.protocol.unpacked import extract, unpack

PREFIX = "site-packages/"


def _zip(path: Path, members: dict, *, compression=zipfile.ZIP_DEFLATED, head=b"") -> Path:
    """A zip of ``members`` (name: bytes) at ``path``, with ``head`` before it (a shebang)."""
    with open(path, "wb") as f:
        f.write(head)  # as zipapp and shiv write one
        with zipfile.ZipFile(f, "w", compression) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    return path


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_bundle_unpacks_to_what_zipfile_reads_in_it(bundle, tmp_path):
    extract(str(bundle), PREFIX, str(tmp_path / "out"))
    with zipfile.ZipFile(bundle) as archive:
        expected = {
            info.filename: archive.read(info)
            for info in archive.infolist()
            if info.filename.startswith(PREFIX) and not info.is_dir()
        }
    assert bundle.read_bytes().startswith(b"#!")  # shiv's shebang comes before the archive
    assert len(expected) > 100  # the agent and PyYAML, not an empty sweep
    assert _files(tmp_path / "out") == expected


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_only_members_under_the_prefix_are_written(tmp_path, compression):
    archive = _zip(
        tmp_path / "a.pyz",
        {"__main__.py": b"main", PREFIX + "m/a.py": b"a = 1\n", PREFIX + "b.py": b""},
        compression=compression,
        head=b"#!/usr/bin/env python3\n",
    )
    extract(str(archive), PREFIX, str(tmp_path / "out"))
    assert _files(tmp_path / "out") == {PREFIX + "m/a.py": b"a = 1\n", PREFIX + "b.py": b""}


@pytest.mark.parametrize(
    "name", [PREFIX + "../escape.py", PREFIX + "m/../../escape.py", PREFIX + "m//abs.py"]
)
def test_a_name_that_would_leave_the_target_is_refused(tmp_path, name):
    archive = _zip(tmp_path / "a.pyz", {name: b"x"})
    with pytest.raises(ValueError, match="not extracted here"):
        extract(str(archive), PREFIX, str(tmp_path / "in" / "out"))
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "in" / "escape.py").exists()


def test_a_damaged_member_is_refused(tmp_path):
    data = b"payload " * 64
    archive = _zip(tmp_path / "a.pyz", {PREFIX + "m.py": data}, compression=zipfile.ZIP_STORED)
    raw = archive.read_bytes()
    archive.write_bytes(raw.replace(data, data[:-1] + b"!"))  # same size, wrong CRC
    with pytest.raises(ValueError, match="damaged zip member"):
        extract(str(archive), PREFIX, str(tmp_path / "out"))


@pytest.mark.parametrize(
    "write",
    [
        lambda path: _zip(path, {PREFIX + "m.py": b"x = 1\n"}, compression=zipfile.ZIP_BZIP2),
        lambda path: path.write_bytes(b"#!/bin/sh\nnot a zip at all\n"),
        lambda path: path.write_bytes(_zip(path, {PREFIX + "m.py": b"x"}).read_bytes()[:-30]),
    ],
    ids=["bzip2", "not a zip", "truncated"],
)
def test_a_zip_it_does_not_read_runs_from_the_zip_and_leaves_no_partial_copy(tmp_path, write):
    bundle = tmp_path / "bundles" / "b.pyz"
    bundle.parent.mkdir()
    write(bundle)
    site = tmp_path / "shiv" / "b.pyz_1234" / "site-packages"
    site.parent.parent.mkdir()
    assert unpack(str(bundle), str(site)) == str(bundle) + "/site-packages"
    assert list((tmp_path / "shiv").iterdir()) == []


def test_a_bundle_unpacks_whole_where_the_launcher_runs_it_from(bundle, tmp_path):
    site = tmp_path / "shiv" / "b.pyz_1234" / "site-packages"
    site.parent.parent.mkdir()
    assert unpack(str(bundle), str(site)) == str(site)
    assert (site / "mgmt" / "cli.py").is_file() and (site / "yaml" / "__init__.py").is_file()
    assert [p.name for p in (tmp_path / "shiv").iterdir()] == ["b.pyz_1234"]  # no partial left


def test_an_interrupt_mid_unpack_leaves_no_partial_copy(bundle, tmp_path, monkeypatch):
    def extract_then_interrupt(*args):
        extract(*args)  # everything written, then ^C before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(unpacked, "extract", extract_then_interrupt)
    site = tmp_path / "shiv" / "b.pyz_1234" / "site-packages"
    site.parent.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        unpacked.unpack(str(bundle), str(site))
    assert list((tmp_path / "shiv").iterdir()) == []


def test_another_starts_partial_copy_is_left_alone(bundle, tmp_path):
    # Hosts sharing a home over NFS can start with the same pid: a name made
    # from it would unpack into, and then remove, the other host's copy.
    shiv = tmp_path / "shiv"
    theirs = shiv / f"b.pyz_1234.{os.getpid()}.partial"
    (theirs / "site-packages").mkdir(parents=True)
    (theirs / "site-packages" / "half.py").write_bytes(b"x = 1\n")
    site = shiv / "b.pyz_1234" / "site-packages"
    assert unpack(str(bundle), str(site)) == str(site)
    assert (site / "mgmt" / "cli.py").is_file()
    assert sorted(p.name for p in shiv.iterdir()) == ["b.pyz_1234", theirs.name]
    assert _files(theirs) == {"site-packages/half.py": b"x = 1\n"}
