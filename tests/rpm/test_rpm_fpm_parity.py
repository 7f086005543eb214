"""What fpm's users expect, for fake-rpm and rpm alike (cases/fpm_parity.json),
read back from the built RPM's headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rpm_helpers import run_cli

from mgmt_pkg.rpm.inspect import read_package
from support import require_tools

CASES = json.loads((Path(__file__).parent / "cases" / "fpm_parity.json").read_text())


@pytest.mark.parametrize("command", ["fake-rpm", "rpm"])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_fpm_parity(tmp_path: Path, command: str, case: dict):
    require_tools("rpmbuild")
    payload = tmp_path / "file"
    payload.write_text("x\n")
    extra = [f"{payload}=/usr/share/parity/file"] if command == "rpm" else []
    result = run_cli(command, "-n", "parity", "-v", "1", "-o", str(tmp_path / "out"),
                     *case["args"], *extra)  # fmt: skip
    assert result.code == 0, result.err
    info = read_package(result.paths[2])
    for field, want in case["expect"].items():
        if field == "changelog":
            assert [text for _when, _who, text in info.changelog] == want
        elif field in ("requires", "conflicts"):
            got = [str(r) for r in getattr(info, field) if not r.name.startswith("rpmlib(")]
            assert got == want
        else:
            assert getattr(info, field) == want, field
