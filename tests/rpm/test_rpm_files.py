"""`mgmt-pkg rpm`: real files in, the same files out, and an SRPM that rebuilds them.

The payload is read back two ways: rpm's own headers (names, modes, owners,
digests, link targets, flags) and the archive itself (rpm2cpio | cpio), and
compared with the tree that went in.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Dict, Tuple

import pytest
from rpm_helpers import rpmlint, run_cli

from support import require_tools
from support.polling import wait_until

NAMES = ["plain.txt", "with space.txt", "100%.txt", "st*r?[x]{a,b}.txt", "it's \"q\".txt",
         "é中.txt", "back\\slash", " lead and trail ", "%{name}"]  # fmt: skip
TAGS = ["FILENAMES", "FILEMODES:octal", "FILEUSERNAME", "FILEGROUPNAME", "FILEDIGESTS",
        "FILELINKTOS", "FILEFLAGS:fflags"]  # fmt: skip
QF = "[" + "\\t".join(f"%{{{tag}}}" for tag in TAGS) + "\\n]"


def make_tree(root: Path) -> Path:
    tree = root / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "empty").mkdir()
    for number, name in enumerate(NAMES):
        (tree / "sub" / name).write_bytes(f"file {number}: {name}\n".encode() * (number + 1))
    (tree / "bin").mkdir()
    (tree / "bin" / "tool").write_text("#!/bin/sh\necho tool\n")
    (tree / "bin" / "tool").chmod(0o755)
    (tree / "secret").write_text("s3cret\n")
    (tree / "secret").chmod(0o600)
    (tree / "app.conf").write_text("setting = 1\n")
    (tree / "sub" / "deeper" / "data").write_bytes(bytes(range(256)))
    os.symlink("../app.conf", tree / "sub" / "link to conf")
    os.symlink("/nonexistent/target", tree / "dangling")
    (tree / "skip.tmp").write_text("excluded\n")
    for folder in (tree / "sub", tree / "sub" / "deeper", tree / "empty", tree / "bin"):
        folder.chmod(0o755)  # whatever the umask: a directory of another mode is owned
    return tree


def headers(rpm: Path) -> Dict[str, Tuple[str, ...]]:
    done = subprocess.run(["rpm", "-qp", "--qf", QF, str(rpm)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    return {row[0]: tuple(row[1:]) for row in rows}


def extract(rpm: Path, into: Path) -> Path:
    into.mkdir()
    subprocess.run(f"rpm2cpio '{rpm}' | cpio -idm --quiet", shell=True, cwd=into, check=True)
    return into


def build(tmp: Path, tree: Path, *extra: str, out: str = "out"):
    result = run_cli(
        "rpm", "-n", "payload", "-v", "1.2", "-o", str(tmp / out), "--source-date-epoch",
        "1700000000", "--exclude", "*.tmp", "--config-files", "/opt/payload/app.conf",
        "--rpm-attr", "0640,root,nobody:/opt/payload/secret", "--directories",
        "/opt/payload/sub/deeper", f"{tree}/=/opt/payload", *extra,
    )  # fmt: skip
    assert result.code == 0, result.err
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    require_tools("rpmbuild", "rpm2cpio", "cpio")
    tmp = tmp_path_factory.mktemp("files")
    tree = make_tree(tmp)
    return tmp, tree, build(tmp, tree)


def expected(tree: Path) -> Dict[str, Tuple[str, str]]:
    """What the package must hold: path -> (kind, content or link text)."""
    found = {}
    for folder, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = Path(folder) / name
            rel = "/opt/payload/" + str(path.relative_to(tree))
            if name.endswith(".tmp"):
                continue
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_file():
                found[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def test_payload_round_trips_bytes_modes_owners_and_symlinks(built, tmp_path):
    _tmp, tree, result = built
    rpm = result.paths[2]
    listed = headers(rpm)
    files = {path: info for path, info in listed.items() if not info[0].startswith("4")}
    want = expected(tree)
    assert set(files) == set(want)
    for path, (kind, value) in want.items():
        mode, user, group, digest, link, _flags = files[path]
        if kind == "link":
            assert (mode[:3], link) == ("120", value), path
        else:
            source = tree / path[len("/opt/payload/") :]
            assert digest == value, path
            want_mode = 0o640 if path.endswith("/secret") else source.stat().st_mode & 0o7777
            assert int(mode, 8) & 0o7777 == want_mode, path
        want_group = "nobody" if path.endswith("/secret") else "root"
        assert (user, group) == ("root", want_group), path
    assert listed["/opt/payload/app.conf"][5] == "cn"  # %config(noreplace)
    # empty directories and --directories are owned; the others are not
    dirs = {path for path, info in listed.items() if info[0].startswith("4")}
    assert dirs == {"/opt/payload/empty", "/opt/payload/sub/deeper"}
    unpacked = extract(rpm, tmp_path / "x")
    for path, (kind, value) in want.items():
        got = unpacked / path.lstrip("/")
        if kind == "link":
            assert os.readlink(got) == value
        else:
            assert hashlib.sha256(got.read_bytes()).hexdigest() == value


def test_the_srpm_rebuilds_into_the_same_payload(built, tmp_path):
    _tmp, _tree, result = built
    done = subprocess.run(
        ["rpmbuild", "--rebuild", "--quiet", "--define", f"_topdir {tmp_path}",
         str(result.paths[1])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (rebuilt,) = (tmp_path / "RPMS").rglob("*.rpm")
    assert headers(rebuilt) == headers(result.paths[2])


def test_two_builds_elsewhere_are_byte_identical(built, tmp_path):
    _tmp, tree, first = built
    second = build(tmp_path, tree, out="elsewhere/out2")
    for one, two in zip(first.paths, second.paths):
        assert one.read_bytes() == two.read_bytes(), one.name


def test_rpmlint_shows_only_the_missing_signature_for_a_clean_tree(tmp_path):
    require_tools("rpmbuild", "rpmlint")
    tree = tmp_path / "share"
    tree.mkdir()
    (tree / "data.txt").write_text("data\n")
    result = run_cli("rpm", "-n", "clean", "-v", "1", "--url", "https://example.org/clean",
                     "-o", str(tmp_path / "out"), f"{tree}/=/usr/share/clean")  # fmt: skip
    assert result.code == 0, result.err
    errors, _warnings = rpmlint(*result.paths[1:])
    assert sorted(errors) == ["clean.noarch: no-signature", "clean.src: no-signature"]


def test_rpmlint_findings_of_the_input_are_not_hidden(tmp_path):
    require_tools("rpmbuild", "rpmlint")
    (tmp_path / "script").write_text("echo no shebang\n")
    (tmp_path / "script").chmod(0o755)
    result = run_cli("rpm", "-n", "untidy", "-v", "1", "-o", str(tmp_path / "out"),
                     f"{tmp_path / 'script'}=/usr/bin/untidy")  # fmt: skip
    assert result.code == 0, result.err
    errors, warnings = rpmlint(result.paths[2])
    assert "untidy.noarch: script-without-shebang" in errors + warnings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one SRC[=DEST] to package"),
        (["/nonexistent/x=/opt/x"], "/nonexistent/x=/opt/x: cannot read /nonexistent/x"),
        (["{tree}=/opt/x", "--rpm-attr", "0640:/opt/x"], "--rpm-attr: '0640:/opt/x' is not"),
        (["{tree}=/opt/x", "--rpm-attr", "999,root,root:/opt/x"],
         "--rpm-attr: '999,root,root:/opt/x': mode"),
        (["{tree}=/opt/x", "--config-files", "/etc/nope"],
         "--config-files: /etc/nope is not in the package"),
        (["{tree}=/opt/x", "--rpm-user", "bad user"], "--rpm-user: 'bad user' is not a user"),
        (["{tree}=/opt/x", "{tree}/f=/opt/x/f"], "/opt/x/f is already given by another SRC"),
        (["{tree}=/opt/x", "{tree}/f=/opt/x"], "/opt/x is already given by another SRC"),
        (["{tabs}=/opt/x"], "the name contains '\\t', which rpm refuses"),
        # A DEST or --prefix that rpm cannot take is blamed, not the SRC file (was
        # "…/t/f: the name is not UTF-8"). "\udcff": the byte 0xff as argv gives it.
        (["{tree}/f=/opt/\udcff"], "f=/opt/\\udcff': DEST b'/opt/\\xff' is not UTF-8, which rpm"),
        (["{tree}=/opt/\udcff/x"], "DEST b'/opt/\\xff/x' is not UTF-8"),
        (["{tree}/f=/opt/a\tb"], "DEST '/opt/a\\tb' contains '\\t', which rpm refuses"),
        (["{tree}=/x", "--prefix", "/opt/\udcff"], "--prefix: b'/opt/\\xff' is not UTF-8"),
        (["{tree}/f=/usr/share/../../etc/passwd"],
         "f=/usr/share/../../etc/passwd': DEST '/usr/share/../../etc/passwd' has a '..' segment"),
        (["{tree}/f="], "f=': no DEST after '='"),
        (["{tree}/f=usr/../../etc/passwd"], "DEST 'usr/../../etc/passwd' has a '..' segment"),
        (["{tree}/f=/usr/./f"], "f=/usr/./f': DEST '/usr/./f' has a '.' segment"),
        (["../nonexistent/f"], "'../nonexistent/f': SRC '../nonexistent/f' has a '..' segment; "
         "give SRC=DEST to say where it goes"),
        (["{tree}=/x", "--prefix", "relative"],
         "--prefix: 'relative' is not an absolute path (it must start with /)"),
        (["{tree}=/x", "--prefix", "/opt/../.."], "--prefix: '/opt/../..' has a '..' segment"),
        (["{tree}=/x", "--prefix", ""], "--prefix: '' is not an absolute path"),
        (["{tree}=/opt/x", "--config-files", ""],
         "--config-files: '' is empty; give a path in the package"),
        (["{tree}=/opt/x", "--directories", "/opt/x/../x"],
         "--directories: '/opt/x/../x' has a '..' segment"),
        (["{tree}/f=/opt/a/f", "--directories", "/opt/b"], "--directories: /opt/b is not in the"),
        (["{tree}/f=/opt/a/f", "--directories", "/"],
         "--directories: / is the filesystem package's; give a folder below it"),
        (["{tree}/f=/opt/a/f", "--config-files", "/usr"], "--config-files: /usr is not in the"),
        (["{tree}/f=/usr/bin/f", "--directories", "/usr/bin"],
         "--directories: /usr/bin is the filesystem package's; give a folder below it"),
        (["{tree}/f=/opt/a/f", "--directories", "/opt"],
         "--directories: /opt is the filesystem package's; give a folder below it"),
        (["/proc/self/status=/opt/status"],
         "/proc/self/status: cannot package: it says 0 bytes but holds more"),
        (["{tree}=/opt/x", "--rpm-attr", "0600,-,-:/opt/./x/f"],
         "--rpm-attr: '0600,-,-:/opt/./x/f': '/opt/./x/f' has a '.' segment"),
        (["{tree}=/opt/x", "--rpm-attr", "0600,-,-:/opt/x/f", "--rpm-attr", "0640,-,-:/opt/x/f"],
         "--rpm-attr: /opt/x/f is given twice"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_in_one_line(tmp_path, args, message):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "f").write_text("x")
    (tmp_path / "tabs").mkdir()
    (tmp_path / "tabs" / "a\tb").write_text("x")
    args = [a.replace("{tree}", str(tree)).replace("{tabs}", str(tmp_path / "tabs")) for a in args]
    result = run_cli("rpm", "-n", "bad", "-v", "1", "-o", str(tmp_path / "out"), *args)
    assert result.code == 2, result.err
    assert result.err.startswith("mgmt-pkg: error: ") and message in result.err
    assert len(result.err.splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_name_that_is_not_utf8_is_shown_as_its_bytes(tmp_path):
    """It was shown as Python's surrogate ('caf\\udce9' for the byte 0xe9)."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / os.fsdecode(b"caf\xe9")).write_text("x")
    result = run_cli("rpm", "-n", "bad", "-v", "1", "-o", str(tmp_path / "out"), f"{tree}/=/opt/x")
    assert result.code == 2, result.err
    name = repr(os.fsencode(tree)).rstrip("'") + "/caf\\xe9'"
    assert result.err == f"mgmt-pkg: error: {name}: the name is not UTF-8, which rpm needs\n"


def test_names_that_rpm_files_cannot_tell_apart_are_refused(tmp_path):
    """ "%" is matched as any one character, so "100%" and "1000" are one glob."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "100%").write_text("a")
    (tree / "1000").write_text("b")
    result = run_cli("rpm", "-n", "twins", "-v", "1", "-o", str(tmp_path / "out"),
                     f"{tree}/=/opt/twins")  # fmt: skip
    assert result.code == 2
    assert result.err == (
        "mgmt-pkg: error: /opt/twins/100%: rpm's %files cannot tell it from /opt/twins/1000 "
        '(each % " { } in such a name is matched as any one character); rename one\n'
    )
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_binaries_need_a_native_build_and_are_not_stripped(tmp_path):
    require_tools("rpmbuild")
    binary = Path("/bin/true").resolve()
    out = tmp_path / "out"
    noarch = run_cli("rpm", "-n", "bin", "-v", "1", "-o", str(out), f"{binary}=/usr/bin/mytrue")
    assert noarch.code == 2
    assert "build with -a native" in noarch.err and len(noarch.err.splitlines()) == 1
    native = run_cli("rpm", "-n", "bin", "-v", "1", "-a", "native", "--prefix", "/opt/b",
                     "-o", str(out), f"{binary}=/usr/bin/mytrue")  # fmt: skip
    assert native.code == 0, native.err
    assert native.paths[2].name == f"bin-1-1.{os.uname().machine}.rpm"
    listed = headers(native.paths[2])
    assert list(listed) == ["/opt/b/usr/bin/mytrue"]  # --prefix, and nothing added
    assert listed["/opt/b/usr/bin/mytrue"][3] == hashlib.sha256(binary.read_bytes()).hexdigest()


def test_spec_only_writes_the_spec_and_its_tarball_which_build(tmp_path):
    require_tools("rpmbuild")
    (tmp_path / "f").write_text("x\n")
    result = run_cli("rpm", "-n", "sp", "-v", "1", "--spec-only", "-o", str(tmp_path / "out"),
                     f"{tmp_path / 'f'}=/usr/share/sp/f")  # fmt: skip
    assert result.code == 0, result.err
    assert [p.name for p in result.paths] == ["sp.spec", "sp-1.tar.gz"]
    top = tmp_path / "top"
    done = subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}",
         "--define", f"_sourcedir {tmp_path / 'out'}", str(result.paths[0])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (top / "RPMS").rglob("*.rpm")
    assert list(headers(built)) == ["/usr/share/sp/f"]


def test_empty_segments_are_the_same_path(tmp_path):
    """ "//" names the same file to the kernel, so it is read as one "/"; "."
    and ".." are refused instead (test_bad_input_exits_2_in_one_line)."""
    require_tools("rpmbuild")
    (tmp_path / "f").write_text("x\n")
    result = run_cli("rpm", "-n", "slashes", "-v", "1", "--prefix", "//opt//s/", "-o",
                     str(tmp_path / "out"), f"{tmp_path / 'f'}=//usr//share/f")  # fmt: skip
    assert result.code == 0, result.err
    assert list(headers(result.paths[2])) == ["/opt/s/usr/share/f"]


def test_a_symlinked_directory_with_a_trailing_slash_gives_its_contents(tmp_path):
    """fpm and rsync: "linkdir/" is the directory it leads to; without the slash the
    link is kept as a link. The first was packaged as a dangling link."""
    require_tools("rpmbuild")
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "sub" / "f").write_text("x\n")
    (tmp_path / "linkdir").symlink_to("real")
    result = run_cli("rpm", "-n", "viaslash", "-v", "1", "-o", str(tmp_path / "out"),
                     f"{tmp_path / 'linkdir'}/=/opt/viaslash",
                     f"{tmp_path / 'linkdir'}=/opt/link")  # fmt: skip
    assert result.code == 0, result.err
    found = headers(result.paths[2])
    assert "/opt/viaslash/sub/f" in found and "/opt/link" in found
    assert not any(path.startswith("/opt/link/") for path in found)
    (tmp_path / "f").write_text("x\n")
    refused = run_cli("rpm", "-n", "notdir", "-v", "1", "-o", str(tmp_path / "out2"),
                      f"{tmp_path / 'f'}/=/opt/f")  # fmt: skip
    assert refused.code == 2 and refused.err.endswith(f"{tmp_path / 'f'}/ is not a directory\n")


def test_a_symlink_to_a_directory_mapped_to_a_dest_ending_in_a_slash_takes_its_name(tmp_path):
    """Without the trailing slash on SRC a symlink is a link, not a directory,
    so DEST/ takes its name as for a file (rsync's "linkdir /opt/x/"). It was
    packaged as /opt/x itself, taking the folder's place."""
    require_tools("rpmbuild")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x\n")
    (tmp_path / "linkdir").symlink_to("real")
    result = run_cli("rpm", "-n", "slashdest", "-v", "1", "-o", str(tmp_path / "out"),
                     f"{tmp_path / 'linkdir'}=/opt/x/", f"{tmp_path / 'linkdir'}/=/opt/y/",
                     f"{tmp_path / 'real' / 'f'}=/opt/x/")  # fmt: skip
    assert result.code == 0, result.err
    found = headers(result.paths[2])
    assert sorted(found) == ["/opt/x/f", "/opt/x/linkdir", "/opt/y/f"]
    assert found["/opt/x/linkdir"][4] == "real"  # FILELINKTOS


def test_a_relative_dest_goes_under_the_prefix_as_with_fpm(tmp_path):
    require_tools("rpmbuild")
    (tmp_path / "tool").write_text("x\n")
    (tmp_path / "doc").write_text("y\n")
    result = run_cli("rpm", "-n", "rel", "-v", "1", "--prefix", "/opt/rel", "-o",
                     str(tmp_path / "out"), f"{tmp_path / 'tool'}=bin/tool")  # fmt: skip
    assert result.code == 0, result.err
    assert list(headers(result.paths[2])) == ["/opt/rel/bin/tool"]
    result = run_cli("rpm", "-n", "rel2", "-v", "1", "-o", str(tmp_path / "out2"),
                     f"{tmp_path / 'doc'}=usr/share/doc/rel2/doc")  # fmt: skip
    assert result.code == 0, result.err
    assert list(headers(result.paths[2])) == ["/usr/share/doc/rel2/doc"]


def test_a_src_with_an_equals_sign_in_its_name_is_taken_whole_as_with_fpm(tmp_path):
    """'conf/a=b.txt' was split at its '=' ("cannot read conf/a"), with no way to
    package it but its folder; fpm takes an argument that exists as a SRC."""
    require_tools("rpmbuild")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "a=b.txt").write_text("x\n")
    (tmp_path / "file").write_text("y\n")
    src = str(conf / "a=b.txt")
    result = run_cli("rpm", "-n", "eq", "-v", "1", "-o", str(tmp_path / "out"), src,
                     f"{src}=/etc/eq/x=y.conf", f"{tmp_path / 'file'}=/opt/k=v")  # fmt: skip
    assert result.code == 0, result.err
    assert list(headers(result.paths[2])) == sorted([src, "/etc/eq/x=y.conf", "/opt/k=v"])


def test_directories_and_config_files_above_single_mappings_mark_what_they_hold(tmp_path):
    """fpm's ``--directories /opt/app bin/tool=/opt/app/bin/tool``: refused, as /opt/app
    was not itself a DEST; so was ``--config-files /etc/app`` above a mapped file."""
    require_tools("rpmbuild")
    for name in ("tool", "conf"):
        (tmp_path / name).write_text(name)
        (tmp_path / name).chmod(0o644)
    result = run_cli("rpm", "-n", "above", "-v", "1", "-o", str(tmp_path / "out"),
                     "--directories", "/opt/app", "--config-files", "/etc/app",
                     f"{tmp_path / 'tool'}=/opt/app/bin/tool",
                     f"{tmp_path / 'conf'}=/etc/app/app.conf")  # fmt: skip
    assert result.code == 0, result.err
    listed = headers(result.paths[2])
    assert {path: (info[0], info[1], info[5]) for path, info in listed.items()} == {
        "/etc/app/app.conf": ("100644", "root", "cn"),  # not /etc/app: not asked to own it
        "/opt/app": ("40755", "root", ""),
        "/opt/app/bin": ("40755", "root", ""),
        "/opt/app/bin/tool": ("100644", "root", ""),
    }


def test_directories_that_are_not_0755_keep_their_mode(tmp_path):
    """rpm makes a directory it is not given as 0755: one below SRC with another
    mode is owned, with its mode; so is one given to --rpm-attr."""
    require_tools("rpmbuild")
    tree = tmp_path / "tree"
    for name, mode in (("private", 0o700), ("shared", 0o2775), ("plain", 0o755),
                       ("private/inner", 0o755), ("attr", 0o755)):  # fmt: skip
        (tree / name).mkdir(parents=True)
        (tree / name / "file").write_text(name)
        (tree / name).chmod(mode)
    tree.chmod(0o700)  # the top stands for DEST: its contents go there, not its mode
    result = run_cli("rpm", "-n", "modes", "-v", "1", "-o", str(tmp_path / "out"), "--rpm-attr",
                     "0750,-,wheel:/opt/modes/attr", f"{tree}/=/opt/modes",
                     "--directories", "/opt/modes/plain")  # fmt: skip
    assert result.code == 0, result.err
    dirs = {path: (info[0], info[2]) for path, info in headers(result.paths[2]).items()
            if info[0].startswith("4")}  # fmt: skip
    assert dirs == {
        "/opt/modes/private": ("40700", "root"),
        "/opt/modes/shared": ("42775", "root"),
        "/opt/modes/attr": ("40750", "wheel"),
        "/opt/modes/plain": ("40755", "root"),
    }
    # Owned, DEST itself is 0755, whatever the mode of the SRC standing for it (0700).
    result = run_cli("rpm", "-n", "modes2", "-v", "1", "-o", str(tmp_path / "out2"),
                     "--directories", "/opt/modes", f"{tree}/=/opt/modes")  # fmt: skip
    assert result.code == 0, result.err
    assert headers(result.paths[2])["/opt/modes"][0] == "40755"


def test_trees_mapped_to_one_dest_keep_a_folders_mode_whichever_comes_first(tmp_path):
    """Two trees merged at one DEST both hold bin/: the one with 0700 was packaged
    0700 or 0755 (unowned) as the SRCs happened to be ordered; two modes that
    differ are refused until --rpm-attr gives one."""
    require_tools("rpmbuild")
    for tree, mode in (("plain", 0o755), ("private", 0o700), ("group", 0o750)):
        (tmp_path / tree / "bin").mkdir(parents=True)
        (tmp_path / tree / "bin" / tree).write_text(tree)
        (tmp_path / tree / "bin").chmod(mode)
    for n, order in enumerate((("plain", "private"), ("private", "plain"))):
        result = run_cli("rpm", "-n", "merged", "-v", "1", "-o", str(tmp_path / f"out{n}"),
                         *(f"{tmp_path / tree}/=/opt/m" for tree in order))  # fmt: skip
        assert result.code == 0, result.err
        assert headers(result.paths[2])["/opt/m/bin"][0] == "40700"
    clash = [f"{tmp_path / tree}/=/opt/m" for tree in ("private", "group")]
    out = tmp_path / "out"
    result = run_cli("rpm", "-n", "merged", "-v", "1", "-o", str(out), *clash)
    assert result.code == 2
    assert result.err == (
        f"mgmt-pkg: error: {clash[1]}: /opt/m/bin is a folder of mode 0700 in one SRC and "
        "0750 in another: give it one with --rpm-attr MODE,-,-:/opt/m/bin\n"
    )
    assert not out.exists()
    result = run_cli("rpm", "-n", "merged", "-v", "1", "-o", str(out), *clash,
                     "--rpm-attr", "0710,-,-:/opt/m/bin")  # fmt: skip
    assert result.code == 0, result.err
    assert headers(result.paths[2])["/opt/m/bin"][0] == "40710"


def test_an_old_source_date_epoch_from_the_environment_builds_without_a_changelog(
    tmp_path, monkeypatch
):
    """The command's own changelog entry is left out when rpm would drop its
    date (before 1990); one asked for with --changelog is refused instead."""
    require_tools("rpmbuild")
    (tmp_path / "f").write_text("x\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    result = run_cli("rpm", "-n", "old", "-v", "1", "-o", str(tmp_path / "out"),
                     f"{tmp_path / 'f'}=/opt/old/f")  # fmt: skip
    assert result.code == 0, result.err
    assert "%changelog" not in result.paths[0].read_text()
    form = "%{BUILDTIME} [%{CHANGELOGTIME}]"
    done = subprocess.run(["rpm", "-qp", "--qf", form, str(result.paths[2])],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stdout == "0 "
    asked = run_cli("rpm", "-n", "old", "-v", "1", "--changelog", "x", "-o",
                    str(tmp_path / "out2"), f"{tmp_path / 'f'}=/opt/old/f")  # fmt: skip
    assert asked.code == 2 and "--source-date-epoch: 0 (1970-01-01) is before" in asked.err
    assert not (tmp_path / "out2").exists() or not list((tmp_path / "out2").iterdir())


def test_a_file_that_shrinks_while_it_is_packed_is_named_with_why(tmp_path):
    """sysfs says 4096 bytes and gives fewer, as a file truncated during a build does."""
    from mgmt_pkg.errors import InvalidInput
    from mgmt_pkg.rpm.payload import Entry
    from mgmt_pkg.rpm.tarball import write_tarball

    source = Path("/sys/kernel/uevent_seqnum")
    assert source.stat().st_size > len(source.read_bytes())
    entry = Entry(path="/opt/seq", kind="file", mode=0o644, source=source)
    with pytest.raises(InvalidInput) as caught:
        write_tarball(tmp_path / "x.tar.gz", "x-1/", [entry], 0)
    assert str(caught.value) == (
        "/sys/kernel/uevent_seqnum: cannot read: unexpected end of data: "
        "it changed while it was packed"
    )


def test_a_file_written_to_while_it_is_packed_is_refused_not_cut_short(tmp_path):
    """A log still being appended to (or a build step not done) was packed as
    the bytes it had when its size was read: a truncated file, in silence."""
    log = tmp_path / "tree" / "app.log"
    log.parent.mkdir()
    log.write_bytes(b"old line\n" * (2 << 20))  # 18 MiB: long enough to be read and zipped
    size = log.stat().st_size
    writer = subprocess.Popen(["sh", "-c", f"while :; do echo new line >> '{log}'; done"])
    try:
        wait_until(lambda: log.stat().st_size > size, what="the writer to append")
        result = run_cli("rpm", "-n", "growing", "-v", "1", "-o", str(tmp_path / "out"),
                         f"{log.parent}/=/var/log/growing")  # fmt: skip
    finally:
        writer.kill()
        writer.wait()
    assert result.code == 2, result.err
    assert result.err == f"mgmt-pkg: error: {log}: cannot read: it changed while it was packed\n"
    assert not (tmp_path / "out").exists()


def test_names_and_links_that_rpm_would_not_install_are_refused(tmp_path):
    """rpm installs a file as NAME;%08x first: 246 bytes is the longest name it
    installs. A symlink loop fails rpmbuild's classification of the file."""
    require_tools("rpmbuild")
    longest, too_long = "é" * 123, "F" * 247  # 246 and 247 bytes
    for name, code in ((longest, 0), (too_long, 2)):
        tree = tmp_path / f"t{code}"
        tree.mkdir()
        (tree / name).write_text("x\n")
        out = tmp_path / f"out{code}"
        result = run_cli("rpm", "-n", "long", "-v", "1", "-o", str(out), f"{tree}/=/opt/long")
        assert result.code == code, result.err
        if code:
            assert result.err == (
                f"mgmt-pkg: error: {tree / name}: the name has 247 bytes; rpm installs files "
                "and symlinks of at most 246\n"
            )
            assert not out.exists() or not list(out.iterdir())
        else:
            assert list(headers(result.paths[2])) == [f"/opt/long/{name}"]
    loop = tmp_path / "loop"
    loop.mkdir()
    os.symlink("me", loop / "me")
    result = run_cli("rpm", "-n", "loop", "-v", "1", "-o", str(tmp_path / "o"), f"{loop}/=/opt/l")
    assert result.code == 2
    assert result.err == (
        f"mgmt-pkg: error: {loop / 'me'}: a symlink loop (-> me), which rpmbuild refuses\n"
    )


def test_a_file_from_before_1970_is_dated_1970_not_2086(tmp_path):
    """rpm keeps file times as unsigned 32 bits: -631152000 would read as 2086."""
    require_tools("rpmbuild")
    old = tmp_path / "old"
    old.write_text("x\n")
    os.utime(old, (-631152000, -631152000))  # 1950-01-01
    result = run_cli("rpm", "-n", "old", "-v", "1", "-o", str(tmp_path / "out"),
                     "--source-date-epoch", "1700000000", f"{old}=/opt/old")  # fmt: skip
    assert result.code == 0, result.err
    done = subprocess.run(["rpm", "-qp", "--qf", "[%{FILEMTIMES}\\n]", str(result.paths[2])],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert done.stdout == "0\n"


@pytest.mark.parametrize(("given", "mode"), [("644", 0o644), ("0644", 0o644), ("07777", 0o7777)])
def test_rpm_attr_takes_a_mode_as_chmod_does(given, mode):
    """07777 (a leading 0 before all four digits) was "not octal", 7777 was taken."""
    from mgmt_pkg.rpm.payload import parse_attr

    assert parse_attr(f"{given},-,-:/opt/x").mode == mode
