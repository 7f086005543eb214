"""The single-file bundle of the agent: a shiv zipapp of :mod:`mgmt` and PyYAML.

The bundle is what ``mgmt run --remote`` pushes to hosts that may have nothing
but a system python3: RHEL 9's is 3.9, RHEL 8's platform-python 3.6. The agent
needs nothing but the standard library and PyYAML (it speaks to etcd over
http.client, see :mod:`mgmt.world.gateway`), so the bundle is about 0.2 MB.
PyYAML is pinned to the last release that installs on Python 3.6 and fetched
as the 3.6 build; it has no pure wheel, but its Python half is complete and
takes over when ``yaml._yaml`` is missing, so the compiled extension (which
would load on one Python only) is dropped. mgmt's own modules ship with their
comments and docstrings blanked, every line where it was (mgmt_pkg.minify):
that prose is a third of the source and has no reader on a host.

The build is reproducible: pinned inputs, normalised file modes, shiv's
``--reproducible`` timestamps and its build id, which is the sha256 of the
contents (so a changed bundle is extracted afresh and an unchanged one is not).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import mgmt
from mgmt_pkg.errors import InvalidInput, MgmtPkgError, ToolFailed
from mgmt_pkg.minify import blank_prose
from mgmt_pkg.paths import check_output_file, output_folder

__all__ = [
    "BUNDLE_PYTHON",
    "ENTRY_POINT",
    "INITIATOR_FILES",
    "REQUIREMENTS",
    "SHEBANG",
    "BundleInfo",
    "build_bundle",
    "describe",
    "human_size",
    "shebang",
    "stage_site_packages",
]

# The oldest Python the bundle must run on (RHEL 8's platform-python): its
# dependencies are fetched as built for it.
BUNDLE_PYTHON = "3.6"
ENTRY_POINT = "mgmt.__main__:main"
SHEBANG = "/usr/bin/env python3"
# BINPRM_BUF_SIZE of Linux before 5.1 (RHEL 8): the whole "#!...\n" line must fit.
SHEBANG_MAX = 128
# The options of `mgmt-pkg bundle` that errors name.
OUTPUT_OPTION, PYTHON_OPTION = "--output", "--python"

# The agent's run-time closure, pinned (etcd is spoken with the standard library).
# No pure wheel exists for PyYAML: fetch the 3.6 build and keep its Python half.
# PyYAML 6.0.2 dropped Python 3.6; 6.0.1 is the last release that installs there.
REQUIREMENTS = ("PyYAML==6.0.1",)
NATIVE_PLATFORM = "manylinux2014_x86_64"

# Dead weight: test suites shipped inside packages, the deprecated `_yaml` shim
# (it only re-exports the dropped extension), compiled code and type stubs.
PRUNED_DIRECTORIES = ("tests", "__pycache__")
PRUNED_TOP_LEVEL = ("_yaml", "bin")
PRUNED_SUFFIXES = (".so", ".pyd", ".c", ".h", ".pyi", ".pyc")
# pip's own records in a dist-info: RECORD lists (and hashes) the extension
# dropped above, so it would be wrong; nothing on a host uninstalls. METADATA
# and LICENSE stay.
PRUNED_DIST_INFO = ("RECORD", "INSTALLER", "REQUESTED")
# The initiator's half, which no host runs: mgmt.remote.run_remotes imports it
# only once Fabric is found (a host's --remote run says to use an installed
# mgmt-pkg instead), and nothing a host runs imports it otherwise. It is the
# paramiko transport, the run's start and the detached cluster's initiator side
# with the programs it sends: 31 KB of the 300 KB budget;
# tests/packaging/test_bundle.py keeps this list equal to what a host cannot reach.
INITIATOR_FILES = (
    "mgmt/remote/hierarchy/initiator.py",
    "mgmt/remote/orchestration/attach.py",
    "mgmt/remote/orchestration/bundlefile.py",
    "mgmt/remote/orchestration/cluster.py",
    "mgmt/remote/orchestration/cluster_tls.py",
    "mgmt/remote/orchestration/control.py",
    "mgmt/remote/orchestration/detach.py",
    "mgmt/remote/orchestration/detach_signals.py",
    "mgmt/remote/orchestration/detach_stop.py",
    "mgmt/remote/orchestration/follow.py",
    "mgmt/remote/orchestration/graphcheck.py",
    "mgmt/remote/orchestration/hosts.py",
    "mgmt/remote/orchestration/initiator.py",
    "mgmt/remote/orchestration/status.py",
    "mgmt/remote/protocol/detached.py",
    "mgmt/remote/protocol/detached.sh",
    "mgmt/remote/protocol/detached_dir.py",
    "mgmt/remote/protocol/detached_etcd.py",
    "mgmt/remote/protocol/detached_orphans.py",
    "mgmt/remote/protocol/detached_start.py",
    "mgmt/remote/protocol/detached_status.py",
    "mgmt/remote/protocol/detached_stop.py",
    "mgmt/remote/protocol/supervise.py",
    "mgmt/remote/transport/agent_forward.py",
    "mgmt/remote/transport/connect.py",
    "mgmt/remote/transport/heartbeat.py",
    "mgmt/remote/transport/paramiko_ssh.py",
    "mgmt/remote/transport/ssh_include.py",
    "mgmt/remote/transport/trust.py",
    "mgmt/remote/transport/tunnel.py",
)


@dataclass(frozen=True)
class BundleInfo:
    """A built bundle: where it is, and what identifies it."""

    path: Path
    sha256: str
    size: int


def build_bundle(
    output: Union[str, Path],
    *,
    compile_pyc: bool = False,
    python: str = SHEBANG,
    pip_args: Sequence[str] = (),
    package_dir: Optional[Path] = None,
) -> BundleInfo:
    """Build the agent's zipapp at ``output`` (written atomically) and describe it.

    ``compile_pyc`` has shiv compile all bytecode when the bundle is first
    extracted, with the interpreter that runs it. It is off by default: bench/
    bundle.py shows it adds about a second to the first run and nothing to later
    ones, since Python writes the pyc of what it imports into the extraction
    directory anyway (for whichever Python runs it, so no version mismatch).
    ``pip_args`` go to every pip call (e.g. ``--find-links``).
    ``package_dir`` is the mgmt package to ship (default: the one imported here).
    """
    python = shebang(python)
    output = check_output_file(OUTPUT_OPTION, os.fspath(output), make_parents=True)
    # Made and checked writable before pip and shiv run; removed again if they fail.
    with (
        output_folder(OUTPUT_OPTION, output.parent),
        tempfile.TemporaryDirectory(prefix="mgmt-bundle-") as work,
    ):
        stage = Path(work) / "site-packages"
        stage_site_packages(stage, pip_args=pip_args, package_dir=package_dir)
        partial = output.parent / f".{output.name}.partial-{os.getpid()}"
        try:
            _run_shiv(stage, partial, compile_pyc=compile_pyc, python=python)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    data = output.read_bytes()
    return BundleInfo(path=output, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def shebang(python: str) -> str:
    """What ``--python`` may be: the interpreter line after ``#!``, checked (exit 2 if bad).

    The kernel runs ``#!PATH [ARG]`` (everything after PATH is one argument),
    so PATH must be absolute; a bare command name becomes ``/usr/bin/env NAME``,
    which finds it on the PATH as a shell would. ARG may hold spaces
    only for env -S, which splits it (``/usr/bin/env -S python3 -I``,
    :func:`_check_argument`); PATH may not, and no control character
    may appear, which would end the line (a newline would put the rest into
    the zipapp). The line must fit BINPRM_BUF_SIZE of the
    oldest kernel the bundle runs on (RHEL 8's 4.18: 128 bytes with "#!" and
    the newline; 5.1 raised it to 256), or that kernel cuts it short.
    """
    shown = f"{PYTHON_OPTION} {python!r}"
    if not all(char.isprintable() or char == " " for char in python):
        raise InvalidInput(f"{shown}: contains a control character")
    interpreter, _, argument = python.partition(" ")
    if not interpreter or any(char.isspace() for char in interpreter):
        raise InvalidInput(
            f"{shown}: expected an absolute path, optionally with one argument "
            f"(as in {SHEBANG!r}), or a bare command name such as python3"
        )
    if "/" not in interpreter and not argument:
        python = f"/usr/bin/env {interpreter}"
    elif not interpreter.startswith("/"):
        raise InvalidInput(
            f"{shown}: not an absolute path; give one (e.g. /usr/bin/python3) "
            "or a bare command name, found on the PATH with /usr/bin/env"
        )
    _check_argument(shown, interpreter, argument)
    size = len(f"#!{python}\n".encode())
    if size > SHEBANG_MAX:
        raise InvalidInput(
            f"{shown}: the line #!... would be {size} bytes, more than the kernel's "
            f"{SHEBANG_MAX}; use a shorter path or a bare command name"
        )
    return python


def _check_argument(shown: str, interpreter: str, argument: str) -> None:
    """The kernel passes ARG whole: ``python3 "-E -s"`` says "Unknown option: - ",
    ``env "python3 -I"`` finds no such command, and env without one runs the
    bundle itself, which starts env again, for ever. Only env -S splits ARG."""
    is_env = posixpath.basename(interpreter) == "env"
    if is_env and not argument:
        raise InvalidInput(f"{shown}: {interpreter} needs the command to run ({SHEBANG!r})")
    splits = is_env and re.match(r"(-[a-zA-Z]*S|--split-string)", argument) is not None
    if any(char.isspace() for char in argument) and not splits:
        fix = (
            f"give {interpreter} -S {argument}"
            if is_env
            else "join the options into one (-Es), or split them with /usr/bin/env -S"
        )
        raise InvalidInput(
            f"{shown}: the kernel passes {argument!r} to {interpreter} as one argument, "
            f"not split at spaces; {fix}"
        )


def stage_site_packages(
    stage: Path, *, pip_args: Sequence[str] = (), package_dir: Optional[Path] = None
) -> Path:
    """Fill ``stage`` with the agent's package and the Python half of its pinned dependencies."""
    stage.mkdir(parents=True, exist_ok=True)
    _pip_install(stage, REQUIREMENTS, extra=pip_args)
    shutil.copytree(
        package_dir or Path(mgmt.__file__).parent,
        stage / "mgmt",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
    )
    _prune(stage)
    for module in (stage / "mgmt").rglob("*.py"):  # see mgmt_pkg.minify: lines kept
        try:
            module.write_text(blank_prose(module.read_text("utf-8"), str(module)), "utf-8")
        except (ValueError, UnicodeDecodeError) as error:  # a module that cannot ship
            raise MgmtPkgError(f"bundle: {error}") from None
    _normalise_modes(stage)
    return stage


def _cp_abi() -> str:
    """CPython's ABI tag for BUNDLE_PYTHON: 3.6 and 3.7 still had the pymalloc "m"."""
    major, minor = (int(part) for part in BUNDLE_PYTHON.split("."))
    return f"cp{major}{minor}" + ("m" if (major, minor) < (3, 8) else "")


def _pip_install(stage: Path, requirements: Sequence[str], *, extra: Sequence[str]) -> None:
    """The wheels built for BUNDLE_PYTHON (pip checks their Requires-Python too)."""
    command: List[str] = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--target", str(stage), "--no-deps", "--no-compile", "--only-binary=:all:",
        "--python-version", BUNDLE_PYTHON, "--implementation", "cp",
        "--abi", _cp_abi(), "--platform", NATIVE_PLATFORM, *extra, *requirements,
    ]  # fmt: skip
    _run(command, "pip install (bundle dependencies)")


def _run_shiv(stage: Path, target: Path, *, compile_pyc: bool, python: str) -> None:
    command = [
        sys.executable, "-m", "shiv", "--site-packages", str(stage), "--output-file", str(target),
        "--entry-point", ENTRY_POINT, "--python", python, "--reproducible",
    ]  # fmt: skip
    if compile_pyc:
        command.append("--compile-pyc")
    _run(command, "shiv")


def _run(command: Sequence[str], tool: str) -> None:
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
    except OSError as error:
        raise MgmtPkgError(f"{tool}: cannot run {command[0]}: {error}") from error
    if done.returncode != 0:
        raise ToolFailed(tool, done.returncode, done.stdout)


def _prune(stage: Path) -> None:
    for name in PRUNED_TOP_LEVEL:
        shutil.rmtree(stage / name, ignore_errors=True)
    for path in INITIATOR_FILES:
        (stage / path).unlink()
    for directory in sorted(stage.rglob("*"), reverse=True):
        if directory.is_dir() and directory.name in PRUNED_DIRECTORIES:
            shutil.rmtree(directory)
    for path in stage.rglob("*"):
        if path.is_file() and path.suffix in PRUNED_SUFFIXES:
            path.unlink()
    for dist_info in stage.glob("*.dist-info"):
        for name in PRUNED_DIST_INFO:
            (dist_info / name).unlink(missing_ok=True)


def _normalise_modes(stage: Path) -> None:
    """shiv stores each file's mode; make it independent of umask and pip."""
    for path in [stage, *stage.rglob("*")]:
        kind = path.lstat().st_mode
        if not (stat.S_ISDIR(kind) or stat.S_ISREG(kind)):
            raise MgmtPkgError(f"bundle: unexpected file type in the staging area: {path}")
        os.chmod(path, 0o755 if stat.S_ISDIR(kind) else 0o644)


def human_size(size: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, as du --si and the targets use)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def describe(info: BundleInfo) -> str:
    """The lines ``mgmt-pkg bundle`` prints."""
    return (
        f"bundle: {info.path}\n"
        f"size: {info.size} bytes ({human_size(info.size)})\n"
        f"sha256: {info.sha256}"
    )
