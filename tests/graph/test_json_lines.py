"""Errors in a JSON graph name their line, as a YAML graph's do.

json.loads gives its hooks no positions: a duplicate key or a NUL is found
again by the YAML reader, a non-finite number by its token outside strings.
"""

from __future__ import annotations

import pytest

from mgmt.errors import GraphError
from mgmt.graph import parse_graph
from mgmt.graph.located import load_json_object

NOOP = '{"graph": "g",\n "resources": {"noop": [\n  {"name": "a", %s}]}}'
CASES = [
    ("duplicate key", '{"graph": "g",\n\n "graph": "h"}', 3, "duplicate key 'graph' (first on"),
    ("duplicate nested key", NOOP % '\n"meta": {}, "meta": {}', 4, "duplicate key 'meta'"),
    ("NaN", NOOP % '"meta": {"delay": NaN}', 3, "NaN is not a number a graph can hold"),
    ("-Infinity", NOOP % '\n"meta": {"delay": -Infinity}', 4, "-Infinity is not a number"),
    (
        "Infinity after one in a string",
        '{"graph": "g", "comment": "Infinity NaN",\n "x": Infinity}',
        2,
        "Infinity is not a number",
    ),
    ("1e400", NOOP % '"meta":\n{"delay": 1e400}', 4, "the number '1e400' is too large"),
    (
        "long integer after the same digits in a string",
        '{"graph": "g", "comment": "' + "1" * 101 + '",\n "x": ' + "1" * 101 + "}",
        2,
        "a number has more than 100 digits",
    ),
    ("NUL in a value", NOOP % '"x": "\\u0000"', 3, "a string holds a NUL character"),
    ("NUL in a key", NOOP % '\n"x\\u0000": 1', 4, "a string holds a NUL character"),
]  # fmt: skip


@pytest.mark.parametrize("text,line,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_json_error_names_its_line(text, line, message):
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "g.json")
    assert str(caught.value).startswith(f"g.json:{line}: {message}"), str(caught.value)


def test_an_export_with_nan_is_refused_too():
    with pytest.raises(GraphError, match="NaN is not a number"):
        load_json_object('{"content": NaN}')
    assert load_json_object('{"retry": 1.5, "n": 2}') == {"retry": 1.5, "n": 2}
