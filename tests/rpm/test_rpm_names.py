"""Random file names and contents through `mgmt-pkg rpm` and the real rpmbuild.

Names mix letters with everything rpm's %files treats specially (whitespace,
%, glob characters, both quotes, backslashes, non-ASCII). Each tree either
builds, and then the RPM lists exactly those paths with those digests, or is
refused with exit 2 in one line (control characters, or two names that rpm's
%files cannot tell apart); never anything else.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from rpm_helpers import run_cli

from support import require_tools

ALPHABET = [*"aZ09 .-_+~^%{}()#:;,<>=*?[]!$&`'\"\\@", "é", "中", "\xa0", "\t", "\u2028"]
names = st.text(alphabet=st.sampled_from(ALPHABET), min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..")
)
trees = st.dictionaries(names, st.binary(max_size=64), min_size=1, max_size=6)


@settings(
    max_examples=int(os.environ.get("MGMT_PKG_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(files=trees)
def test_any_names_and_contents_round_trip_or_are_refused(files):
    require_tools("rpmbuild")
    with tempfile.TemporaryDirectory() as temporary:
        tree = Path(temporary) / "tree"
        tree.mkdir()
        for name, data in files.items():
            (tree / name).write_bytes(data)
        out = Path(temporary) / "out"
        result = run_cli("rpm", "-n", "names", "-v", "1", "-o", str(out),
                         "--source-date-epoch", "1700000000", f"{tree}/=/opt/names")  # fmt: skip
        note(f"exit {result.code}: {result.err!r}")
        if result.code != 0:
            assert result.code == 2, result.err
            assert len(result.err.splitlines()) == 1  # even with \u2028 in a name
            assert "rpm refuses" in result.err or "cannot tell it from" in result.err
            assert any(ord(c) < 0x20 for c in "".join(files)) or "cannot tell" in result.err
            return
        done = subprocess.run(
            ["rpm", "-qp", "--qf", "[%{FILENAMES}\\t%{FILEDIGESTS}\\n]", str(result.paths[2])],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        listed = dict(line.rsplit("\t", 1) for line in done.stdout.split("\n") if line)
        want = {f"/opt/names/{n}": hashlib.sha256(d).hexdigest() for n, d in files.items()}
        assert listed == want
