"""Paths the user names: checked before any work starts, and output folders undone on failure.

House rules: a file or folder the user named that cannot serve (missing, a
directory where a file is wanted, a device, a folder we may not write into)
is bad input, one line naming the option and the path, exit 2; and nothing
half-written: folders a run made for its output go again if the run fails,
so a failed run leaves the disk as it found it.

Writability is asked of the kernel with access(2), which sees the mode bits,
the capabilities (root without CAP_DAC_OVERRIDE is refused like anyone else)
and read-only mounts, and touches nothing.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
from pathlib import Path
from typing import Iterator, List, Optional

from mgmt_pkg.errors import InvalidInput, MgmtPkgError

__all__ = [
    "check_input_file",
    "check_output_dir",
    "check_output_file",
    "not_utf8",
    "output_folder",
    "read_input_text",
    "stat_named",
    "writing",
]

# Errors that mean "not a place you may write", rather than "the write failed".
_REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS)


def _shown(path: object) -> str:
    """A path as an error message shows it: as is if printable, else quoted."""
    text = str(path)
    return text if text and text.isprintable() else repr(text)


def stat_named(where: str, path: Path, *, follow: bool = True) -> Optional[os.stat_result]:
    """stat (or lstat) a path the user named: None if nothing is there.

    Not Path.exists()/is_dir()/is_file(): they say False only for a missing
    path and raise for the rest (a name longer than 255 bytes, a folder on the
    way we may not enter), which would end the run as a failed operation
    (exit 1) without naming the option. Here the rest is bad input naming
    ``where`` (the option and the path).
    """
    try:
        return os.stat(path) if follow else os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise InvalidInput(f"{where}: {error.strerror or error}") from None
    except ValueError:  # a NUL byte in the name
        raise InvalidInput(f"{where}: the path holds a NUL byte") from None


def _is_dir(where: str, path: Path) -> bool:
    info = stat_named(where, path)
    return info is not None and stat.S_ISDIR(info.st_mode)


def check_input_file(path: Path) -> Path:
    """``path`` must be a regular file (after symlinks); else InvalidInput saying what it is."""
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidInput(f"{_shown(path)}: no such file") from None
    except OSError as error:  # a folder on the way we may not enter, a symlink loop
        raise InvalidInput(f"{_shown(path)}: cannot read: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"{_shown(path)}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"{_shown(path)}: not a regular file (a device, FIFO or socket)")
    return path


def read_input_text(path: Path, what: str = "") -> str:
    """The UTF-8 text of a file the user named (``what``: the option, for the
    message); InvalidInput if it is no regular file (a device or FIFO would be
    read without end) or not UTF-8."""
    where = f"{what} {_shown(path)}" if what else _shown(path)
    try:
        check_input_file(path)
        data = path.read_bytes()
    except InvalidInput as error:
        raise InvalidInput(f"{what} {error}" if what else str(error)) from None
    except OSError as error:
        raise InvalidInput(f"{where}: cannot read: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(where, error) from None


def not_utf8(where: str, error: UnicodeDecodeError) -> InvalidInput:
    """The one wording of "this file is not UTF-8": ``where`` (the file, as the
    message names it), then its line and the offending byte's offset.

    Both are counted in ``error.object``, the bytes that were decoded: decode
    the whole file, from its first byte, for them to be the file's.
    """
    data = error.object
    line = data.count(b"\n", 0, error.start) + 1
    return InvalidInput(f"{where}:{line}: not UTF-8 text (byte {error.start}); save it as UTF-8")


def check_output_dir(option: str, value: str) -> Path:
    """The folder an option names for output: it may not exist yet, but it cannot be a file."""
    if not value:
        raise InvalidInput(f"{option}: the path is empty")
    path = Path(value)
    info = stat_named(f"{option} {_shown(value)}", path)
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"{option} {_shown(value)}: exists and is not a directory")
    return path


def check_output_file(option: str, value: str, *, make_parents: bool = False) -> Path:
    """The file an option names for output, checked before anything is built.

    Without ``make_parents`` its folder must exist and be writable; with it,
    the missing folders are made later, by :func:`output_folder`.
    """
    if not value:
        raise InvalidInput(f"{option}: the path is empty")
    path = Path(value)
    where = f"{option} {_shown(value)}"
    info = None if value.endswith("/") else stat_named(where, path)
    if value.endswith("/") or (info is not None and stat.S_ISDIR(info.st_mode)):
        raise InvalidInput(f"{where}: is a directory; give a file name")
    if info is not None and not stat.S_ISREG(info.st_mode):
        # Written by a rename over it: a device such as /dev/null would be replaced.
        raise InvalidInput(f"{where}: exists and is not a regular file")
    parent = path.parent
    if make_parents:
        _check_creatable(option, parent)
        return path
    parent_info = stat_named(where, parent)
    if parent_info is None or not stat.S_ISDIR(parent_info.st_mode):
        what = "does not exist" if parent_info is None else "is not a directory"
        raise InvalidInput(f"{where}: its directory {_shown(parent)} {what}")
    _check_writable(option, parent)
    return path


@contextlib.contextmanager
def output_folder(option: str, directory: Path) -> Iterator[Path]:
    """Make ``directory`` (and missing parents) for a run's output and check we may write there.

    If the body fails (or is interrupted) the folders made here are removed
    again, deepest first and only while empty: the run's own files are the
    body's to remove, anything else found there is left alone.
    """
    made = _make_dirs(option, directory)
    try:
        _check_writable(option, directory)
        yield directory
    except BaseException:
        _remove_empty(made)
        raise


@contextlib.contextmanager
def writing(option: str, target: Path) -> Iterator[None]:
    """An OSError while writing the output ``option`` names, as one line naming it.

    access(2) can say yes where the file system then says no (sysfs, some
    network mounts): a place we may not write is still bad input (exit 2);
    anything else, a full disk or an I/O error, is a failed operation (exit 1).
    """
    try:
        yield
    except OSError as error:
        message = f"{option}: cannot write to {_shown(target)}: {error.strerror or error}"
        if error.errno in _REFUSED:
            raise InvalidInput(message) from None
        raise MgmtPkgError(message) from None


def _check_creatable(option: str, folder: Path) -> None:
    """The deepest existing path at or above ``folder``, where mkdir -p would start, is a folder."""
    where = f"{option} {_shown(folder)}"
    for candidate in (folder, *folder.parents):
        if stat_named(where, candidate, follow=False) is not None:
            if not _is_dir(where, candidate):
                raise InvalidInput(
                    f"{option}: cannot create {_shown(folder)}: "
                    f"{_shown(candidate)} is not a directory"
                )
            return


def _make_dirs(option: str, directory: Path) -> List[Path]:
    """mkdir -p, returning the folders it made, top first (none if all existed)."""
    where = f"{option} {_shown(directory)}"
    chain = (directory, *directory.parents)
    missing = list(itertools.takewhile(lambda p: not _is_dir(where, p), chain))
    made: List[Path] = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if _is_dir(where, folder):  # made meanwhile by someone else: theirs, not ours to remove
                continue
            _remove_empty(made)
            raise InvalidInput(
                f"{option}: cannot create {_shown(directory)}: {_shown(folder)} is not a directory"
            ) from None
        except OSError as error:
            _remove_empty(made)
            raise InvalidInput(
                f"{option}: cannot create {_shown(directory)}: {error.strerror}"
            ) from None
        made.append(folder)
    return made


def _check_writable(option: str, directory: Path) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        try:  # access() says False for any error, statvfs() then names it
            read_only = os.statvfs(directory).f_flag & os.ST_RDONLY
            why = "read-only file system" if read_only else "permission denied"
        except OSError as error:
            why = error.strerror or str(error)
        raise InvalidInput(f"{option}: cannot write into {_shown(directory)}: {why}")


def _remove_empty(made: List[Path]) -> None:
    for folder in reversed(made):
        with contextlib.suppress(OSError):  # not empty: someone else's files are in it
            folder.rmdir()
