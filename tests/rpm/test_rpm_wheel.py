"""The template ships in the wheel: a non-editable install runs fake-rpm.

The wheel is built from a copy of the source tree (so no build/ or egg-info
lands in the work tree) and installed with --no-deps into a fresh venv, which
sees the dev venv's dependencies through a .pth file. A .pth entry is a plain
path: the dev venv's own .pth files (the editable hook of mgmt_pkg) are not
run, so the fresh venv imports the installed copy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from rpm_helpers import EXAMPLE

from support import require_tools

REPO = Path(__file__).resolve().parents[2]


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_fake_rpm_from_a_plain_pip_install(tmp_path: Path):
    require_tools("rpmbuild")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("src", "templates", "setup.cfg", "pyproject.toml", "README.md"):
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(
                origin, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(origin, source / name)
    # Offline: the dev venv's setuptools and wheel build it, nothing is downloaded.
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-q", "-w", str(tmp_path / "dist"), str(source), cwd=tmp_path)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("*.whl")

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
        "--no-index", "-q", str(wheel), cwd=tmp_path)  # fmt: skip
    site = run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
               cwd=tmp_path).stdout.strip()  # fmt: skip
    (Path(site) / "dev-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    where = run(str(python), "-c", "import mgmt_pkg; print(mgmt_pkg.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(fresh)), where.stdout
    out = tmp_path / "out"
    done = run(str(fresh / "bin" / "mgmt-pkg"), "fake-rpm", *EXAMPLE, "-o", str(out), cwd=tmp_path)
    assert done.stdout.split() == [
        str(out / "vagrant-libvirt.spec"),
        str(out / "vagrant-libvirt-0.0.24-noop.src.rpm"),
        str(out / "vagrant-libvirt-0.0.24-noop.noarch.rpm"),
    ]
    assert "Requires:       vagrant >= 1.6.5" in (out / "vagrant-libvirt.spec").read_text()
