"""Random file names and contents through `mgmt-pkg rpm` and the real rpmbuild.

Names mix letters with everything rpm's %files treats specially (whitespace,
%, glob characters, both quotes, backslashes, non-ASCII), in the files' own
names and in the directory above them, next to dangling symlinks. Each tree
either builds, and then the RPM lists exactly those paths with those digests
and link targets, or is refused with exit 2 in one line (control characters,
two names that rpm's %files cannot tell apart, or a symlink it cannot name);
never anything else.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Dict

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from rpm_helpers import run_cli

from support import require_tools

ALPHABET = [*"aZ09 .-_+~^%{}()#:;,<>=*?[]!$&`'\"\\@", "é", "中", "\xa0", "\t", "\u2028"]
names = st.text(alphabet=st.sampled_from(ALPHABET), min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..")
)
trees = st.dictionaries(names, st.binary(max_size=64), min_size=1, max_size=6)
links = st.dictionaries(names, names, max_size=2)
REFUSALS = ("rpm refuses", "cannot tell it from", "cannot list this symlink")


def listing(rpm: Path) -> Dict[str, str]:
    """path -> digest (files), "-> target" (symlinks) or the mode (directories)."""
    form = "[%{FILENAMES}\\t%{FILEMODES:octal}\\t%{FILEDIGESTS}\\t%{FILELINKTOS}\\n]"
    done = subprocess.run(["rpm", "-qp", "--qf", form, str(rpm)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    rows = [line.rsplit("\t", 3) for line in done.stdout.split("\n") if line]
    return {path: digest or (f"-> {link}" if link else mode) for path, mode, digest, link in rows}


@settings(
    max_examples=int(os.environ.get("MGMT_PKG_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(files=trees, parent=st.one_of(st.just(""), names), symlinks=links)
def test_any_names_and_contents_round_trip_or_are_refused(files, parent, symlinks):
    require_tools("rpmbuild")
    symlinks = {name: target for name, target in symlinks.items() if name not in files}
    with tempfile.TemporaryDirectory() as temporary:
        tree = Path(temporary) / "tree"
        folder = tree / parent
        folder.mkdir(parents=True)
        folder.chmod(0o755)  # not owned, whatever the umask
        for name, data in files.items():
            (folder / name).write_bytes(data)
        for name, target in symlinks.items():
            os.symlink(f"nowhere/{target}", folder / name)  # dangling
        out = Path(temporary) / "out"
        result = run_cli("rpm", "-n", "names", "-v", "1", "-o", str(out),
                         "--source-date-epoch", "1700000000", f"{tree}/=/opt/names")  # fmt: skip
        note(f"exit {result.code}: {result.err!r}")
        if result.code != 0:
            assert result.code == 2, result.err
            assert len(result.err.splitlines()) == 1  # even with \u2028 in a name
            assert any(reason in result.err for reason in REFUSALS), result.err
            every = "".join([*files, *symlinks, *symlinks.values(), parent])
            assert any(ord(c) < 0x20 for c in every) or "rpm refuses" not in result.err
            return
        under = f"/opt/names/{parent}/".replace("//", "/")
        want = {f"{under}{n}": hashlib.sha256(d).hexdigest() for n, d in files.items()}
        want.update({f"{under}{n}": f"-> nowhere/{t}" for n, t in symlinks.items()})
        assert listing(result.paths[2]) == want


# Names that make rpm's %files a glob, above a dangling symlink and names that
# glob() looked up with stat() (a backslash, a leading dot); "a b" never needed one.
PARENTS = ["%{x}", "[g]", "a*", "back\\slash", "a b", 'it\'s "q"', "é中"]


@pytest.mark.parametrize("parent", PARENTS)
def test_special_names_in_parent_directories_and_the_prefix(tmp_path: Path, parent: str):
    require_tools("rpmbuild")
    folder = tmp_path / "tree" / parent / "deeper"
    (folder / "empty").mkdir(parents=True)  # owned, as %dir: rpm globs it with a "/" at the end
    for directory in (folder.parent, folder, folder / "empty"):
        directory.chmod(0o755)  # whatever the umask: only "private" has another mode
    os.symlink("nowhere", folder / "dangling")
    os.symlink("../nowhere", folder / ".\\")
    for name in ("back\\slash", ".hidden", " ", "'", "é"):
        (folder / name).write_text(name)
    (folder / "private").mkdir(mode=0o700)
    (folder / "private" / "x").write_text("x")
    result = run_cli("rpm", "-n", "parents", "-v", "1", "--prefix", "/opt/%{p}", "-o",
                     str(tmp_path / "out"), f"{tmp_path / 'tree'}/=/names")  # fmt: skip
    assert result.code == 0, result.err
    under = f"/opt/%{{p}}/names/{parent}/deeper/"
    want = {f"{under}{n}": hashlib.sha256(n.encode()).hexdigest()
            for n in ("back\\slash", ".hidden", " ", "'", "é")}  # fmt: skip
    want.update({f"{under}dangling": "-> nowhere", f"{under}.\\": "-> ../nowhere"})
    want.update({f"{under}empty": "40755", f"{under}private": "40700"})
    want[f"{under}private/x"] = hashlib.sha256(b"x").hexdigest()
    assert listing(result.paths[2]) == want


def test_a_symlink_that_rpm_files_cannot_name_is_refused(tmp_path: Path):
    """Under a name that needs a glob, glob() finds a name without an ASCII
    character (to make a class of) by stat(), which a dangling symlink fails."""
    folder = tmp_path / "tree" / "100%"
    folder.mkdir(parents=True)
    os.symlink("nowhere", folder / "é")
    result = run_cli("rpm", "-n", "nameless", "-v", "1", "-o", str(tmp_path / "out"),
                     f"{tmp_path / 'tree'}/=/opt/n")  # fmt: skip
    assert (result.code, result.err) == (2, (
        "mgmt-pkg: error: /opt/n/100%/é: rpm's %files cannot list this symlink (glob() would "
        "follow it, and its name has no ASCII character to match it by); rename it\n"
    ))  # fmt: skip
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
