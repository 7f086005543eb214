"""An error that quotes a value from the graph shows it cut and escaped, on one line.

Each case puts a 200,000-character value where an error will quote it; the
error must still name the file and line and stay one short line.
"""

from __future__ import annotations

import json

import pytest

from mgmt.errors import GraphError
from mgmt.graph import parse_graph

LONG = "x" * 200_000
J = json.dumps  # a YAML double-quoted scalar: escapes kept as escapes


def _res(kind: str, body: str) -> str:
    return f"graph: g\nresources:\n  {kind}:\n  - {body}\n"


CASES = {
    "duplicate resource": (
        f"graph: g\nresources:\n  noop:\n  - name: {LONG}\n  - name: {LONG}\n",
        5,
    ),
    "missing edge target": (
        "graph: g\nresources:\n  noop:\n  - name: a\nedges:\n"
        f"- from: {{kind: noop, name: a}}\n  to: {{kind: {LONG}, name: {LONG}}}\n",
        7,
    ),
    "mode": (_res("file", f"{{name: f, path: /tmp/mgmt-x/f, content: c, mode: '{LONG}'}}"), 4),
    # Under 4096 bytes: a longer path is refused for its length first.
    "relative path": (_res("file", f"{{name: f, path: {LONG[:4000]}, content: c}}"), 4),
    "control character in a name": (_res("noop", f"name: {J(LONG + chr(1))}"), 4),
    "blank name": (_res("noop", f"name: {J(' ' * 200_000)}"), 4),
    "pkg name": (_res("pkg", f"name: {J('p' + '!' * 200_000)}"), 4),
    "hostname": (_res("hostname", f"{{name: h, hostname: {J('-' + LONG)}}}"), 4),
    "svc name": (_res("svc", f"name: {J('!' + LONG)}"), 4),
    "unclosed quote": (_res("exec", f"{{name: e, cmd: {J(chr(39) + 'x' * 100_000)}}}"), 4),
    "unknown key": (f"graph: g\n? {LONG}\n: 1\n", 2),
    "unknown kind": (f"graph: g\nresources:\n  ? {LONG}\n  : []\n", 3),
    "bad boolean": (f"graph: g\nx: !!bool {LONG}\n", 2),
    # YAML's implicit keys stop at 1024 characters; an explicit one (?) does not.
    "duplicate key": (f"graph: g\n? {LONG}\n: 1\n? {LONG}\n: 2\n", 4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_long_value_is_cut_in_its_error(case):
    text, line = CASES[case]
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "g.yaml")
    message = str(caught.value)
    assert message.startswith(f"g.yaml:{line}: "), message[:300]
    assert len(message) < 400, message[:300]
    assert "\n" not in message and "\x01" not in message
    assert "xxx" in message or "!!!" in message or "   " in message  # the value, cut
