"""Graph loading refuses what would exhaust the agent, as exit 2 with the file and line.

The cases are a table (graph_limit_cases.json): the text, or the name of a
maker for texts too large to write out, with the line and message expected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgmt.errors import GraphError
from mgmt.graph import parse_graph
from mgmt.graph.limits import MAX_BYTES, MAX_RESOURCES, MAX_VALUES

CASES = json.loads((Path(__file__).parent / "graph_limit_cases.json").read_text())


def bomb() -> str:
    lines = ["graph: g", "a0: &x0 [lol]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def blocks600() -> str:
    return "graph: g\nresources:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(600))


def flow200() -> str:
    return "graph: g\nx: " + "[" * 200 + "]" * 200 + "\n"


def deep_alias() -> str:
    # 33 levels under &a, used 32 levels down: each half fits, together they do not.
    inner = "[" * 33 + "]" * 33
    return (
        "graph: g\na: &a "
        + inner
        + "\nb:\n"
        + "".join(" " * i + "-\n" for i in range(1, 33))
        + " " * 33
        + "- *a\n"
    )


def json100k() -> str:
    return '{"graph": "g", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"


def json65() -> str:
    return '{"graph": "g", "x": ' + "[" * 64 + "]" * 64 + "}"


def values() -> str:
    return "graph: g\nx:\n" + "- a\n" * MAX_VALUES


def resources() -> str:
    names = "".join(f"  - name: n{i}\n" for i in range(MAX_RESOURCES + 1))
    return "graph: g\nresources:\n  noop:\n" + names


def json_lists() -> str:
    return '{"graph": "g", "x": [' + "[]," * MAX_VALUES + "[]]}"


def big() -> str:
    return "graph: g\ncomment: " + "x" * MAX_BYTES + "\n"


def scalar_aliases() -> str:
    # A 2 MiB scalar is one value, but each alias to it is 2 MiB more text: the
    # 7th alias (line 10) takes the graph past 16 MiB expanded, with its keys.
    return "graph: g\ncomment: &c " + "A" * (2 * 1024 * 1024) + "\nx:\n" + "- *c\n" * 20


def scalar_aliases_in_a_list() -> str:
    # The same through an anchored list: its strings count each time it is used.
    head = "graph: g\ncomment: &c [" + ", ".join(["B" * (1024 * 1024)] * 3) + "]\nx:\n"
    return head + "- *c\n" * 20


MAKERS = {f.__name__: f for f in (bomb, blocks600, flow200, deep_alias, json100k, json65,
                                  values, resources, json_lists, big, scalar_aliases,
                                  scalar_aliases_in_a_list)}  # fmt: skip


def case_text(case: dict) -> str:
    return case["text"] if "text" in case else MAKERS[case["make"]]()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_refused_with_file_line_and_message(case):
    with pytest.raises(GraphError) as caught:
        parse_graph(case_text(case), "g.yaml")
    error = caught.value
    assert case["message"] in error.message
    assert error.line == case["line"], str(error)
    where = "g.yaml" if case["line"] is None else f"g.yaml:{case['line']}"
    assert str(error).startswith(f"{where}: ")
    assert "\n" not in str(error)


def test_the_deep_alias_case_is_deep_only_together():
    # Each half alone fits: the refusal is about the expansion, not either part.
    text = deep_alias()
    head, _b, _rest = text.partition("\nb:\n")
    with pytest.raises(GraphError, match=r"unknown key") as caught:
        parse_graph(head + "\n", "g.yaml")
    assert "nested" not in caught.value.message


def test_aliases_within_the_bounds_still_work():
    text = """graph: g
resources:
  file:
  - name: a
    path: /tmp/a
    content: &motd "hello\\n"
    meta: &meta {retry: 2, delay: 10}
  - name: b
    path: /tmp/b
    content: *motd
    meta: *meta
"""
    graph = parse_graph(text, "g.yaml")
    a, b = graph.resources[("file", "a")], graph.resources[("file", "b")]
    assert a.params["content"] == b.params["content"] == "hello\n"
    assert a.meta == b.meta and a.meta.retry == 2


def test_a_graph_at_depth_64_loads_as_json_and_yaml():
    nested = "[" * 63 + "]" * 63
    for text in ('{"graph": "g", "comment": "c", "x": ' + nested + "}", "graph: g\nx: " + nested):
        with pytest.raises(GraphError, match="unknown key 'x'"):
            parse_graph(text, "g.yaml")  # read in full; only the schema objects


@pytest.fixture
def pure_python_yaml(monkeypatch):
    """PyYAML without libyaml, as on a host whose PyYAML was built without it."""
    import yaml

    from mgmt.graph import yamlload

    monkeypatch.setattr(yamlload, "_Loader", yaml.SafeLoader)


SMALL = [c for c in CASES if "text" in c or c["make"] in ("bomb", "blocks600", "deep_alias")]


@pytest.mark.parametrize("case", SMALL, ids=[c["id"] for c in SMALL])
def test_the_same_without_libyaml(pure_python_yaml, case):
    with pytest.raises(GraphError) as caught:
        parse_graph(case_text(case), "g.yaml")
    assert case["message"] in caught.value.message
    assert caught.value.line == case["line"], str(caught.value)


def test_the_readme_states_the_bounds_as_they_are():
    from mgmt.graph import limits

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    paragraph = readme[readme.index("A graph file itself is bounded") :][:700]
    for said in (
        f"{limits.MAX_BYTES // 2**20} MiB of UTF-8",
        f"{limits.MAX_RESOURCES:,} resources",
        f"{limits.MAX_VALUES:,} values",
        f"at most {limits.MAX_ALIAS_VALUES:,} of them",
        f"{limits.MAX_EXPANDED_CHARS // 2**20} MiB of text",
        f"nested {limits.MAX_DEPTH} levels deep",
        f"integers of {limits.MAX_DIGITS} digits",
    ):
        assert said in paragraph.replace("\n", " "), said
