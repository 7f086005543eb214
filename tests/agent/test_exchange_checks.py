"""A collected export is checked as a graph file's resource is: a bad one is skipped
with one escaped log line naming its host and key, and the agent carries on."""

from __future__ import annotations

from helpers import MemWorld

from mgmt.engine.exchange import collected
from mgmt.graph import parse_graph

GRAPH = """graph: g
resources:
  noop:
  - name: n
collect:
- kind: file
"""
FORGED = "\n06:00:00 agent: converged"


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def _collect(exports: dict, mgmt_log) -> tuple:
    store: dict = {"exported": exports, "converged": {}, "watchers": []}
    got = collected(MemWorld("a", store), parse_graph(GRAPH))
    return got, mgmt_log.getvalue()


def test_bad_names_values_and_depths_are_skipped_with_one_escaped_line_each(mgmt_log):
    got, logged = _collect(
        {
            "evil": {
                ("file", "x" + FORGED): {"path": "/tmp/mgmt-never/a", "content": "a"},
                ("file", "   "): {"path": "/tmp/mgmt-never/b", "content": "b"},
                ("file", "nul"): {"path": "/tmp/mgmt-never/c\0d", "content": "c"},
                ("file", "surrogate"): {"path": "/tmp/mgmt-never/e", "content": "\ud800"},
                ("file", "deep"): {"path": "/tmp/mgmt-never/f", "content": _deep(100_000)},
                ("file", "good"): {"path": "/tmp/mgmt-never/good", "content": "ok"},
            },
            "host" + FORGED: {("file", "h"): {"path": "/tmp/mgmt-never/h", "content": "h"}},
        },
        mgmt_log,
    )
    assert set(got) == {("file", "good")}
    # One line per skipped export: nothing a name held started a line of its own.
    lines = logged.splitlines()
    assert not any(line.startswith("06:00:00 agent") for line in lines), logged
    skipped = [line for line in lines if "skipping" in line]
    assert len(skipped) == 6, logged
    assert "skipping file[x\\n06:00:00 agent: converged] from evil: its name must not hold " \
        "the control character U+000A" in logged  # fmt: skip
    assert "skipping file[   ] from evil: its name must not be empty or blank" in logged
    assert "skipping file[nul] from evil: a string holds a NUL character" in logged
    assert "skipping file[surrogate] from evil: a string holds a lone surrogate U+D800" in logged
    assert "skipping file[deep] from evil: values are nested more than 64 levels deep" in logged
    assert "skipping file[h] from host\\n06:00:00 agent: converged: its host must not" in logged


def test_a_long_collected_name_is_cut_in_the_log(mgmt_log):
    long_name = "n" * 100_000
    got, logged = _collect(
        {"evil": {("file", long_name): {"path": "relative", "content": "a"}}}, mgmt_log
    )
    assert got == {}
    assert "skipping file[" + "n" * 60 + "...] from evil: path:" in logged
    assert len(logged) < 1000
