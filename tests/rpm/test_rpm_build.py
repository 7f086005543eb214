"""fake-rpm end to end with the real rpmbuild, read back with rpmfile."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import rpmfile
from rpm_helpers import EXAMPLE, rpmlint, run_cli

from mgmt_pkg.errors import ToolFailed
from mgmt_pkg.rpm import PhonyPackage, build_package
from mgmt_pkg.rpm.inspect import read_package, sense
from support import require_tools

# What rpmlint 2.4 with its default configuration still says about a phony
# package, and why we keep it:
ACCEPTED_WARNINGS = {
    "no-url-tag",  # a phony package has no upstream unless --url is given
    "no-buildroot-tag",  # rpm >= 4.6 ignores BuildRoot; Fedora forbids it
    "invalid-license",  # the default configuration lists no valid license at all
}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory):
    require_tools("rpmbuild")
    out = tmp_path_factory.mktemp("out")
    result = run_cli("fake-rpm", *EXAMPLE, "-o", str(out))
    assert result.code == 0, result.err
    return out, result


def test_example_writes_spec_srpm_and_rpm_and_prints_their_paths(example):
    out, result = example
    assert result.paths == [
        out / "vagrant-libvirt.spec",
        out / "vagrant-libvirt-0.0.24-noop.src.rpm",
        out / "vagrant-libvirt-0.0.24-noop.noarch.rpm",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in result.paths)


def test_example_headers_read_back(example):
    out, _ = example
    with rpmfile.open(out / "vagrant-libvirt-0.0.24-noop.noarch.rpm") as package:
        headers = package.headers
        members = [m.name for m in package.getmembers()]
    assert headers["name"] == b"vagrant-libvirt"
    assert headers["version"] == b"0.0.24"
    assert headers["release"] == b"noop"
    assert headers["arch"] == b"noarch"
    assert "serial" not in headers  # no epoch unless given
    requires = dict(
        zip(headers["requirename"], zip(headers["requireversion"], headers["requireflags"]))
    )
    version, flags = requires[b"vagrant"]
    assert version == b"1.6.5"
    assert sense(flags) == ">="
    assert members == ["./usr/share/doc/vagrant-libvirt/README"]  # the placeholder


def test_spec_has_no_source_setup_or_clean_and_a_dated_changelog(example):
    out, _ = example
    spec = (out / "vagrant-libvirt.spec").read_text()
    for absent in ("Source", "%setup", "%clean", "%{buildroot}"):
        assert absent not in spec
    assert "BuildArch:      noarch" in spec
    info = read_package(out / "vagrant-libvirt-0.0.24-noop.src.rpm")
    assert info.source and info.files == ["vagrant-libvirt.spec"]
    ((when, author, _text),) = info.changelog
    assert author.endswith(" - 0.0.24-noop")
    # dated today (UTC) when no --source-date-epoch is given; rpm keeps noon of that day
    assert abs(when - time.time()) < 2 * 86400


def test_rpmlint_reports_no_error_but_the_missing_signature(example):
    require_tools("rpmlint")
    _out, result = example
    errors, warnings = rpmlint(*result.paths[1:])
    assert sorted(errors) == [
        "vagrant-libvirt.noarch: no-signature",
        "vagrant-libvirt.src: no-signature",
    ]
    assert {w.split(": ")[1] for w in warnings} <= ACCEPTED_WARNINGS, warnings


def test_every_option_reaches_the_headers(tmp_path: Path):
    require_tools("rpmbuild", "rpmlint")
    post = tmp_path / "post.sh"
    post.write_text("#!/bin/sh\necho installed 100% > /dev/null\n")
    result = run_cli(
        "fake-rpm", "-n", "phony", "-v", "2.0", "--iteration", "3", "--epoch", "1",
        "-a", "x86_64", "-d", "vagrant >= 1.6.5", "-d", "ruby", "--provides", "virt-thing = 4",
        "--conflicts", "other < 1", "--replaces", "old-phony < 2.0", "--license",
        "AGPL-3.0-or-later", "--url", "https://example.org/phony", "--vendor", "Example Inc.",
        "-m", "Jane Doe <jane@example.org>", "--category", "System Environment/Base",
        "--summary", "Stands in for 100% of the real thing", "--description",
        "First line.\n\n  indented # here", "--changelog", "Built for %{tests}",
        "--after-install", str(post), "--source-date-epoch", "1700000000",
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.code == 0, result.err
    rpm_path = result.paths[2]
    assert rpm_path.name == "phony-2.0-3.x86_64.rpm"
    info = read_package(rpm_path)
    assert (info.epoch, info.version, info.release, info.arch) == (1, "2.0", "3", "x86_64")
    assert info.summary == "Stands in for 100% of the real thing"
    assert info.description == "First line.\n\n  indented # here"
    assert (info.license, info.url, info.vendor) == (
        "AGPL-3.0-or-later",
        "https://example.org/phony",
        "Example Inc.",
    )
    assert info.packager == "Jane Doe <jane@example.org>"
    assert info.group == "System Environment/Base"
    requires = {str(r) for r in info.requires}
    assert {"vagrant >= 1.6.5", "ruby"} <= requires
    provides = {str(r) for r in info.provides}
    assert provides == {"phony = 1:2.0-3", "phony(x86-64) = 1:2.0-3", "virt-thing = 4",
                        "old-phony = 1:2.0-3"}  # fmt: skip
    assert [str(r) for r in info.conflicts] == ["other < 1"]
    assert [str(r) for r in info.obsoletes] == ["old-phony < 2.0"]
    assert info.scripts["post"] == "#!/bin/sh\necho installed 100% > /dev/null"
    ((when, author, text),) = info.changelog
    assert author == "Jane Doe <jane@example.org> - 1:2.0-3"
    assert text == "- Built for %{tests}"
    assert time.strftime("%Y-%m-%d", time.gmtime(when)) == "2023-11-14"


def test_spec_only_and_srpm_only(tmp_path: Path):
    require_tools("rpmbuild")
    spec_only = run_cli("fake-rpm", *EXAMPLE, "--spec-only", "-o", str(tmp_path / "a"))
    assert spec_only.code == 0 and spec_only.paths == [tmp_path / "a" / "vagrant-libvirt.spec"]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["vagrant-libvirt.spec"]
    srpm_only = run_cli("fake-rpm", *EXAMPLE, "--srpm-only", "-o", str(tmp_path / "b"))
    assert srpm_only.code == 0
    assert [p.name for p in srpm_only.paths] == [
        "vagrant-libvirt.spec",
        "vagrant-libvirt-0.0.24-noop.src.rpm",
    ]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        p.name for p in srpm_only.paths
    )
    both = run_cli("fake-rpm", *EXAMPLE, "--spec-only", "--srpm-only", "-o", str(tmp_path / "c"))
    assert both.code == 2 and not (tmp_path / "c").exists()


def test_no_placeholder_gives_an_rpm_without_files(tmp_path: Path):
    require_tools("rpmbuild")
    result = run_cli("fake-rpm", *EXAMPLE, "--no-placeholder", "-o", str(tmp_path))
    assert result.code == 0, result.err
    assert read_package(result.paths[2]).files == []


def test_rpmbuild_failure_shows_its_output_and_writes_nothing(tmp_path: Path):
    require_tools("rpmbuild")
    package = PhonyPackage.create("broken", "1")
    out = tmp_path / "out"
    with pytest.raises(ToolFailed) as failure:
        build_package(package, "Name: broken\n%description\nno version\n", out)
    assert failure.value.returncode != 0
    assert "Version" in str(failure.value)  # rpmbuild's own complaint, from the tail
    assert not out.exists()  # made for the build, removed with it


def test_missing_rpmbuild_names_the_package_to_install(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run_cli("fake-rpm", *EXAMPLE, "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert result.err.startswith("mgmt-pkg: error: rpmbuild not found: install the ")
    assert len(result.err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_inspect_prints_fields_and_json(example):
    out, _ = example
    path = str(out / "vagrant-libvirt-0.0.24-noop.noarch.rpm")
    text = run_cli("inspect", path)
    assert text.code == 0
    for line in ("name:      vagrant-libvirt", "evr:       0.0.24-noop", "arch:      noarch"):
        assert line in text.out
    assert "vagrant >= 1.6.5" in text.out
    data = json.loads(run_cli("inspect", "--json", path).out)
    assert data["name"] == "vagrant-libvirt" and data["epoch"] is None
    assert "vagrant >= 1.6.5" in data["requires"]
    assert data["files"] == ["/usr/share/doc/vagrant-libvirt/README"]
    missing = run_cli("inspect", str(out / "nope.rpm"))
    assert missing.code == 2 and "no such file" in missing.err


def test_an_output_dir_that_cannot_be_made_is_bad_input(tmp_path: Path):
    (tmp_path / "file").write_text("")
    result = run_cli("fake-rpm", *EXAMPLE, "--spec-only", "-o", str(tmp_path / "file" / "out"))
    assert result.code == 2
    assert result.err.startswith(f"mgmt-pkg: error: --output-dir: cannot create {tmp_path}")


def test_inspect_of_a_file_that_is_not_an_rpm_fails_in_one_line(tmp_path: Path):
    bogus = tmp_path / "bogus.rpm"
    bogus.write_bytes(b"not an rpm at all\n" * 10)
    result = run_cli("inspect", str(bogus))
    assert result.code == 2
    assert result.err.startswith(f"mgmt-pkg: error: {bogus}: not an RPM package")
    assert len(result.err.splitlines()) == 1


def test_the_srpm_rebuilds_as_a_build_service_would(example, tmp_path: Path):
    """COPR and koji start from the SRPM alone: it must build by itself."""
    out, _ = example
    done = subprocess.run(
        ["rpmbuild", "--quiet", "--define", f"_topdir {tmp_path}", "--rebuild",
         str(out / "vagrant-libvirt-0.0.24-noop.src.rpm")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (rebuilt,) = (tmp_path / "RPMS" / "noarch").glob("*.rpm")
    info = read_package(rebuilt)
    assert (info.name, info.evr) == ("vagrant-libvirt", "0.0.24-noop")
    assert "vagrant >= 1.6.5" in {str(r) for r in info.requires}


WEAK_SPEC = """\
Name: weak
Version: 1
Release: 1
Summary: A package with weak dependencies
License: MIT
BuildArch: noarch
Recommends: rec >= 1.2
Suggests: sug
Supplements: (sup and lang)
Enhances: enh
%description
Weak dependencies only.
%files
"""


def test_inspect_shows_weak_dependencies(tmp_path: Path):
    """Recommends, Suggests, Supplements and Enhances were left out, text and JSON:
    dnf installs what a package recommends, and inspect did not say so."""
    require_tools("rpmbuild")
    spec = tmp_path / "weak.spec"
    spec.write_text(WEAK_SPEC)
    subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {tmp_path}", str(spec)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    path = str(tmp_path / "RPMS" / "noarch" / "weak-1-1.noarch.rpm")
    text = run_cli("inspect", path)
    assert text.code == 0, text.err
    for line in ("recommends: rec >= 1.2", "suggests:  sug", "supplements: (sup and lang)",
                 "enhances:  enh"):  # fmt: skip
        assert line in text.out.splitlines()
    data = json.loads(run_cli("inspect", "--json", path).out)
    assert (data["recommends"], data["suggests"]) == (["rec >= 1.2"], ["sug"])
    assert (data["supplements"], data["enhances"]) == (["(sup and lang)"], ["enh"])


def test_inspect_leaves_out_weak_kinds_a_package_lacks(example):
    out, _ = example
    text = run_cli("inspect", str(out / "vagrant-libvirt-0.0.24-noop.noarch.rpm")).out
    assert not [line for line in text.splitlines() if line.startswith(("recommends", "enh"))]
    data = json.loads(
        run_cli("inspect", "--json", str(out / "vagrant-libvirt-0.0.24-noop.noarch.rpm")).out
    )
    assert data["recommends"] == data["suggests"] == data["supplements"] == data["enhances"] == []
