"""Validation and rendering against case files, and what rpm makes of it.

cases/refused.json: options that must be refused, with the exact one-line
message; cases/dependencies.json: accepted dependency spellings and how the
spec writes them; cases/specs/NAME.json -> NAME.spec: whole rendered specs.
The tests at the end build (or ask rpmspec) to check that what is accepted is
what rpm accepts and stores.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from rpm_helpers import run_cli

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.rpm.model import Dependency, PhonyPackage
from mgmt_pkg.rpm.rules import check_url
from mgmt_pkg.rpm.spec import render_spec
from support import require_tools

CASES = Path(__file__).parent / "cases"
REFUSED = json.loads((CASES / "refused.json").read_text())
DEPENDENCIES = json.loads((CASES / "dependencies.json").read_text())
SPECS = sorted((CASES / "specs").glob("*.json"))


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case["error"].split(":")[0])
def test_refused_options_exit_2_with_one_line_naming_the_option(case, tmp_path: Path):
    out = tmp_path / "out"
    result = run_cli("fake-rpm", *case["args"], "-o", str(out))
    assert result.code == 2
    assert result.err == f"mgmt-pkg: error: {case['error']}\n"
    assert result.out == ""
    assert not out.exists()


@pytest.mark.parametrize(
    "url",
    ["http://[::1]/", "https://[fd00::1]:8443/x", "http://x.y:1/", "ftp://x.y:65535/a?b"],
)
def test_urls_with_an_ipv6_host_or_a_port_at_the_ends_are_kept(url: str):
    """An IPv6 literal was refused, as if a host needed a dot."""
    assert check_url(url) == url


@pytest.mark.parametrize(("given", "rendered"), DEPENDENCIES)
def test_dependency_spellings(given: str, rendered: str):
    assert str(Dependency.parse(given, "--depends")) == rendered


def package_from(case: Path) -> PhonyPackage:
    options = json.loads(case.read_text())
    for key in ("requires", "provides", "conflicts", "replaces"):
        options[key] = tuple(options.get(key, ()))
    options["scriptlets"] = tuple(tuple(s) for s in options.get("scriptlets", ()))
    return PhonyPackage.create(**options)


@pytest.mark.parametrize("case", SPECS, ids=lambda path: path.stem)
def test_rendered_spec_matches_the_case_file(case: Path):
    expected = case.with_suffix(".spec").read_text()
    assert render_spec(package_from(case)) == expected


def test_changelog_date_and_default_source_date_epoch():
    package = PhonyPackage.create("x", "1", source_date_epoch=1439251200)
    assert package.changelog_date == "Tue Aug 11 2015"  # the write-up's day, in English
    today = PhonyPackage.create("x", "1")
    assert today.source_date_epoch % 86400 == 0  # midnight UTC of the changelog's date


def test_replaces_provides_the_full_evr():
    package = PhonyPackage.create("new", "2", "1", epoch=3, replaces=("old < 2",))
    spec = render_spec(package)
    assert "Obsoletes:      old < 2\nProvides:       old = 3:2-1\n" in spec


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("echo ok\n%files\n/etc/shadow\n", "line 2 starts with '%', which rpm reads as a section"),
        ("echo ok\n  %if 0\necho no\n", "line 2 starts with '%', which rpm reads as a section"),
        ("\n\n", "the script is empty"),
        ("echo \x1b[1m\n", "line 1 contains control character '\\x1b'"),
        # A file saved on Windows: "line 1 contains a control character", naming none.
        (
            "if true; then\r\n  echo yes\r\nfi\r\n",
            "line 1 ends with '\\r' (Windows line ends): save the file with Unix ones (dos2unix)",
        ),
        # Saved "as UTF-8 with BOM": packaged, then sh said "\ufeffecho: not found" (127)
        # on every install, which stops one at a failing %pre.
        (
            "\ufeffecho ok\n",
            "line 1 holds U+FEFF, a byte order mark, which sh reads as part of a command: "
            "save the file as UTF-8 without a BOM",
        ),
    ],
)
def test_scriptlet_files_that_would_inject_are_refused(script: str, error: str, tmp_path: Path):
    path = tmp_path / "post.sh"
    path.write_text(script)
    result = run_cli("fake-rpm", "-n", "x", "-v", "1", "--after-remove", str(path))
    assert (result.code, result.err) == (2, f"mgmt-pkg: error: --after-remove: {error}\n")


def test_scriptlet_percent_signs_are_escaped_not_expanded():
    package = PhonyPackage.create("x", "1", scriptlets=(("postun", "date +%s # %{_bindir}\n"),))
    assert "%postun\ndate +%%s # %%{_bindir}\n" in render_spec(package)


def query(rpm: Path, *tags: str) -> str:
    form = "".join(f"[{tag[0]} %{{{tag}}}\\n]" for tag in tags)
    done = subprocess.run(["rpm", "-qp", "--qf", form, str(rpm)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout


def test_file_soname_and_rich_dependencies_are_built_as_given(tmp_path: Path):
    require_tools("rpmbuild")
    result = run_cli(
        "fake-rpm", "-n", "deps", "-v", "1", "-o", str(tmp_path / "out"),
        "-d", "/usr/bin/sh", "-d", "libc.so.6()(64bit)", "-d", "(a or b)",
        "-d", "(foo if bar)", "-d", "(x>=1 or (y with z<2))", "-d", "font(:lang=en)",
        "--provides", "/usr/bin/deps", "--provides", "libdeps.so.1()(64bit)",
        "--conflicts", "(old and older >= 2)", "--conflicts", "/etc/deps.conf",
        "--replaces", "deps-old < 1",
    )  # fmt: skip
    assert result.code == 0, result.err
    found = query(result.paths[2], "REQUIRENAME", "PROVIDENAME", "CONFLICTNAME").splitlines()
    assert sorted(line for line in found if "rpmlib(" not in line) == [
        "C (old and older >= 2)", "C /etc/deps.conf",
        "P /usr/bin/deps", "P deps", "P deps-old", "P libdeps.so.1()(64bit)",
        "R (a or b)", "R (foo if bar)", "R (x >= 1 or (y with z < 2))", "R /usr/bin/sh",
        "R font(:lang=en)", "R libc.so.6()(64bit)",
    ]  # fmt: skip


RICH = [
    "(a or b)", "(a and b and c)", "(a if b)", "(a if b else c)", "(a unless b else c)",
    "(a with b)", "(a without b)", "((a or b) with c)", "((a and b) with c)",
    "(a or (b if c))", "(a and (b if c))", "(a and (b unless c))", "(a or (b unless c))",
    "((a if b) or c)", "((a unless b) and c)", "(a if (b or c))", "(a unless (b and c))",
    "(a and b or c)", "(a if b if c)", "(a else b)", "(a with b with c)", "(a or)", "()",
    "(a or b))", "(perl(Foo) >= 1 or /usr/bin/sh)", "(/usr/bin/sh >= 1 or a)",
]  # fmt: skip


@pytest.mark.parametrize("tag", ["Requires", "Conflicts"])
@pytest.mark.parametrize("dependency", RICH)
def test_rich_dependencies_are_accepted_exactly_when_rpm_accepts_them(
    tmp_path: Path, tag: str, dependency: str
):
    require_tools("rpmspec")
    spec = tmp_path / "t.spec"
    spec.write_text(
        "Name: t\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n"
        f"{tag}: {dependency}\n%description\nd\n%files\n"
    )
    done = subprocess.run(["rpmspec", "-q", str(spec)], capture_output=True, text=True)
    rpm_accepts = done.returncode == 0 and "error:" not in done.stderr
    try:
        Dependency.parse(dependency, "--depends" if tag == "Requires" else "--conflicts")
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted == rpm_accepts, done.stderr


def test_an_old_source_date_epoch_builds_without_the_default_changelog(tmp_path, monkeypatch):
    """rpm drops (with an error it does not fail on) entries before 1990: say so
    if --changelog was asked for (cases/refused.json), else leave the default out."""
    require_tools("rpmbuild")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    result = run_cli("fake-rpm", "-n", "old", "-v", "1", "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    spec, srpm, rpm = result.paths
    assert "%changelog" not in spec.read_text()
    for package in (srpm, rpm):
        assert query(package, "BUILDTIME", "CHANGELOGTIME") == "B 0\n"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "500000000")
    asked = run_cli("fake-rpm", "-n", "old", "-v", "1", "--changelog", "x",
                    "-o", str(tmp_path / "out2"))  # fmt: skip
    assert (asked.code, asked.err.count("\n")) == (2, 1)
    assert asked.err.startswith("mgmt-pkg: error: --source-date-epoch: 500000000 (1985-11-05)")


@pytest.mark.parametrize(
    ("seconds", "kept"),
    [(631152000, 631195200), (4294943999, 4294900800)],  # noon of 1990-01-01, of 2106-02-06
)
def test_changelog_dates_at_the_ends_of_what_rpm_keeps(tmp_path: Path, seconds: int, kept: int):
    require_tools("rpmbuild")
    result = run_cli("fake-rpm", "-n", "edge", "-v", "1", "--changelog", "x",
                     "--source-date-epoch", str(seconds), "-o", str(tmp_path))  # fmt: skip
    assert result.code == 0, result.err
    for package in result.paths[1:]:
        assert query(package, "CHANGELOGTIME", "CHANGELOGTEXT") == f"C {kept}\nC - x\n"
