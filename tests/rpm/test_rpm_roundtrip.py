"""Random inputs through `mgmt-pkg fake-rpm` and the real rpmbuild.

Every accepted input must build, and the headers read back with rpmfile must
equal the input; every refused input must exit 2 with one line naming the
option, and leave nothing behind. Inputs mix values shaped like real ones
with arbitrary text full of rpm's special characters (%, #, newlines, ...).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from rpm_helpers import run_cli

from mgmt_pkg.rpm.inspect import read_package
from support import require_tools

SPECIAL = [*list("aZ09 .-_+~^%{}()#:;,<>=*\\/'\"$`!\t\n"), "é", "中", "\xa0", "\x00", "\x7f"]
noise = st.text(alphabet=st.sampled_from(SPECIAL), max_size=12)
# Shaped like real values, yet full of what the spec must escape (%, #, {}, \\).
SHAPED = {
    "name": st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._+-]{0,15}", fullmatch=True),
    "version": st.from_regex(r"[0-9a-z_][0-9a-z._+~^]{0,8}", fullmatch=True),
    "release": st.from_regex(r"[0-9a-z_][0-9a-z._+~^]{0,8}", fullmatch=True),
    "epoch": st.one_of(st.none(), st.integers(0, 99).map(str), st.integers(0, 2**32).map(str)),
    "summary": st.from_regex(
        r"[A-Za-z0-9#{}é][A-Za-z0-9 %#{}()\\,.!é中-]{0,30}[a-z.%]", fullmatch=True
    ),
    "description": st.tuples(
        st.lists(
            st.from_regex(
                r"( {0,2}[A-Za-z0-9{}é\\:*%][A-Za-z0-9 %#{}é\\.]{0,20}[a-z.])?", fullmatch=True
            ),
            max_size=3,
        ),
        st.from_regex(r"[A-Za-z0-9{}é\\:*][A-Za-z0-9 %#{}é\\.]{0,20}[a-z.]", fullmatch=True),
    ).map(lambda lines: "\n".join([*lines[0], lines[1]])),
    "changelog": st.from_regex(
        r"[A-Za-z0-9%{}#*-][A-Za-z0-9 %#{}\\.*-]{0,20}[a-z]", fullmatch=True
    ),
    "depends": st.lists(
        st.from_regex(
            r"[a-z0-9_][a-z0-9._+-]{0,8}(\([a-z:]{1,6}\))?"
            r"( ?(<|<=|=|>=|>) ?([0-9]:)?[0-9][0-9a-z.~^+_]{0,5}(-[0-9a-z.]{1,3})?)?",
            fullmatch=True,
        ),
        max_size=3,
    ),
}


@st.composite
def inputs(draw):
    """Mostly well-shaped values; about half the time one field is arbitrary text."""
    values = {field: draw(strategy) for field, strategy in SHAPED.items()}
    spoiled = draw(st.one_of(st.none(), st.sampled_from(sorted(SHAPED))))
    if spoiled == "depends":
        values["depends"] = [*values["depends"], draw(noise)]
    elif spoiled is not None:
        values[spoiled] = draw(noise)
    return values


# An operator outside parentheses ("font(:lang=en)" is one name).
OPERATOR = re.compile(r"\s*(<=|>=|=|<|>)\s*(?![^(]*\))")


def canonical(dependency: str) -> str:
    text = dependency.strip()
    if text.startswith("(") and text.endswith(")"):  # rich; from noise, of one operand
        return f"({canonical(text[1:-1])})"
    return OPERATOR.sub(lambda m: f" {m[1]} ", text, count=1)


@settings(
    # Modest by default to keep the suite fast; raise it to hunt: MGMT_PKG_EXAMPLES=500
    max_examples=int(os.environ.get("MGMT_PKG_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(values=inputs())
def test_accepted_inputs_build_and_read_back_and_refused_ones_exit_2(values):
    name, version, release, epoch = (values[k] for k in ("name", "version", "release", "epoch"))
    summary, description, changelog = (values[k] for k in ("summary", "description", "changelog"))
    depends = values["depends"]
    require_tools("rpmbuild")
    with tempfile.TemporaryDirectory() as temporary:
        out = Path(temporary) / "out"
        args = ["fake-rpm", "-n", name, "-v", version, "--iteration", release, "-o", str(out)]
        args += ["--summary", summary, "--description", description, "--changelog", changelog]
        args += [] if epoch is None else ["--epoch", epoch]
        for dep in depends:
            args += ["-d", dep]
        result = run_cli(*args)
        note(f"exit {result.code}: {result.err!r}")
        event("built" if result.code == 0 else result.err.split(":")[2].strip())
        if result.code != 0:
            assert result.code == 2, result.err  # refused, never a failed rpmbuild
            assert re.match(r"mgmt-pkg: error: --[a-z-]+[: ]", result.err)
            assert len(result.err.splitlines()) == 1
            assert not out.exists() or list(out.iterdir()) == []
            return
        info = read_package(result.paths[2])
        assert (info.name, info.version, info.release) == (name, version, release)
        assert info.epoch == (None if epoch is None else int(epoch))
        assert (info.summary, info.description) == (summary, description)
        # fpm's rule: a line that is an item already ("- x") is not made "- - x"
        assert info.changelog[0][2] == (
            changelog if changelog.startswith("-") else f"- {changelog}"
        )
        requires = {str(r) for r in info.requires if not r.name.startswith("rpmlib(")}
        assert requires == {canonical(d) for d in depends}
