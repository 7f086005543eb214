"""Kickstart rendering and validation: case files, both templates, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from provision_support import CASES

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.kickstart import check_file, check_text, render, template_names

KICKSTART_CASES = json.loads((CASES / "kickstart_cases.json").read_text())["cases"]
URL = "http://10.254.0.1:8000/os/"


def mgmt_pkg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgmt_pkg", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    "case", KICKSTART_CASES, ids=[f"{c['file']}-{c['target']}" for c in KICKSTART_CASES]
)
def test_check_case(case):
    report = check_file(CASES / "kickstart" / case["file"], case["target"])
    assert report.ok == case["ok"]
    found = [(f.line, f.severity, f.message) for f in report.findings]
    assert len(found) == len(case["findings"]), found
    for (line, severity, message), (want_line, want_severity, want_text) in zip(
        found, case["findings"]
    ):
        assert (line, severity) == (want_line, want_severity) and want_text in message


@pytest.mark.parametrize("target", ["F39", "RHEL9", "RHEL8", "F17", "RHEL6"])
@pytest.mark.parametrize("template", ["minimal", "lvm"])
def test_templates_render_valid_unattended_kickstarts(template, target):
    text = render(
        template, {"url": URL, "hostname": "node1", "packages": "vim-minimal,git"}, target
    )
    report = check_text(text, target, template)
    assert report.findings == [], [str(f) for f in report.findings]
    assert f"url --url={URL}\n" in text and "\nvim-minimal\ngit\n" in text


def _logvol_lines(text: str) -> list:
    return [line for line in text.splitlines() if line.startswith("logvol ")]


def test_lvm_template_makes_the_unformatted_volume_in_post_on_modern_targets():
    text = render("lvm", {"url": URL}, "F39")
    assert all("--fstype=none" not in line for line in _logvol_lines(text))
    post = text.split("%post --erroronfail\n", 1)[1]
    assert "lvcreate --yes --name foo --extents 100%FREE VolGroup00\n%end" in post


def test_lvm_template_keeps_the_trick_for_old_targets():
    text = render("lvm", {"url": URL}, "F17")
    assert "logvol /foo --name=foo --vgname=VolGroup00 --fstype=none --grow --size=1" in text
    assert "%post" not in text
    assert check_text(text, "F17").findings == []


def test_trick_forced_on_a_modern_target_is_warned_about():
    text = render("lvm", {"url": URL, "unformatted_lv": "trick"}, "RHEL9")
    report = check_text(text, "RHEL9", "x.ks")
    line = text.splitlines().index(
        "logvol /foo --name=foo --vgname=VolGroup00 --fstype=none --grow --size=1"
    )
    assert report.ok
    assert [(f.line, f.severity) for f in report.findings] == [(line + 1, "warning")]


@pytest.mark.parametrize(
    "variables, message",
    [
        ({}, "lvm: needs --var url=..."),
        ({"url": URL, "unformatted_lv": "maybe"}, "unformatted_lv='maybe': must be one of post"),
        ({"url": URL + "\n%pre\nrm -rf /\n%end"}, "--var url: holds U+000A, a control character"),
    ],
)
def test_render_refuses_bad_variables(variables, message):
    with pytest.raises(InvalidInput, match=message.replace("+", r"\+").replace(".", r"\.")):
        render("lvm", variables, "F39")


def test_template_names():
    assert template_names() == ["lvm", "minimal"]


def test_cli_render_writes_a_valid_file(tmp_path):
    output = tmp_path / "node1.ks"
    result = mgmt_pkg("kickstart", "render", "minimal", "--var", f"url={URL}",
                      "--target", "RHEL9", "-o", str(output))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert check_file(output, "RHEL9").findings == []
    assert list(tmp_path.iterdir()) == [output]  # no temp file left behind


def test_cli_render_of_an_invalid_template_writes_nothing(tmp_path):
    template = tmp_path / "broken.ks.j2"
    declare = '{%- set url = require("url", "url") -%}\n'
    template.write_text(declare + "text\nurl --url={{ url }}\nfrobnicate\n")
    output = tmp_path / "out.ks"
    result = mgmt_pkg(
        "kickstart", "render", str(template), "--var", f"url={URL}", "-o", str(output)
    )
    assert result.returncode == 1
    assert f"{output} (rendered):3: error: Unknown command: frobnicate" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"mgmt-pkg: error: {output} (rendered): 1 error for F39"
    )
    assert not output.exists()


def test_cli_check_reports_file_and_line():
    seed = CASES / "kickstart" / "seed-layout.ks"
    broken = CASES / "kickstart" / "errors.ks"
    ok = mgmt_pkg("kickstart", "check", str(seed))
    assert ok.returncode == 0 and f"{seed}:16: warning: logvol /foo --fstype=none" in ok.stderr
    bad = mgmt_pkg("kickstart", "check", str(broken), "--target", "RHEL9")
    assert bad.returncode == 1
    assert f"{broken}:3: error: Unknown command: frobnicate" in bad.stderr


def test_cli_check_checks_every_file_and_names_each_problem(tmp_path):
    """A missing file stopped the check: the files after it were never looked at."""
    seed = CASES / "kickstart" / "seed-layout.ks"
    broken = CASES / "kickstart" / "errors.ks"
    missing = tmp_path / "missing.ks"
    result = mgmt_pkg("kickstart", "check", str(seed), str(missing), str(broken))
    assert result.returncode == 2, result.stderr
    assert f"{seed}: valid for F39" in result.stdout
    assert f"mgmt-pkg: error: {missing}: no such file\n" in result.stderr
    assert f"{broken}:3: error: Unknown command: frobnicate" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "mgmt-pkg: error: 2 of 3 kickstarts failed: 1 has errors, 1 could not be checked"
    )
    assert "Traceback" not in result.stderr


def test_cli_check_of_several_files_with_errors_only_exits_1():
    broken = CASES / "kickstart" / "errors.ks"
    deprecated = CASES / "kickstart" / "deprecated.ks"
    seed = CASES / "kickstart" / "seed-layout.ks"
    result = mgmt_pkg("kickstart", "check", str(broken), str(seed), str(deprecated))
    assert result.returncode == 1, result.stderr
    assert f"{deprecated}:4: error: Ignoring deprecated command on line 4" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "mgmt-pkg: error: 2 of 3 kickstarts failed: 2 have errors"
    )


def test_cli_check_of_an_unknown_target_says_so_once(tmp_path):
    seed = str(CASES / "kickstart" / "seed-layout.ks")
    result = mgmt_pkg("kickstart", "check", seed, seed, "--target", "F999")
    assert result.returncode == 2
    assert result.stderr == "mgmt-pkg: error: unknown kickstart target 'F999' (try F39 or RHEL9)\n"


@pytest.mark.parametrize("kind", ["device", "not UTF-8"])
def test_cli_check_of_a_file_it_cannot_read_as_text_is_bad_input(tmp_path, kind):
    """/dev/zero was read until the OOM killer came; bytes not UTF-8 gave a codec's words."""
    path = Path("/dev/zero") if kind == "device" else tmp_path / "latin1.ks"
    if kind == "not UTF-8":
        path.write_bytes(b"text\nrootpw caf\xe9\n")
    result = mgmt_pkg("kickstart", "check", str(path))
    assert result.returncode == 2
    said = {
        "device": "/dev/zero: not a regular file (a device, FIFO or socket)",
        "not UTF-8": f"{path}:2: not UTF-8 text (byte 15); save it as UTF-8",
    }[kind]
    assert result.stderr == f"mgmt-pkg: error: {said}\n"


def test_cli_unknown_target_is_bad_input(tmp_path):
    result = mgmt_pkg("kickstart", "check", str(CASES / "kickstart" / "errors.ks"),
                      "--target", "F999")  # fmt: skip
    assert result.returncode == 2
    assert "unknown kickstart target 'F999'" in result.stderr


def test_examples_embed_valid_kickstarts():
    """Every inline kickstart in examples/provision*.yaml must validate for its target."""
    import yaml

    examples = sorted(Path(__file__).parents[2].glob("examples/provision*.yaml"))
    checked = 0
    for example in examples:
        graph = yaml.safe_load(example.read_text())
        for item in graph["resources"].get("http:server:file", []):
            if item["path"].endswith(".ks"):
                report = check_text(item["content"], "F39", f"{example.name}:{item['name']}")
                assert report.findings == [], [str(f) for f in report.findings]
                checked += 1
    if examples:
        assert checked, "the provisioning examples serve no kickstart"


# A character no kickstart line can hold, in the middle of an otherwise valid file.
BAD_CHARACTERS = ["\x00", "\x1b", "\x7f", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\r"]


@pytest.mark.parametrize("char", BAD_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["command", "post"])
def test_cli_check_refuses_a_line_holding_a_control_or_break(tmp_path, char, where):
    """`lang en_US\\0` was called valid; a break only splitlines() sees hid a line.

    Mid-line: a \\r before \\n is a CRLF ending, taken as one.
    """
    seed = (CASES / "kickstart" / "seed-layout.ks").read_text()
    line = f"lang en{char}_US" if where == "command" else f"%post\necho hi{char}there\n%end"
    path = tmp_path / "x.ks"
    path.write_text(f"{line}\n{seed}", newline="")
    result = mgmt_pkg("kickstart", "check", str(path))
    assert result.returncode == 2, result.stderr
    number = 1 if where == "command" else 2
    assert result.stderr.startswith(f"mgmt-pkg: error: {path}:{number}: holds U+{ord(char):04X}, ")
    assert len(result.stderr.splitlines()) == 1


def test_cli_check_takes_crlf_endings_and_tabs(tmp_path):
    seed = (CASES / "kickstart" / "seed-layout.ks").read_text()
    path = tmp_path / "crlf.ks"
    path.write_bytes(("lang\ten_US\n" + seed).replace("\n", "\r\n").encode())
    result = mgmt_pkg("kickstart", "check", str(path))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("ending", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_cli_check_names_a_byte_order_mark(tmp_path, ending):
    """Notepad's BOM gave 'x.ks:1: error: Unknown command: ' followed by nothing to see."""
    seed = (CASES / "kickstart" / "seed-layout.ks").read_text()
    path = tmp_path / "x.ks"
    path.write_bytes(b"\xef\xbb\xbf" + seed.replace("\n", ending).encode())
    result = mgmt_pkg("kickstart", "check", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"mgmt-pkg: error: {path}:1: holds U+FEFF, a byte order mark, which anaconda reads as "
        "part of the line; save the file as UTF-8 without a BOM\n"
    )


def test_render_names_a_byte_order_mark_in_the_template(tmp_path):
    template = tmp_path / "bom.ks.j2"
    template.write_bytes(b"\xef\xbb\xbf" + (CASES / "kickstart" / "seed-layout.ks").read_bytes())
    output = tmp_path / "bom.ks"
    result = mgmt_pkg("kickstart", "render", str(template), "-o", str(output))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"mgmt-pkg: error: {output} (rendered):1: holds U+FEFF, ")
    assert not output.exists()


def test_cli_check_reports_a_folder_and_checks_the_other_files(tmp_path):
    """click refused the folder with a usage error and checked nothing at all."""
    seed = CASES / "kickstart" / "seed-layout.ks"
    broken = CASES / "kickstart" / "errors.ks"
    result = mgmt_pkg("kickstart", "check", str(seed), str(tmp_path), str(broken), "")
    assert result.returncode == 2, result.stderr
    assert result.stdout == f"{seed}: valid for F39\n"
    assert f"mgmt-pkg: error: {tmp_path}: is a directory, not a file\n" in result.stderr
    assert f"{broken}:3: error: Unknown command: frobnicate" in result.stderr
    assert "mgmt-pkg: error: FILE '': the path is empty\n" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "mgmt-pkg: error: 3 of 4 kickstarts failed: 1 has errors, 2 could not be checked"
    )


def test_cli_check_of_a_folder_alone_is_bad_input(tmp_path):
    result = mgmt_pkg("kickstart", "check", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == f"mgmt-pkg: error: {tmp_path}: is a directory, not a file\n"
