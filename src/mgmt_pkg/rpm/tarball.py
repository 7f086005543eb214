"""Source0: the payload as a reproducible tarball, the SRPM's copy of the files.

Same entries, same bytes: members sorted by path, owner 0/0 (root), mtimes
clamped between 0 and SOURCE_DATE_EPOCH, GNU format with UTF-8 names, and gzip without a
name or time stamp. Modes are normalised (0755 for directories and executables,
0644 otherwise) so that any user can extract and remove the tree; the spec's
%attr carries each entry's real mode, owner and group into the RPM. A later
name of a hard-linked file is a tar hard link to the first name in sorted order
(mgmt_pkg.rpm.hardlinks), which comes before it in the archive, so tar (and
GNU tar's --strip-components, which strips link targets too) extracts one inode.
"""

from __future__ import annotations

import errno
import gzip
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, Sequence

from mgmt_pkg.errors import InvalidInput, MgmtPkgError
from mgmt_pkg.rpm.hardlinks import link_targets
from mgmt_pkg.rpm.payload import Entry, shown

__all__ = ["WRITE_ERRORS", "out_of_space", "write_tarball"]


# What only writing gives: the build's temp dir is full (a tmpfs /tmp) or over quota.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def out_of_space(what: str, reason: str) -> MgmtPkgError:
    """The error for a build that ran out of room in the temp dir (exit 1)."""
    return MgmtPkgError(
        f"cannot write {what} in {tempfile.gettempdir()}: {reason}; set TMPDIR to a "
        "folder with more room (a build takes up to four times the files' size there)"
    )


def write_tarball(target: Path, top: str, entries: Sequence[Entry], source_date_epoch: int) -> None:
    """Write ``entries`` under ``top/`` into ``target`` (a .tar.gz)."""
    try:
        _write(target, top, entries, source_date_epoch)
    except OSError as error:  # only writing raises it here: _add_file names a file it cannot read
        raise out_of_space(f"Source0 ({target.name})", error.strerror or str(error)) from None


def _write(target: Path, top: str, entries: Sequence[Entry], source_date_epoch: int) -> None:
    links = link_targets(entries)
    mtimes: Dict[str, int] = {}  # of the files written, for the links to them
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8") as tar,
    ):
        for entry in sorted(entries, key=lambda e: e.path):
            info = tarfile.TarInfo(f"{top}{entry.path}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            executable = entry.kind == "dir" or entry.mode & 0o111
            info.mode = 0o755 if executable else 0o644
            if entry.kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.target, 0o777
                info.mtime = source_date_epoch
                tar.addfile(info)
            elif entry.kind == "dir":
                info.type, info.mtime = tarfile.DIRTYPE, source_date_epoch
                tar.addfile(info)
            elif entry.path in links:
                first = links[entry.path]
                info.type, info.linkname = tarfile.LNKTYPE, f"{top}{first}"
                info.mtime = mtimes[first]  # the inode's: tar sets none for a link
                tar.addfile(info)
            else:
                mtimes[entry.path] = _add_file(tar, info, entry, source_date_epoch)


def _add_file(tar: tarfile.TarFile, info: tarfile.TarInfo, entry: Entry, clamp: int) -> int:
    """Add the file's content; returns the mtime written."""
    try:
        with open(entry.source, "rb") as stream:
            status = os.fstat(stream.fileno())
            info.size = status.st_size
            if not info.size and stream.read(1):
                # /proc and /sys files say 0 bytes and hold more: it would be packed empty.
                why = "it says 0 bytes but holds more (a /proc or /sys file?); copy it first"
                raise InvalidInput(f"{shown(entry.source)}: cannot package: {why}")
            # rpm keeps times as unsigned 32 bits: one before 1970 would wrap to 2086.
            info.mtime = max(0, min(int(status.st_mtime), clamp))
            tar.addfile(info, stream)
            # tarfile copies the size fstat gave: a file written meanwhile (a log,
            # a build step not done) would be packed cut short or mixed, in silence.
            after = os.fstat(stream.fileno())
            if (after.st_size, after.st_mtime_ns) != (status.st_size, status.st_mtime_ns):
                raise InvalidInput(
                    f"{shown(entry.source)}: cannot read: it changed while it was packed"
                )
            return info.mtime
    except OSError as error:
        if error.errno in WRITE_ERRORS:
            raise  # the archive's, not the file's: write_tarball says so
        # No strerror: tarfile found fewer bytes than fstat said (it shrank meanwhile).
        why = error.strerror or f"{error}: it changed while it was packed"
        raise InvalidInput(f"{shown(entry.source)}: cannot read: {why}") from None
