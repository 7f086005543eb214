"""Graphs written as mgmt's own docs and examples write them (its yamlgraph reader,
Go's yaml.v2): what mgmt reads must be read the same here, or refused naming why.

What mgmt takes and this reader refused: YAML merge keys (``<<: *defaults``).
Refusals are in graph_input_cases.json.
"""

from __future__ import annotations

import pytest
import yaml

from mgmt.graph import parse_graph
from mgmt.graph.yamlload import load_yaml

DEFAULTS = """\
graph: mygraph
resources:
  file:
  - &file
    name: f1
    path: /tmp/mgmt/f1
    content: |
      i am f1
    mode: '0600'
    meta: &meta
      retry: 2
      delay: 100
    state: exists
  - <<: *file
    name: f2
    path: /tmp/mgmt/f2
    meta:
      <<: *meta
      delay: 5
  - <<: [{content: "first\\n"}, *file]
    name: f3
    path: /tmp/mgmt/f3
"""


def test_merge_keys_fill_in_what_a_resource_does_not_set():
    graph = parse_graph(DEFAULTS, "g.yaml")
    f1, f2, f3 = (graph.resources[("file", n)] for n in ("f1", "f2", "f3"))
    assert f2.params["content"] == "i am f1\n" and f2.params["mode"] == "0600"
    assert f2.params["path"] == "/tmp/mgmt/f2"  # its own key wins
    assert (f2.meta.retry, f2.meta.delay) == (2, 5)
    assert f3.params["content"] == "first\n"  # the first mapping of the list wins
    assert f3.params["mode"] == "0600" and f3.meta.retry == 2
    assert f1.params["path"] == "/tmp/mgmt/f1"


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# PyYAML as a second reader. Not for DEFAULTS: of a list of mappings, PyYAML 6
# sometimes lets a later one win (f3's content), where YAML's merge key and
# mgmt's yaml.v2 ("earlier nodes take precedence") let the first.
MERGES = [
    "a: &a {x: 1, y: 2}\nb: {y: 3, <<: *a}\n",
    "a: &a {x: 1, y: 2}\nc: &c {y: 9, z: 9}\nb:\n  <<: [*c, *a]\n  z: 0\n",
    "a: &a {x: 1, n: &n {p: 1}}\nb:\n  <<: *a\n  n: {<<: *n, q: 2}\n",
    "a: &a\n  <<: {k: 1}\n  j: 2\nb: {<<: *a, j: 3}\n",
    "l: [{<<: {a: 1}, b: 2}]\n",
]


@pytest.mark.parametrize("text", MERGES)
@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_merges_read_as_yaml_reads_them(monkeypatch, text, loader):
    if loader == "python":
        from mgmt.graph import yamlload

        monkeypatch.setattr(yamlload, "_Loader", yaml.SafeLoader)
    assert _plain(load_yaml(text)) == yaml.safe_load(text)


def test_a_merged_key_keeps_the_line_it_was_written_on():
    merged = load_yaml(DEFAULTS)["resources"]["file"][1]
    assert merged.line_of("mode") == 9
    assert merged.line_of("path") == 16


@pytest.mark.parametrize(
    "text",
    [
        "\ufeffgraph: g\r\nresources:\r\n  file:\r\n  - name: /tmp/a\r\n"
        "    content: |\r\n      one\r\n      two\r\n",
        "graph: g\rresources:\r  file:\r  - name: /tmp/a\r    content: |\r      one\r      two\r",
    ],
    ids=["BOM and CRLF", "CR only"],
)
def test_windows_line_ends_and_a_bom_read_as_plain_text(text):
    """A block scalar's line breaks are YAML's \\n whatever the file used, as mgmt reads them."""
    graph = parse_graph(text, "g.yaml")
    assert graph.resources[("file", "/tmp/a")].params["content"] == "one\ntwo\n"
