"""Random YAML never breaks graph loading: a graph or a GraphError, within bounded memory.

In-process for speed (the loader is the same code the CLI runs), plus a few
inputs through the real ``mgmt`` CLI in a subprocess for the exit code and the
one-line message.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgmt.errors import GraphError
from mgmt.graph import parse_graph

# Pieces that make YAML structure, so that random text is mostly near-YAML.
PIECES = st.sampled_from(
    [
        "graph: g\n", "resources:\n", "  noop:\n", "  - name: a\n", "  file:\n",
        "    path: /tmp/x\n", "edges:\n", "- ", "  ", ": ", "\n", "[", "]", "{", "}",
        ", ", "&a ", "&b ", "*a", "*b", "? ", "<<: ", "!!str ", "!!binary ", "!!python/x ",
        '"', "'", "\\0", "\\x01", "\x01", "\x00", "\t", "#", "---\n", "...\n", "|\n", ">-\n",
        "%YAML 1.1\n", "1", "true", "~", "2001-01-01", "0o17", ".nan", "é", "\ufeff", "\ud800",
    ]
)  # fmt: skip
YAMLISH = st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=60).map("".join)
MEMORY_BOUND = 64 * 1024 * 1024


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_random_yaml_gives_a_graph_or_a_graph_error(text):
    tracemalloc.start()
    try:
        parse_graph(text, "fuzz.yaml")
    except GraphError as error:
        assert str(error).startswith("fuzz.yaml")
        assert "\n" not in str(error)
    finally:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_BOUND


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=4),
                    max_leaves=40))  # fmt: skip
def test_random_json_values_in_a_graph(value):
    import json

    text = json.dumps({"graph": "g", "comment": value})
    try:
        parse_graph(text, "fuzz.json")
    except GraphError as error:
        assert "fuzz.json" in str(error)


CLI_CASES = [
    ("graph: g\na0: &x0 [l]\n" + "".join(
        f"a{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" for i in range(1, 10)),
     "bomb.yaml:8: YAML aliases expand to more than 400000 values"),
    ("graph: g\nx: &a [*a]\n", "loop.yaml:2: alias *a refers to a value that contains it"),
    ('{"graph": "g", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "deep.json:1: values are nested more than 64 levels deep"),
    ("graph: g\nresources:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(600)),
     "blocks.yaml:66: values are nested more than 64 levels deep"),
    ("graph: g\nresources:\n  noop:\n  - name: \"a\x01\"\n",
     "ctrl.yaml:4: YAML does not allow the control character U+0001"),
]  # fmt: skip


def test_the_real_cli_exits_2_with_one_line(tmp_path):
    for text, expected in CLI_CASES:
        name = expected.split(":")[0]
        graph = tmp_path / name
        graph.write_text(text)
        result = subprocess.run(
            [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--no-server",
             "--tmp-prefix", "-q"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert errors == [f"mgmt: error: {graph.parent}/{expected}" + errors[0].split(expected)[-1]]
        assert "Traceback" not in result.stderr
