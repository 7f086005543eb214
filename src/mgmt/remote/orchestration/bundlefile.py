"""Which single-file agent the initiator pushes, and its sha256.

In order: ``$MGMT_BUNDLE`` (or the ``bundle`` argument fab deploy passes); the
running program itself when it is a shiv (a bundle that starts a remote run
pushes itself); otherwise a bundle built from this very source tree by
``mgmt-pkg bundle`` (we never import mgmt_pkg: the agent stands alone), cached
under ~/.cache/mgmt/initiator/ by a hash of the sources so it is built once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import mgmt
from mgmt.errors import InputError, MgmtError
from mgmt.log import get_logger

log = get_logger("remote")

ENV_VAR = "MGMT_BUNDLE"
RECIPE = ("bundle.py", "minify.py")  # of mgmt_pkg: how the bundle is made from the sources
NOT_A_BUNDLE = "not an agent bundle (a zipapp): build one with `mgmt-pkg bundle -o FILE`"
NO_BUILDER = (
    "no agent bundle: set $MGMT_BUNDLE to a bundle built with `mgmt-pkg bundle -o FILE`, "
    "or install mgmt-pkg so one can be built"
)


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    size: int
    # shiv's build id: the bundle unpacks into <SHIV_ROOT>/<file name>_<build id>/.
    # Knowing it lets a host that already unpacked this bundle start the agent
    # straight from there (see mgmt.remote.protocol.launcher). "" when it cannot be read.
    build_id: str = ""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(path: Path) -> Bundle:
    try:
        return Bundle(path, sha256_file(path), path.stat().st_size, shiv_build_id(path))
    except OSError as err:
        raise InputError(f"bundle {path}: {err.strerror}") from None


def shiv_build_id(path: Path) -> str:
    """The build id in a shiv's environment.json, or "" if it is not a shiv we can read."""
    try:
        with zipfile.ZipFile(path) as archive:
            build_id = json.loads(archive.read("environment.json")).get("build_id") or ""
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return ""
    # It becomes part of a path on the host: accept only what shiv writes (hex).
    return build_id if isinstance(build_id, str) and build_id.isalnum() else ""


def is_zipapp(path: Path) -> bool:
    """A zip that Python runs: with a ``__main__.py`` (a wheel or a zip of sources
    has none, and the host ended in "can't find '__main__' module")."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.getinfo("__main__.py")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return True


def running_bundle() -> Optional[Path]:
    """This program's own file when it runs from a shiv zipapp."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.is_file() and zipfile.is_zipfile(argv0):
        return argv0.resolve()
    return None


def source_fingerprint() -> str:
    """A hash of the agent's sources and of the recipe that bundles them (mgmt-pkg's
    bundle.py and minify.py, read, not imported): a new one means the cached
    bundle is stale."""
    root = Path(mgmt.__file__).parent
    digest = hashlib.sha256(mgmt.__version__.encode())
    # Every file the bundle ships, not only *.py: the shell programs (start.sh,
    # findpython.sh) that a `via:` secondary sends on are the agent's too.
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes())
    builder = importlib.util.find_spec("mgmt_pkg")  # finds, imports nothing
    if builder is not None and builder.origin:
        for name in RECIPE:
            recipe = Path(builder.origin).parent / name
            if recipe.is_file():
                digest.update(name.encode() + b"\0" + recipe.read_bytes())
    return digest.hexdigest()[:16]


def _builder() -> Optional[str]:
    beside = Path(sys.executable).parent / "mgmt-pkg"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mgmt-pkg")


def build_cached(cache_dir: Optional[Path] = None) -> Path:
    """Build (once per source version) a bundle with ``mgmt-pkg bundle``."""
    cache_dir = cache_dir or Path.home() / ".cache" / "mgmt" / "initiator"
    target = cache_dir / f"mgmt-{source_fingerprint()}.pyz"
    if target.is_file():
        return target
    builder = _builder()
    if builder is None:
        raise MgmtError(NO_BUILDER)
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log.info("building the agent bundle (once for this source version): %s", target)
    done = subprocess.run(
        [builder, "bundle", "-o", str(target)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not target.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise MgmtError("building the agent bundle failed: " + " / ".join(tail))
    return target


def find_bundle(explicit: Optional[Path] = None) -> Bundle:
    """The bundle to push (see the module's docstring for the order)."""
    chosen = explicit or (Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else None)
    if chosen is not None:
        if not chosen.is_file():
            raise InputError(f"bundle {chosen}: no such file")
        # Any file was copied to every host and run there, to end in a traceback
        # from its first line (a wrong path, a truncated download).
        if not is_zipapp(chosen):
            raise InputError(f"bundle {chosen}: {NOT_A_BUNDLE}")
        return describe(chosen)
    own = running_bundle()
    if own is not None:
        return describe(own)
    return describe(build_cached())
