"""`mgmt-pkg rpm` beside the packages that own the system's directories, and
paths the package itself cannot hold (below one of its files or symlinks).

A tree laid out like the system (``./root/=/``) has the folders its maker's
umask gave: 0775 under 002 (Fedora's and Debian's default for users), 0750
under 027. Owning /usr, /usr/bin, /usr/lib/systemd/system or
/usr/lib/python3.12 with such a mode made rpm refuse to install the package
beside the packages that own them. Installed here into a temporary root next to
stand-ins for those, built with rpmbuild as they are.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

import pytest
from rpm_helpers import run_cli

from support import require_tools

# What the stand-ins own, with Fedora's modes (/usr/bin is 0555 there).
BASE = {
    "filesystem": [("0755", "/etc"), ("0755", "/usr"), ("0555", "/usr/bin"),
                   ("0555", "/usr/lib"), ("0755", "/usr/share")],
    "systemd": [("0755", "/usr/lib/systemd"), ("0755", "/usr/lib/systemd/system")],
    "python3-libs": [("0755", "/usr/lib/python3.12"),
                     ("0755", "/usr/lib/python3.12/site-packages")],
    "logrotate": [("0755", "/etc/logrotate.d")],
}  # fmt: skip
AS_ROOT = [] if os.geteuid() == 0 else ["unshare", "--map-root-user"]
FOLDERS = ("etc/app", "etc/logrotate.d", "usr/bin", "usr/lib/systemd/system",
           "usr/lib/python3.12/site-packages/app", "usr/share/app/private")  # fmt: skip


def base_package(tmp: Path, name: str) -> Path:
    """A package that owns only directories, as the filesystem package does."""
    top = tmp / f"base-{name}"
    folders = BASE[name]
    spec = top / f"{name}.spec"
    top.mkdir()
    spec.write_text(
        f"Name: {name}\nVersion: 1\nRelease: 1\nSummary: stand-in\nLicense: MIT\n"
        f"BuildArch: noarch\n%description\nstand-in\n%install\n"
        + "".join(f"mkdir -p $RPM_BUILD_ROOT{path}\n" for _, path in folders)
        + "%files\n"
        + "".join(f"%attr({mode},root,root) %dir {path}\n" for mode, path in folders)
    )  # fmt: skip
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", str(spec)],
                   check=True, capture_output=True)  # fmt: skip
    return top / "RPMS" / "noarch" / f"{name}-1-1.noarch.rpm"


def system_tree(tmp: Path, folder_mode: int) -> Path:
    """A tree for ./root/=/ whose folders have ``folder_mode`` (the umask's)."""
    root = tmp / "root"
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True)
    (root / "etc" / "app" / "app.conf").write_text("a = 1\n")
    (root / "etc" / "logrotate.d" / "app").write_text("/var/log/app.log {}\n")
    (root / "usr" / "bin" / "app").write_text("#!/bin/sh\necho app\n")
    (root / "usr" / "bin" / "app").chmod(0o755)
    (root / "usr" / "lib" / "systemd" / "system" / "app.service").write_text("[Service]\n")
    (root / "usr/lib/python3.12/site-packages/app/__init__.py").write_text("")
    (root / "usr" / "share" / "app" / "private" / "key").write_text("k\n")
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        folder.chmod(folder_mode)
    if folder_mode != 0o775:
        # Only the base system's folders are known to be shared: under a
        # restrictive umask, python3-libs' and logrotate's would still conflict.
        for shared in ("etc/logrotate.d", "usr/lib/python3.12", "usr/lib/python3.12/site-packages"):
            (root / shared).chmod(0o755)
    (root / "usr" / "share" / "app" / "private").chmod(0o700)
    return root


def owned(rpm: Path) -> List[str]:
    """The directories the package lists, with their modes."""
    query = "[%{FILEMODES:perms} %{FILENAMES}\\n]"
    done = subprocess.run(["rpm", "-qp", "--qf", query, str(rpm)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return [line for line in done.stdout.splitlines() if line.startswith("d")]


@pytest.mark.parametrize(
    ("folder_mode", "own"),
    [
        # 0775 is the umask's, not a choice: taken as rpm's 0755, owned by no one new.
        (0o775, []),
        # 0750 may be one: kept (so owned) where the folder is the package's own.
        (0o750, ["drwxr-x--- /etc/app", "drwxr-x--- /usr/lib/python3.12/site-packages/app",
                 "drwxr-x--- /usr/share/app"]),
    ],
)  # fmt: skip
def test_a_system_tree_installs_beside_the_packages_of_the_system(tmp_path, folder_mode, own):
    require_tools("rpmbuild", "rpm")
    bases = [base_package(tmp_path, name) for name in BASE]
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), "--config-files",
                     "/etc/app", f"{system_tree(tmp_path, folder_mode)}/=/")  # fmt: skip
    assert result.code == 0, result.err
    rpm = out / "app-1-1.noarch.rpm"
    assert owned(rpm) == sorted([*own, "drwx------ /usr/share/app/private"], key=lambda o: o[11:])
    target = tmp_path / "installed"
    target.mkdir()
    done = subprocess.run([*AS_ROOT, "rpm", "--root", str(target), "--nodeps", "-i", *bases,
                           str(rpm)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (target / "usr" / "bin").stat().st_mode & 0o7777 == 0o555
    assert (target / "usr" / "bin" / "app").read_text() == "#!/bin/sh\necho app\n"
    assert (target / "usr/lib/systemd/system/app.service").read_text() == "[Service]\n"
    assert (target / "usr/lib/python3.12/site-packages/app/__init__.py").exists()
    assert (target / "etc/logrotate.d/app").read_text() == "/var/log/app.log {}\n"
    assert (target / "usr/share/app/private").stat().st_mode & 0o7777 == 0o700
    want = 0o755 if folder_mode == 0o775 else folder_mode
    assert (target / "usr/share/app").stat().st_mode & 0o7777 == want
    verify = subprocess.run(["rpm", "--root", str(target), "--nodeps", "-V", "app", *BASE],
                            capture_output=True, text=True)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_an_empty_system_folder_is_not_owned(tmp_path):
    require_tools("rpmbuild")
    root = tmp_path / "root"
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "lib" / "app").mkdir(parents=True)
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), f"{root}/=/")
    assert result.code == 0, result.err
    assert owned(out / "app-1-1.noarch.rpm") == ["drwxr-xr-x /var/lib/app"]


@pytest.mark.parametrize("mapping", ["{empty}/=/usr/bin", "{empty}/=/opt", "{root}/=/"])
def test_only_empty_system_folders_are_nothing_to_package(tmp_path, mapping):
    """An empty folder mapped onto one of the system's built a package that
    owned it (and conflicted), then one without any file: refused instead."""
    (tmp_path / "empty").mkdir()
    for folder in ("usr/bin", "opt"):
        (tmp_path / "root" / folder).mkdir(parents=True)
    out = tmp_path / "out"
    given = mapping.format(empty=tmp_path / "empty", root=tmp_path / "root")
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), given)
    assert result.code == 2, result.err
    assert result.err.startswith("mgmt-pkg: error: nothing to package: only empty system folders (")
    assert len(result.err.splitlines()) == 1
    assert not out.exists()


def test_a_tree_whose_files_are_all_excluded_is_nothing_to_package(tmp_path):
    """It built an RPM without a file (its folders are not owned: not empty on disk)."""
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "a.log").write_text("log\n")
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), "--exclude", "*.log",
                     f"{tmp_path / 'tree'}/=/opt/app")  # fmt: skip
    assert result.code == 2, result.err
    assert result.err == (
        "mgmt-pkg: error: nothing to package: /opt/app holds no file, symlink or folder to "
        "own (did --exclude leave out every file in it?)\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("folder", "owner"),
    [("/usr/bin", "the filesystem package's"), ("/usr/share/man/man1", "the filesystem package's"),
     ("/usr/lib/systemd/system", "systemd's")],
)  # fmt: skip
def test_directories_refuses_a_system_folder_that_a_tree_puts_in_the_package(
    tmp_path, folder, owner
):
    """It was refused for a folder that only mappings hold, and owned (so the
    package would not install) when a tree held it."""
    root = tmp_path / "root"
    (root / folder.lstrip("/")).mkdir(parents=True)
    (root / folder.lstrip("/") / "f").write_text("x")
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), f"{root}/=/",
                     "--directories", folder)  # fmt: skip
    assert result.code == 2, result.err
    assert (
        result.err
        == f"mgmt-pkg: error: --directories: {folder} is {owner}; give a folder below it\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("folder", "attr"),
    [("/usr/share", "0700,-,-"), ("/usr/lib/systemd/system", "-,root,wheel")],
)  # fmt: skip
def test_rpm_attr_refuses_a_system_folder_that_a_tree_puts_in_the_package(tmp_path, folder, attr):
    """--rpm-attr owned it with that mode or group, as --directories no longer
    did: a package rpm refuses beside the filesystem package or systemd (and
    that, forced in, would make /usr/share 0700)."""
    root = tmp_path / "root"
    (root / folder.lstrip("/") / "app").mkdir(parents=True)
    (root / folder.lstrip("/") / "app" / "f").write_text("x")
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), f"{root}/=/",
                     "--rpm-attr", f"{attr}:{folder}")  # fmt: skip
    assert result.code == 2, result.err
    assert result.err.startswith(f"mgmt-pkg: error: --rpm-attr: {folder} is ")
    assert result.err.endswith("'s; give a folder below it\n")
    assert not out.exists()
    below = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), "--spec-only",
                    f"{root}/=/", "--rpm-attr", f"{attr}:{folder}/app")  # fmt: skip
    assert below.code == 0, below.err
    assert f'%dir "{folder}/app"' in (out / "app.spec").read_text()


@pytest.mark.parametrize(
    ("mappings", "message"),
    [(["{file}=/opt/x/f", "{file}=/opt/x/f/g"],
      "/opt/x/f/g is below /opt/x/f, a file in the package, not a directory: a path cannot "
      "be both a file and a directory"),
     (["{tree}/=/opt/x", "{file}=/opt/x/link/g"],
      "/opt/x/link/g is below /opt/x/link, a symlink in the package, not a directory: map it "
      "below the directory the symlink points to"),
     (["{tree}/=/opt/x", "{file}=/opt/x/outside/g"],
      "/opt/x/outside/g is below /opt/x/outside, a symlink in the package"),
     (["{tree}/=/opt/x", "{tree}/dir/=/opt/x/link/d"], "/opt/x/link/d is below /opt/x/link")],
)  # fmt: skip
def test_a_path_below_a_file_or_symlink_of_the_package_is_refused(tmp_path, mappings, message):
    """rpmbuild's tar failed on these ("Not a directory", exit 1), or wrote
    through the symlink; --spec-only wrote a spec that could not build."""
    tree = tmp_path / "tree"
    (tree / "dir").mkdir(parents=True)
    (tree / "dir" / "in").write_text("in\n")
    os.symlink("dir", tree / "link")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, tree / "outside")
    (tmp_path / "file").write_text("f\n")
    args = [m.format(tree=tree, file=tmp_path / "file") for m in mappings]
    for stage in ([], ["--spec-only"]):
        out = tmp_path / "out"
        result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), *args, *stage)
        assert result.code == 2, result.err
        assert result.err.startswith(f"mgmt-pkg: error: {message}")
        assert len(result.err.splitlines()) == 1
        assert not out.exists()
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("dest", "owner"),
    [("/usr/bin", "the filesystem package"), ("/etc", "the filesystem package"),
     ("usr/lib/systemd/system", "systemd")],
)  # fmt: skip
def test_a_file_mapped_onto_a_system_folder_is_refused(tmp_path, dest, owner):
    """``bin/tool=/usr/bin`` (the trailing slash forgotten) built a package whose
    file /usr/bin rpm cannot install over the directory."""
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), f"{tmp_path / 'tool'}={dest}")
    path = "/" + dest.lstrip("/")
    assert result.code == 2, result.err
    assert result.err == (
        f"mgmt-pkg: error: {path} is a directory of {owner}, not a file: to put the file in "
        f"it, end DEST with '/' ({path}/)\n"
    )
    assert not out.exists()
    slash = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), "--spec-only",
                    f"{tmp_path / 'tool'}={dest}/")  # fmt: skip
    assert slash.code == 0, slash.err
    assert f'"{path}/tool"' in (out / "app.spec").read_text()


def test_files_in_system_folders_are_not_taken_for_their_subfolders(tmp_path):
    """The system folders' patterns (/etc/X11/*, /etc/systemd/*) stand for the
    subfolders those packages own; a file at such a path (xorg.conf, a systemd
    drop-in config) was refused as "a directory of the filesystem package", with
    no DEST that could package it."""
    require_tools("rpmbuild", "rpm")
    dests = [
        "/etc/X11/xorg.conf",
        "/etc/xdg/mimeapps.list",
        "/etc/systemd/zram-generator.conf",
        "/usr/share/bash-completion/bash_completion",
        "/usr/lib/systemd/app-helper",
    ]
    (tmp_path / "file").write_text("x\n")
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out),
                     *(f"{tmp_path / 'file'}={dest}" for dest in dests))  # fmt: skip
    assert result.code == 0, result.err
    listed = subprocess.run(["rpm", "-qlp", str(out / "app-1-1.noarch.rpm")],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert listed.stdout.splitlines() == sorted(dests)


def test_a_symlink_mapped_onto_a_system_folder_is_refused_but_not_the_systems_own(tmp_path):
    """``link=/usr/bin`` made a package rpm cannot install over the directory;
    a whole tree's ``bin -> usr/bin`` is the filesystem package's own link."""
    (tmp_path / "link").symlink_to("/opt/tool/bin/tool")
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), f"{tmp_path / 'link'}=/usr/bin")
    assert result.code == 2, result.err
    assert result.err == (
        "mgmt-pkg: error: /usr/bin is a directory of the filesystem package, not a symlink: "
        "to put the symlink in it, end DEST with '/' (/usr/bin/)\n"
    )
    assert not out.exists()
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin").symlink_to("usr/bin")
    merged = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), "--spec-only", f"{root}/=/")
    assert merged.code == 0, merged.err
    assert '%attr(-,root,root) "/bin"' in (out / "app.spec").read_text()


def test_a_0775_folder_owned_on_purpose_keeps_its_mode(tmp_path):
    """Only the implicit ownership ignores 0775: --directories and --rpm-attr
    with '-' for the mode keep it, as for any other mode."""
    require_tools("rpmbuild", "rpm")
    tree = tmp_path / "tree"
    for folder in ("data", "spool", "plain"):
        (tree / folder).mkdir(parents=True)
        (tree / folder / "f").write_text("x\n")
        (tree / folder).chmod(0o775)
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out), f"{tree}/=/opt/app",
                     "--directories", "/opt/app/data",
                     "--rpm-attr", "-,root,nobody:/opt/app/spool")  # fmt: skip
    assert result.code == 0, result.err
    query = "[%{FILEMODES:perms} %{FILEGROUPNAME} %{FILENAMES}\\n]"
    done = subprocess.run(["rpm", "-qp", "--qf", query, str(out / "app-1-1.noarch.rpm")],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert [line for line in done.stdout.splitlines() if line.startswith("d")] == [
        "drwxrwxr-x root /opt/app/data",
        "drwxrwxr-x nobody /opt/app/spool",
    ]


def test_files_directly_in_the_first_two_levels_are_not_taken_for_system_folders(tmp_path):
    """Every name directly in /, /usr and /var counted as a folder of the filesystem
    package: `README=/` (DEST ending in '/' as the message asked) was refused as
    "/README is a directory of the filesystem package ... end DEST with '/'"."""
    require_tools("rpmbuild", "rpm")
    (tmp_path / "file").write_text("x\n")
    dests = ["/README.app", "/usr/app.conf", "/var/app.state"]
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(out),
                     *(f"{tmp_path / 'file'}={dest}" for dest in dests))  # fmt: skip
    assert result.code == 0, result.err
    listed = subprocess.run(["rpm", "-qlp", str(out / "app-1-1.noarch.rpm")],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert listed.stdout.splitlines() == sorted(dests)


@pytest.mark.parametrize("dest", ["/opt", "/lib64", "/usr/libexec", "/var/log", "/var/lib"])
def test_the_first_two_levels_system_folders_still_take_no_file(tmp_path, dest):
    (tmp_path / "file").write_text("x\n")
    result = run_cli("rpm", "-n", "app", "-v", "1", "-o", str(tmp_path / "out"),
                     f"{tmp_path / 'file'}={dest}")  # fmt: skip
    assert result.code == 2, result.err
    assert result.err.startswith(f"mgmt-pkg: error: {dest} is a directory of the filesystem")
