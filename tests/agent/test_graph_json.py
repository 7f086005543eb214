"""Graphs handed to remote agents as JSON: the same graph as the YAML, read without PyYAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mgmt.errors import GraphError
from mgmt.graph import parse_graph
from mgmt.graph.located import graph_as_json, load_located
from mgmt.graph.parse import parse_document

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SRC = Path(__file__).resolve().parents[2] / "src"

RICH = """
graph: g
remote: ssh://root@10.254.0.9:22
resources:
  exec:
  - name: first
    cmd: "true"
    meta: {retry: 3, delay: 50, noop: true}
  - name: second
    cmd: "echo 'ü and \\"quotes\\"'"
  file:
  - name: "@@shared"
    path: /tmp/shared
    content: "two\\nlines\\n"
edges:
- name: e1
  from: {kind: exec, name: first}
  to: {kind: exec, name: second}
collect:
- kind: file
  pattern: /tmp/
"""


def _same(a, b) -> bool:
    return (
        a.name == b.name
        and a.remote == b.remote
        and a.resources.keys() == b.resources.keys()
        and all(a.resources[k].same_as(b.resources[k]) for k in a.resources)
        and [(e.from_, e.to, e.name) for e in a.edges] == [(e.from_, e.to, e.name) for e in b.edges]
        and [(c.kind, c.pattern) for c in a.collect] == [(c.kind, c.pattern) for c in b.collect]
    )


@pytest.mark.parametrize("name", ["remote2a.yaml", "remote2b.yaml", "rich"])
def test_the_json_form_is_the_same_graph(name):
    text = RICH if name == "rich" else (EXAMPLES / name).read_text()
    as_json = graph_as_json(text)
    assert as_json is not None and as_json.startswith("{")
    assert _same(parse_graph(as_json, "g.json"), parse_graph(text, "g.yaml"))


def test_values_without_a_json_form_keep_the_yaml():
    dated = "graph: g\nresources:\n  noop:\n  - name: n\n    meta: {delay: 2024-01-01}\n"
    assert graph_as_json(dated) is None  # a date
    numbered = "graph: g\nresources:\n  noop:\n  - name: n\n    1: x\n"
    assert graph_as_json(numbered) is None  # an int key would come back a string


def test_a_yaml_flow_mapping_is_still_yaml():
    graph = parse_graph("{graph: g, resources: {noop: [{name: n}]}}", "g.yaml")
    assert list(graph.resources) == [("noop", "n")]


def test_json_mistakes_name_the_file_and_line():
    """JSON is read without lines; a graph that fails is read again as YAML for them."""
    with pytest.raises(GraphError, match=r"^g\.json:2: duplicate key 'graph' \(first on line 1\)"):
        parse_graph('{"graph": "g",\n "graph": "h", "resources": {}}', "g.json")
    with pytest.raises(GraphError, match=r"^g\.json:3: .*'nope'"):
        parse_graph('{"graph": "g",\n "resources":\n {"nope": []}}', "g.json")
    with pytest.raises(GraphError, match=r"^g\.json:2: file\[a\]: mode: '99z' is not an octal"):
        parse_graph(
            '{"graph": "g", "resources": {"file": [{"name": "a", "path": "/x",\n "mode": "99z"}]}}',
            "g.json",
        )


def test_a_json_graph_yaml_cannot_read_keeps_its_own_error():
    """json.dumps writes an emoji as a surrogate pair, which PyYAML refuses: the
    graph's own error stands, without a line, not a YAML syntax error."""
    text = (
        '{"graph": "g \\ud83d\\ude00",\n'
        ' "resources": {"file": [{"name": "a", "path": "/x", "mode": "9"}]}}'
    )
    with pytest.raises(GraphError) as refused:
        parse_graph(text, "g.json")
    assert str(refused.value).startswith("g.json: file[a]: mode: '9' is not an octal mode")


def test_a_duplicate_in_a_json_graph_is_named_with_its_line():
    text = '{"graph": "g", "resources": {"noop": [{"name": "n"},\n {"name": "n"}]}}'
    with pytest.raises(GraphError) as refused:
        parse_graph(text, "g.json")
    assert str(refused.value) == "g.json:2: duplicate resource noop[n] (first on line 1)"


def test_a_json_graph_is_read_without_importing_pyyaml():
    text = json.dumps({"graph": "g", "resources": {"noop": [{"name": "n"}]}})
    probe = (
        "import sys; from mgmt.graph import parse_graph; "
        f"g = parse_graph({text!r}); print(sorted(g.resources), 'yaml' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        check=True,
    )
    assert done.stdout.split("]")[-1].strip() == "False", done.stdout
    assert "('noop', 'n')" in done.stdout


def test_a_json_number_yaml_reads_otherwise_keeps_the_json_error():
    """YAML 1.1 reads 1e3 as a string: the error said "got str '1e3'" at a line."""
    text = '{"graph": "g", "resources": {"exec": [{"name": "a", "cmd": "true",\n "timeout": 1e3}]}}'
    with pytest.raises(GraphError) as refused:
        parse_graph(text, "g.json")
    assert "1e3" not in str(refused.value) and "timeout" in str(refused.value)


def test_a_one_line_json_graph_names_line_1():
    text = '{"graph": "g", "resources": {"file": [{"name": "a", "path": "/x", "mode": "9"}]}}'
    with pytest.raises(GraphError, match=r"^g\.json:1: file\[a\]: mode"):
        parse_graph(text, "g.json")


def test_plain_scalars_in_text_fields_reach_the_agent_as_written():
    """mgmt reads ``mode: 0644`` as the mode '0644' and ``comment: 2024-01-01`` as
    that text; the JSON a remote agent is sent says the same, not 420 or a date."""
    text = (
        "graph: g\ncomment: 2024-01-01\nresources:\n  file:\n"
        "  - name: /tmp/a\n    mode: 0644\n    content: 1.10\n"
        "  exec:\n  - name: e\n    cmd: true\n    timeout: 5\n"
    )
    as_json = graph_as_json(text)
    assert as_json is not None
    assert '"mode": "0644"' in as_json and '"comment": "2024-01-01"' in as_json
    assert '"timeout": 5' in as_json  # a number where one is wanted stays one
    graph = parse_graph(as_json, "g.json")
    assert _same(graph, parse_graph(text, "g.yaml"))
    assert graph.resources[("file", "/tmp/a")].params["content"] == "1.10"
    assert graph.resources[("exec", "e")].params["cmd"] == "true"


@pytest.mark.parametrize(
    "text",
    [
        RICH,
        "graph: g\ncomment: 2024-01-01\nresources:\n  file:\n  - name: /tmp/a\n    mode: 0644\n",
        '{"graph": "g", "resources": {"noop": [{"name": "n", "meta": {"delay": 1000}}]}}',
        "{graph: g, resources: {noop: [{name: n}]}}",
    ],
    ids=["rich", "as-written", "json", "flow"],
)
def test_the_document_the_initiator_checked_gives_the_same_json(text):
    """The initiator checks an edit and sends its JSON form from one reading of
    the YAML (mgmt.remote.orchestration.graphcheck): the same as reading it again."""
    document = load_located(text, "g.yaml")
    parse_document(document, text, "g.yaml")  # checking it leaves it as read
    assert graph_as_json(text, document) == graph_as_json(text)
