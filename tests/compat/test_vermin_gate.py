"""``make lint`` and ``make test`` stop what 3.6 cannot run, in the agent side only.

The Makefile's vermin call is run (``make vermin``) on a copy of src/mgmt with
one fault put in at a time: it must fail on a builtin generic annotation and on
a dataclass in an agent module, and pass the same dataclass in an initiator-only
one. So a flag dropped from the call (``--eval-annotations``) or an exclusion
grown too wide shows here.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERIC = "\n\ndef _probe(names: list[str]) -> None:\n    pass\n"
DATACLASS = "\nfrom dataclasses import dataclass  # noqa: E402\n"


def _vermin(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(ROOT), "vermin",
         f"VERMIN_SRC={tree}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("module", "fault", "caught"),
    [
        pytest.param(None, "", False, id="as-is"),
        pytest.param("statedir.py", GENERIC, True, id="list[str]"),
        pytest.param("net/content.py", DATACLASS, True, id="dataclass"),
        pytest.param("remote/protocol/__init__.py", GENERIC, True, id="protocol-list[str]"),
        pytest.param("remote/orchestration/results.py", DATACLASS, False, id="initiator-dataclass"),
        pytest.param("remote/transport/runner.py", GENERIC, False, id="initiator-list[str]"),
    ],
)
def test_vermin_catches_what_36_lacks_in_agent_modules_only(tmp_path, module, fault, caught):
    tree = tmp_path / "src" / "mgmt"
    shutil.copytree(ROOT / "src" / "mgmt", tree, ignore=shutil.ignore_patterns("__pycache__"))
    if module is not None:
        with open(tree / module, "a") as f:
            f.write(fault)
    done = _vermin(tree)
    output = done.stdout + done.stderr
    if caught:
        assert done.returncode != 0, output
        assert f"{tree / module}" in output, output
        assert "Target versions not met:   3.6-" in output, output
    else:
        assert done.returncode == 0, output
