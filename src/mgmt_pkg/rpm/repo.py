"""Make a folder of RPMs into a yum/dnf repository with createrepo_c."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, List, Sequence, Tuple

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.paths import stat_named, writing
from mgmt_pkg.rpm.inspect import check_digests
from mgmt_pkg.rpm.tools import find_tool, run_tool

__all__ = ["Repository", "make_repo"]


@dataclass(frozen=True)
class Repository:
    path: Path
    packages: int

    @property
    def repomd(self) -> Path:
        return self.path / "repodata" / "repomd.xml"


def make_repo(folder: Path) -> Repository:
    """Run createrepo_c over ``folder`` (binary and source RPMs alike).

    createrepo_c skips a file it cannot read, with a warning, and exits 0: a
    stray or damaged file would silently be missing from the repository. So
    every .rpm is checked first, and createrepo_c writes into a stage beside
    the folder's repodata; only if it indexed every package does the new
    repodata replace the old (swapped in one step: see _replace), so a
    refused run leaves the repository as it was. The count reported is what
    createrepo_c indexed.
    """
    info = stat_named(str(folder), folder)
    if info is None or not stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"{folder}: not a directory")
    # The new repodata is renamed onto this path: a file or a symlink there would
    # fail that rename after all the work, with the stage's name in the message.
    existing = stat_named(str(folder / "repodata"), folder / "repodata", follow=False)
    if existing is not None and not stat.S_ISDIR(existing.st_mode):
        what = "a symlink" if stat.S_ISLNK(existing.st_mode) else "not a directory"
        raise InvalidInput(
            f"{folder / 'repodata'}: is {what}, where the repository's metadata goes: move it away"
        )
    # A symlink to a folder above the repository is a loop too (and would index all that).
    parents = (os.stat(parent) for parent in folder.resolve().parents)
    rpms = sorted(_find_rpms(folder, frozenset((p.st_dev, p.st_ino) for p in parents)))
    if not rpms:
        raise InvalidInput(f"{folder}: contains no .rpm files")
    _check_packages(rpms)
    executable = find_tool(
        "createrepo_c", debian_package="createrepo-c", fedora_package="createrepo_c"
    )
    # In the folder, so that the new repodata is renamed into place on one file system.
    try:
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=".mgmt-pkg-repo-"))
    except OSError as error:
        raise InvalidInput(f"{folder}: cannot write repodata there: {error.strerror}") from None
    try:
        # createrepo_c's own list of the packages it read into the metadata, relative
        # to the folder; unlike primary.xml it does not depend on the metadata's
        # compression (gzip in createrepo_c 0.x, zstd in 1.x).
        indexed_list = stage / "indexed"
        command = [executable, "--quiet", f"--read-pkgs-list={indexed_list}",
                   "--outputdir", str(stage), str(folder)]  # fmt: skip
        output = run_tool("createrepo_c", command)
        indexed = set(indexed_list.read_text(encoding="utf-8", errors="replace").splitlines())
        skipped = [path for path in rpms if path.relative_to(folder).as_posix() not in indexed]
        if skipped:
            raise InvalidInput(_skipped(skipped, output))
        # An old repodata we may not move (another user's, in a sticky folder): exit 2
        with writing(str(folder), folder / "repodata"):
            _replace(stage / "repodata", folder / "repodata", stage / "old")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Repository(folder, len(indexed))


def _find_rpms(folder: Path, above: FrozenSet[Tuple[int, int]]) -> List[Path]:
    """The .rpm files below ``folder``, through symlinks as createrepo_c goes.

    Not Path.rglob: it passes over a folder it cannot read, whose packages were then
    missing from the repository without a word, and it follows a symlink back to a
    folder above it (``loop -> ..``) some forty times, as createrepo_c does, which
    indexed each package as many times. Both are refused, naming the folder.
    ``above``: the (device, inode) of the folders above ``folder``.
    """
    info = stat_named(str(folder), folder)
    found: List[Path] = []
    # (folder, the folders it is in, itself included); a stack, not recursion: any depth
    stack = [(folder, above | {(info.st_dev, info.st_ino)})]
    while stack:
        directory, here = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name, reverse=True)
        except OSError as error:
            raise InvalidInput(f"{directory}: cannot read: {error.strerror or error}") from None
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # through a symlink
            except OSError:
                is_dir = False  # a symlink loop on itself: as a file, refused later if *.rpm
            if is_dir:
                target = entry.stat()
                if (target.st_dev, target.st_ino) in here:
                    raise InvalidInput(
                        f"{path}: a symlink to a folder it is in: createrepo_c would index "
                        "the packages there again and again; remove it"
                    )
                stack.append((path, here | {(target.st_dev, target.st_ino)}))
            elif entry.name.endswith(".rpm"):
                found.append(path)
    return found


def _check_packages(rpms: Sequence[Path]) -> None:
    """Refuse files that are not RPM packages, or damaged ones, before createrepo_c runs."""
    problems: List[str] = []
    for path in rpms:
        try:
            check_digests(path)
        except InvalidInput as error:
            problems.append(str(error))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInput(f"{problems[0]}{more}; the repository is unchanged")


def _skipped(skipped: Sequence[Path], output: str) -> str:
    """One line: the first file createrepo_c skipped, with rpm's reason if it gave one."""
    first = str(skipped[0])
    reason = next(
        (line.split(f"{first}: ", 1)[1].strip() for line in output.splitlines()
         if f"{first}: " in line),
        None,
    )  # fmt: skip
    because = f" ({reason})" if reason else ""
    more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
    return (
        f"{first}: createrepo_c could not read it as a package{because}{more}; "
        "the repository is unchanged"
    )


def _exchange(one: Path, other: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the
    C library or the file system cannot, and nothing was done."""
    import ctypes  # here: only repo needs it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # not glibc 2.28 or later
        return False
    at_cwd, rename_exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE from <fcntl.h>, <stdio.h>
    done = renameat2(at_cwd, os.fsencode(one), at_cwd, os.fsencode(other), rename_exchange)
    if done == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(other))


def _replace(new: Path, target: Path, old: Path) -> None:
    """Put ``new`` at ``target``, moving what was there to ``old`` (removed by the caller).

    An existing repodata is swapped with the new one in one step where Linux can:
    renamed away first, it left a moment without repomd.xml, in which a dnf reading
    the repository (served by mgmt-pkg serve, say) failed to find it.
    """
    moved = target.is_dir() and not target.is_symlink()
    if moved and _exchange(new, target):
        os.rename(new, old)  # the old repodata, now at ``new``
        return
    if moved:
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if moved:  # put the old repodata back rather than leave none
            os.rename(old, target)
        raise
