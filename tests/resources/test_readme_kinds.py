"""README's table of resource kinds names every kind the agent knows, with every field."""

from __future__ import annotations

import re
from pathlib import Path

from mgmt.resources.base import kind_class, known_kinds

README = Path(__file__).resolve().parents[2] / "README.md"


def kinds_table() -> dict:
    """kind -> the fields cell of its row, from the table under "### Resource kinds"."""
    text = README.read_text()
    section = text[text.index("### Resource kinds") :]
    section = section[: section.index("\n## ")]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        for kind in re.findall(r"`([^`]+)`", cells[0]):
            rows[kind] = cells[1]
    return rows


def test_every_kind_has_a_row_naming_each_of_its_fields():
    rows = kinds_table()
    assert sorted(rows) == known_kinds()
    for kind, cell in rows.items():
        words = set(re.findall(r"[a-z_]+", cell))
        missing = [f for f in kind_class(kind).fields if f not in words]
        assert not missing, f"README: {kind} does not document {missing}"
        if not kind_class(kind).fields:
            assert cell == "none"
