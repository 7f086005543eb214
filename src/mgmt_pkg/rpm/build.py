"""Run rpmbuild on a rendered spec and move the results into place.

One ``rpmbuild -ba`` call makes both the SRPM and the RPM (one start-up of
rpm instead of two). The build happens in a private _topdir under a temp dir;
results reach the output directory only after the whole build succeeded, each
by an atomic rename, so a failed or interrupted build leaves nothing
half-written there (and the output folders it made are removed again).

Reproducibility: SOURCE_DATE_EPOCH plus the macros below pin every time stamp
and the build host; the spec avoids expanding %{buildroot} (see the
template), so the random _topdir path never reaches the packages.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from mgmt_pkg.errors import InvalidInput, MgmtPkgError
from mgmt_pkg.files import write_atomically
from mgmt_pkg.paths import output_folder, writing
from mgmt_pkg.rpm.model import PhonyPackage
from mgmt_pkg.rpm.tools import find_tool, run_tool

__all__ = ["STAGES", "BuildResult", "build_package", "rpmbuild_command"]

# How far to go: the spec only, the spec and SRPM, or everything.
STAGES = ("spec", "srpm", "rpm")

REPRODUCIBLE_MACROS = {
    "use_source_date_epoch_as_buildtime": "1",
    "clamp_mtime_to_source_date_epoch": "1",
    "_buildhost": "reproducible",
    # The SRPM's files (spec, tarball) get their owner from the disk, the user
    # who builds, unless this says otherwise: root, as in the RPM and in COPR.
    "_srcdefattr": "(-,root,root)",
}
# The post-install scripts (brp-strip, brp-compress, ...) find nothing to do in
# a phony package (a README at most) but cost a third of rpmbuild's time; the
# unpackaged-files check cannot find anything either, since the template's
# %install writes exactly what %files lists, and costs another ~10 ms.
SPEED_MACROS = {"__os_install_post": "%{nil}", "__check_files": "%{nil}"}
# rpm runs shell commands to expand some macros on every start-up: the CPU count
# (once per build section) and, on Debian, the database path (via bash). A phony
# build needs neither: nothing is compiled, and with --nodeps (a phony spec has
# no BuildRequires) rpmbuild never opens the database. Together ~15 ms of ~45.
STARTUP_MACROS = {"_smp_build_ncpus": "1", "_dbpath": "%{_topdir}/rpmdb"}
# rpmbuild's scripts (rpm-tmp.*) go to %_tmppath, /var/tmp by default: inside
# the private _topdir instead, so that an interrupted build leaves nothing.
PRIVATE_MACROS = {"_tmppath": "%{_topdir}/tmp"}
# rpm keeps the spec macro-expanded in the SRPM, so %{SOURCE0} would carry the
# temporary _topdir into it. rpmbuild runs in _topdir with the sources named
# relative to it, and builds there too, so that %{SOURCE0} reads
# "SOURCES/NAME.tar.gz" in every build. A rebuild elsewhere uses its own paths.
PATH_MACROS = {"_sourcedir": "SOURCES", "_builddir": "%{_topdir}"}
# What rpmbuild cannot have in _topdir's path (see _check_temp_dir).
_UNSAFE_IN_TOPDIR = re.compile(r"""[\s'"\\$`]""")


@dataclass(frozen=True)
class BuildResult:
    spec: Path
    srpm: Optional[Path] = None
    rpm: Optional[Path] = None
    sources: Tuple[Path, ...] = ()  # written beside the spec by --spec-only only

    @property
    def paths(self) -> List[Path]:
        return [p for p in (self.spec, *self.sources, self.srpm, self.rpm) if p is not None]


def _spec_first(path: Path) -> Tuple[bool, str]:
    return (path.suffix != ".spec", path.name)


def find_rpmbuild() -> str:
    # Debian ships rpmbuild in "rpm", Fedora/RHEL in "rpm-build".
    return find_tool("rpmbuild", debian_package="rpm", fedora_package="rpm-build")


def rpmbuild_command(
    rpmbuild: str, spec: Path, topdir: Path, stage: str, arch: str = "noarch", fast: bool = True
) -> List[str]:
    """The rpmbuild call for a stage ("srpm" or "rpm"); shared with bench/.

    ``fast`` skips the post-install scripts and the unpackaged-files check:
    right for phony packages only, never for real files."""
    # --noclean: the private _topdir goes as a whole afterwards, %clean need not run.
    command = [rpmbuild, "-bs" if stage == "srpm" else "-ba", "--quiet", "--nodeps", "--noclean"]
    command += ["--define", f"_topdir {topdir}"]
    macros = {**REPRODUCIBLE_MACROS, **STARTUP_MACROS, **PRIVATE_MACROS, **PATH_MACROS}
    if fast:
        macros.update(SPEED_MACROS)
    for macro, value in macros.items():
        command += ["--define", f"{macro} {value}"]
    if arch != "noarch":
        # No binaries to compile, so any architecture can be "built" here.
        command += ["--target", arch]
    command.append(str(spec))
    return command


def _built(topdir: Path, pattern: str) -> Path:
    found = sorted(topdir.glob(pattern))
    if len(found) != 1:
        raise MgmtPkgError(f"rpmbuild wrote {len(found)} files matching {pattern}, expected 1")
    return found[0]


def build_package(
    package: PhonyPackage,
    spec_text: str,
    output_dir: Path,
    stage: str = "rpm",
    rpmbuild: Optional[str] = None,
    sources: Optional[Callable[[Path], None]] = None,
    fast: bool = True,
) -> BuildResult:
    """Build ``package`` from ``spec_text`` and place the results in output_dir.

    ``sources`` writes the spec's Source files into the folder it is given;
    ``fast`` as in :func:`rpmbuild_command`.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}")
    executable = None if stage == "spec" else rpmbuild or find_rpmbuild()
    if executable is not None:
        _check_temp_dir()
    # Made (and checked writable) before rpmbuild runs; removed again if the build fails.
    with output_folder("--output-dir", output_dir):
        return _build(package, spec_text, output_dir, stage, executable, sources, fast)


def _build(
    package: PhonyPackage,
    spec_text: str,
    output_dir: Path,
    stage: str,
    executable: Optional[str],
    sources: Optional[Callable[[Path], None]],
    fast: bool,
) -> BuildResult:
    spec_name = f"{package.name}.spec"
    if stage == "spec" and sources is None:
        _no_folder_at(output_dir, [spec_name])
        with writing("--output-dir", output_dir):
            write_atomically(output_dir / spec_name, spec_text.encode())
        return BuildResult(spec=output_dir / spec_name)
    if stage == "spec":  # the spec and its sources: what rpmbuild -ba would need
        with tempfile.TemporaryDirectory(prefix="mgmt-pkg-spec-") as temporary:
            folder = Path(temporary)
            (folder / spec_name).write_text(spec_text, encoding="utf-8")
            sources(folder)
            with writing("--output-dir", output_dir):
                spec, *tarballs = _place(output_dir, sorted(folder.iterdir(), key=_spec_first))
        return BuildResult(spec=spec, sources=tuple(tarballs))

    with tempfile.TemporaryDirectory(prefix="mgmt-pkg-rpmbuild-") as temporary:
        topdir = Path(temporary)
        spec = topdir / spec_name  # rpmlint wants the spec in the SRPM named NAME.spec
        spec.write_text(spec_text, encoding="utf-8")
        for folder in ("SOURCES", "tmp"):
            (topdir / folder).mkdir()
        if sources is not None:
            sources(topdir / "SOURCES")
        # The SRPM keeps each file's mode: one the umask chose would make two
        # builds of the same inputs differ.
        for made in (spec, *(topdir / "SOURCES").iterdir()):
            made.chmod(0o644)
        command = rpmbuild_command(executable, spec, topdir, stage, package.arch, fast)
        _run(command, package, topdir)
        built = [_built(topdir, f"SRPMS/{package.nvr}.src.rpm")]
        if stage == "rpm":
            built.append(_built(topdir, f"RPMS/*/{package.nvr}.{package.arch}.rpm"))
        with writing("--output-dir", output_dir):
            placed = _place(output_dir, [spec, *built])
    return BuildResult(*placed)


def _run(command: Sequence[str], package: PhonyPackage, topdir: Path) -> None:
    environment = dict(os.environ)
    environment["SOURCE_DATE_EPOCH"] = str(package.source_date_epoch)
    environment["LC_ALL"] = "C.UTF-8"  # rpm's messages and sort order, whatever the user's locale
    # rpm reads ~/.rpmmacros and ~/.rpmrc (~/.config/rpm/macros from 4.19): a user's
    # %packager, %vendor, %distribution or payload compression went into the packages,
    # over -m too. The system's macros (/usr/lib/rpm, /etc/rpm) still apply.
    environment["HOME"] = str(topdir)
    environment.pop("XDG_CONFIG_HOME", None)
    run_tool("rpmbuild", command, env=environment, cwd=topdir)


def _check_temp_dir() -> None:
    """rpmbuild runs each section as ``/bin/sh -e SCRIPT``, SCRIPT's path (in
    _topdir, in the temp dir) split into words, and writes ``cd "DIR"`` into it:
    a space, a quote, a backslash or a "$" there failed every build ("/bin/sh:
    0: cannot open /tmp/my", or "rpmbuild wrote 0 files"), saying nothing of why."""
    where = tempfile.gettempdir()
    found = _UNSAFE_IN_TOPDIR.search(where)
    if found is not None:
        raise InvalidInput(
            f"the temp dir {where!r}: rpmbuild cannot run its scripts from a path with "
            f"{found.group()!r} in it; set TMPDIR to a folder without"
        )


def _no_folder_at(output_dir: Path, names: Sequence[str]) -> None:
    """Refuse a folder where an output file goes: the rename onto it would fail,
    and found after the first renames it left those files (and copies) behind."""
    for name in names:
        target = output_dir / name
        if target.is_dir() and not target.is_symlink():
            raise InvalidInput(f"--output-dir: {target} is a directory, where {name} goes")


def _place(output_dir: Path, files: Sequence[Path]) -> List[Path]:
    """Copy each file next to its target, then rename them all: the output
    directory sees complete files or none of this build's."""
    _no_folder_at(output_dir, [source.name for source in files])
    staged = []
    try:
        for source in files:
            handle, temporary = tempfile.mkstemp(dir=output_dir, prefix=f".{source.name}.")
            os.close(handle)
            staged.append((temporary, output_dir / source.name))
            shutil.copyfile(source, temporary)
            os.chmod(temporary, 0o644)
    except BaseException:
        for temporary, _ in staged:
            os.unlink(temporary)
        raise
    try:
        for temporary, target in staged:
            os.replace(temporary, target)
    finally:
        for temporary, _ in staged:  # the copies not renamed, if one rename failed
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    return [target for _, target in staged]
