"""The project's own SRPM: `make srpm`, COPR's make_srpm entry point, and a rebuild here."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import rpmfile

import mgmt
from support import require_tools

REPO = Path(__file__).resolve().parents[2]
NAME = "mgmt-pkg"
# What a COPR builder or a bare host has: no venv, no user git config.
BARE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _bare_env(home: Path) -> dict:
    return {"PATH": BARE_PATH, "HOME": str(home), "LANG": "C.UTF-8"}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A fresh clone, as COPR makes one, with this tree's COPR files on top."""
    require_tools("rpmbuild", "rpmlint")
    if shutil.which("git") is None:
        pytest.fail("git is needed to build the SRPM")
    clone = tmp_path_factory.mktemp("clone") / NAME
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    for relative in ("copr/Makefile", "specs/mgmt-pkg.spec.in", "specs/mgmt-pkg.rpmlintrc"):
        (clone / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, clone / relative)
    if not (clone / ".copr").exists():
        (clone / ".copr").symlink_to("copr")
    return clone


def _make_srpm(
    makefile: Path, outdir: Path, spec, home: Path, cwd: Path, umask=None, as_nobody=False
) -> Path:
    """``as_nobody``: in a user namespace as uid 65534, who owns every file it writes."""
    nobody = ["unshare", "--user", "--map-user=65534", "--map-group=65534"] if as_nobody else []
    done = subprocess.run(
        [*nobody, "make", "-f", str(makefile), "srpm", f"outdir={outdir}", f"spec={spec}"],
        cwd=cwd,
        env=_bare_env(home),
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )
    assert done.returncode == 0, done.stderr
    built = sorted(outdir.glob("*.src.rpm"))
    assert len(built) == 1, built
    assert sorted(p.name for p in outdir.iterdir()) == [built[0].name]  # nothing else left
    return built[0]


@pytest.fixture(scope="module")
def srpm(checkout, tmp_path_factory) -> Path:
    """Built the way COPR's make_srpm method calls it: as root, from elsewhere."""
    outdir = tmp_path_factory.mktemp("copr-outdir")
    home = tmp_path_factory.mktemp("home")
    return _make_srpm(
        checkout / ".copr" / "Makefile",
        outdir,
        checkout / "specs" / "mgmt-pkg.spec",
        home,
        cwd=tmp_path_factory.mktemp("elsewhere"),
    )


def _spec_text(srpm_path: Path) -> str:
    with rpmfile.open(srpm_path) as package:
        member = package.extractfile(f"{NAME}.spec")
        return member.read().decode()


def test_srpm_is_named_after_the_one_version(srpm):
    assert srpm.name == f"{NAME}-{mgmt.__version__}-1.src.rpm"
    with rpmfile.open(srpm) as package:
        assert package.headers["name"] == NAME.encode()
        assert package.headers["version"] == mgmt.__version__.encode()
        names = sorted(m.name for m in package.getmembers())
    assert names == [f"{NAME}-{mgmt.__version__}.tar.gz", f"{NAME}.spec"]
    spec = _spec_text(srpm)
    assert "@VERSION@" not in spec
    assert re.search(rf"^Version:\s+{re.escape(mgmt.__version__)}$", spec, re.M)


def test_make_srpm_twice_gives_the_same_sha256(checkout, srpm, tmp_path):
    """The lead's `make srpm` form, twice (the second under another umask: the SRPM
    kept the modes it gave the tarball and the spec), against the COPR-style build."""
    again = [
        _make_srpm(
            checkout / "copr" / "Makefile",
            tmp_path / f"dist{n}",
            checkout / "specs" / "mgmt-pkg.spec",
            tmp_path,
            cwd=checkout,
            umask=umask,
        )
        for n, umask in ((1, None), (2, 0o077))
    ]
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in [srpm, *again]}
    assert len(digests) == 1


def test_another_users_make_srpm_gives_the_same_srpm(checkout, srpm, tmp_path):
    """rpm takes the owner of the SRPM's spec and tarball from the disk: built by
    another user than root, the SRPM named that user and differed."""
    require_tools("unshare", "rpm")
    built = _make_srpm(checkout / "copr" / "Makefile", tmp_path / "out",
                       checkout / "specs" / "mgmt-pkg.spec", tmp_path, cwd=checkout,
                       as_nobody=True)  # fmt: skip
    owners = subprocess.run(
        ["rpm", "-qp", "--qf", "[%{FILEUSERNAME}:%{FILEGROUPNAME}\n]", str(built)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert owners and set(owners) == {"root:root"}, owners
    assert built.read_bytes() == srpm.read_bytes()


@pytest.mark.parametrize(
    "spec_field",
    ["", "specs", "specs/mgmt-pkg.spec"],
    ids=["spec field empty", "a folder", "the spec path"],
)
def test_copr_spec_field_empty_folder_or_path_gives_the_same_srpm(
    checkout, srpm, tmp_path, spec_field
):
    """copr-rpmbuild passes spec= the clone joined with the package's spec field
    (os.path.join): left empty, that is the clone's directory with a slash."""
    spec = str(checkout / spec_field) if spec_field else f"{checkout}/"
    built = _make_srpm(checkout / ".copr" / "Makefile", tmp_path / "out", spec, tmp_path,
                       cwd=tmp_path)  # fmt: skip
    assert built.read_bytes() == srpm.read_bytes()


def test_tarball_holds_the_tracked_files_at_head(srpm, checkout, tmp_path):
    with rpmfile.open(srpm) as package:
        data = package.extractfile(f"{NAME}-{mgmt.__version__}.tar.gz").read()
    tarball = tmp_path / "source.tar.gz"
    tarball.write_bytes(data)
    listed = subprocess.run(
        ["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True
    ).stdout.split()
    prefix = f"{NAME}-{mgmt.__version__}/"
    files = {name[len(prefix) :] for name in listed if not name.endswith("/")}
    tracked = subprocess.run(
        ["git", "-C", str(checkout), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert files == set(tracked)


@pytest.fixture(scope="module")
def rebuilt(srpm, tmp_path_factory) -> Path:
    """`rpmbuild --rebuild --nodeps`: the fallback path of the spec, on this rpm."""
    topdir = tmp_path_factory.mktemp("rebuild")
    done = subprocess.run(
        ["rpmbuild", "--rebuild", "--nodeps", "--define", f"_topdir {topdir}", str(srpm)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rpms = list((topdir / "RPMS").rglob("*.rpm"))
    assert [p.name for p in rpms] == [f"{NAME}-{mgmt.__version__}-1.noarch.rpm"]
    return rpms[0]


def test_rebuilt_rpm_holds_both_commands_the_packages_and_the_templates(rebuilt, checkout):
    with rpmfile.open(rebuilt) as package:
        names = [m.name.lstrip(".") for m in package.getmembers()]
    assert "/usr/bin/mgmt" in names
    assert "/usr/bin/mgmt-pkg" in names
    site = {n.split("/mgmt/")[0] for n in names if n.endswith("/mgmt/__init__.py")}
    assert len(site) == 1, names
    (sitelib,) = site
    assert f"{sitelib}/mgmt_pkg/cli.py" in names
    # src/mgmt_pkg/templates links to the top-level templates/, packaged as data.
    templates = subprocess.run(
        ["git", "-C", str(checkout), "ls-files", "templates/*.j2", "templates/**/*.j2"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert templates
    for template in templates:
        assert f"{sitelib}/mgmt_pkg/{template}" in names
    assert not [n for n in names if "direct_url.json" in n]


def test_rebuilt_rpm_owns_its_package_folders_and_no_system_one(rebuilt):
    """The fallback's file list held files only: erasing the package left the 38
    folders pip had made (mgmt/, mgmt_pkg/copr/, the dist-info, ...) behind, empty."""
    listing = subprocess.run(
        ["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]", str(rebuilt)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries = [line.split(" ", 1) for line in listing.splitlines()]
    folders = {path for perms, path in entries if perms.startswith("d")}
    files = [PurePosixPath(path) for perms, path in entries if not perms.startswith("d")]
    (sitelib,) = {f.parents[1] for f in files if f.match("mgmt/__init__.py")}
    made = {str(p) for f in files for p in f.parents if sitelib in p.parents}
    assert {f"{sitelib}/mgmt", f"{sitelib}/mgmt_pkg/copr"} <= made
    assert made <= folders, sorted(made - folders)
    # Nothing above them: site-packages, /usr/bin and the like are the system's.
    others = folders - made
    assert all(path.startswith(f"/usr/share/doc/{NAME}") for path in others), sorted(others)


def test_rpmlint_finds_no_errors_beyond_the_missing_signature(rebuilt, srpm, checkout):
    done = subprocess.run(
        ["rpmlint", "-r", str(checkout / "specs" / "mgmt-pkg.rpmlintrc"), str(rebuilt), str(srpm)],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in done.stdout.splitlines() if ": E: " in line]
    assert errors, done.stdout  # rpmlint ran and read both packages
    assert all(line.endswith("E: no-signature") for line in errors), done.stdout


def test_command_versions_agree_with_the_spec(srpm):
    version = re.search(r"^Version:\s+(\S+)$", _spec_text(srpm), re.M).group(1)
    bindir = Path(sys.executable).parent
    for command in ("mgmt-pkg", "mgmt"):
        done = subprocess.run(
            [str(bindir / command), "--version"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
        assert version in done.stdout + done.stderr, command


def test_an_uncommitted_spec_edit_is_said_and_left_out(checkout, srpm, tmp_path):
    """The tarball and the version are HEAD's: so is the spec, or one commit
    would give two SRPMs. A copy of the clone, its template edited, not committed."""
    clone = tmp_path / "edited"
    shutil.copytree(checkout, clone, symlinks=True)
    template = clone / "specs" / "mgmt-pkg.spec.in"
    template.write_text(re.sub(r"^Release:.*$", "Release: 99%{?dist}", template.read_text(),
                               flags=re.M))  # fmt: skip
    outdir = tmp_path / "out dir"  # a space in outdir is taken as it is
    done = subprocess.run(
        ["make", "-f", str(clone / ".copr" / "Makefile"), "srpm", f"outdir={outdir}",
         f"spec={clone}/"],
        cwd=tmp_path, env=_bare_env(tmp_path), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "specs/mgmt-pkg.spec.in has uncommitted changes" in done.stderr
    [built] = outdir.glob("*.src.rpm")
    assert built.name == srpm.name  # release 1, as committed
    assert _spec_text(built) == _spec_text(srpm)


def test_a_copy_into_outdir_that_fails_fails_make(checkout, tmp_path):
    """/proc/sys takes no new file, even from root: cp fails, and so does make."""
    done = subprocess.run(
        ["make", "-f", str(checkout / ".copr" / "Makefile"), "srpm", "outdir=/proc/sys",
         f"spec={checkout}/"],
        cwd=tmp_path, env=_bare_env(tmp_path), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "srpm: " not in done.stdout
    assert "cannot create regular file '/proc/sys/." in done.stderr
