"""exec's commands are checked in linear time and within a bound, with short errors."""

from __future__ import annotations

import shlex

import pytest

from mgmt.errors import GraphError
from mgmt.graph import parse_graph
from mgmt.resources.exec import MAX_COMMAND, split_command

# Words, quotes of both kinds, escapes inside and outside them, empty quoted
# words, blanks of every kind, and each way a command cannot be split.
SPLIT_CASES = [
    "", "  ", "a", "a b\tc\nd\re", "'a b' c", '"a b" c', "''", '""', "a''b", 'x"" y',
    "a\\ b", "\\\\", '"\\"x\\\\"', '"\\a\\$"', "'\\'", "a#b #c", "'unclosed", '"unclosed',
    "trailing\\", '"in quotes\\', "é 'ü\"' \"ö'\"", "a\\\nb", "\x0bv",
]  # fmt: skip


def _split(function, text):
    try:
        return function(text)
    except ValueError as err:
        return ("error", str(err))


@pytest.mark.parametrize("text", SPLIT_CASES)
def test_split_command_splits_as_shlex_does(text):
    assert _split(split_command, text) == _split(shlex.split, text)


def _exec_graph(cmd: str) -> str:
    return f"graph: g\nresources:\n  exec:\n  - name: e\n    cmd: {cmd}\n"


def test_a_command_longer_than_any_argument_is_refused_at_its_line():
    with pytest.raises(GraphError) as caught:
        parse_graph(_exec_graph("a" * (MAX_COMMAND + 1)), "g.yaml")
    error = caught.value
    assert error.line == 5
    assert "cmd: a command of 131073 characters is longer than 131072" in error.message
    assert len(str(error)) < 200


def test_a_command_at_the_bound_loads():
    graph = parse_graph(_exec_graph("a" * MAX_COMMAND), "g.yaml")
    assert graph.resources[("exec", "e")].params["cmd"] == "a" * MAX_COMMAND


def test_an_unclosed_quote_is_reported_with_the_command_cut():
    with pytest.raises(GraphError) as caught:
        parse_graph(_exec_graph("'\"" + "a" * 100_000 + "'"), "g.yaml")
    message = str(caught.value)
    assert message.startswith("g.yaml:5: exec[e]: cmd: cannot split '\"aaa")
    assert message.endswith("...: No closing quotation")
    assert len(message) < 200
