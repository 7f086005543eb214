"""Validation and rendering against case files (no rpmbuild needed).

cases/refused.json: options that must be refused, with the exact one-line
message; cases/dependencies.json: accepted dependency spellings and how the
spec writes them; cases/specs/NAME.json -> NAME.spec: whole rendered specs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rpm_helpers import run_cli

from mgmt_pkg.rpm.model import Dependency, PhonyPackage
from mgmt_pkg.rpm.spec import render_spec

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
        ("echo \x1b[1m\n", "line 1 contains a control character"),
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
