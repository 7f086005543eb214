"""Graphs written as mgmt's own docs and examples write them (its yamlgraph reader,
Go's yaml.v2): what mgmt reads must be read the same here, or refused naming why.

What mgmt takes and this reader refused: YAML merge keys (``<<: *defaults``), an
edge's or a collect's kind in another case (``kind: File``, mgmt's own spelling
in its logs), a noop's ``comment``, and an edge's ``notify:`` where this engine
does what it asks. Refusals are in graph_input_cases.json.
"""

from __future__ import annotations

import time

import pytest
import yaml

from mgmt.errors import GraphError
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


GRAPH = """\
graph: g
resources:
  noop:
  - name: join
    comment: where the two branches meet
  file:
  - name: /tmp/conf
    content: "v1\\n"
  exec:
  - name: reload
    cmd: 'true'
  - name: after
    cmd: 'true'
edges:
- name: e1
  from: {kind: File, name: /tmp/conf}
  to: {kind: Exec, name: reload}
  notify: true
- name: e2
  from: {kind: exec, name: reload}
  to: {kind: NOOP, name: join}
  notify: true
- name: e3
  from: {kind: noop, name: join}
  to: {kind: exec, name: after}
collect:
- kind: File
  pattern: /tmp/in/
"""


def test_an_mgmt_graph_with_kinds_in_any_case_comments_and_notify_loads():
    graph = parse_graph(GRAPH, "g.yaml")
    assert graph.resources[("noop", "join")].params == {"comment": "where the two branches meet"}
    pairs = [(e.from_, e.to) for e in graph.edges]
    assert pairs == [
        (("file", "/tmp/conf"), ("exec", "reload")),
        (("exec", "reload"), ("noop", "join")),
        (("noop", "join"), ("exec", "after")),
    ]
    assert [(c.kind, c.pattern) for c in graph.collect] == [("file", "/tmp/in/")]


def test_a_collect_kind_given_twice_in_two_cases_is_still_twice():
    text = "graph: g\ncollect:\n- kind: file\n  pattern: /a/\n- kind: File\n  pattern: /b/\n"
    with pytest.raises(GraphError, match="collect: file is collected twice") as caught:
        parse_graph(text, "g.yaml")
    assert caught.value.line == 5


def test_a_long_cycle_is_named_by_its_ends_on_a_short_line():
    """A chain of 10,000 resources closed by one edge was a 150 KB error line."""
    count = 10000
    resources = "".join(f"  - name: n{i}\n" for i in range(count))
    edges = "".join(
        f"- {{name: e{i}, from: {{kind: noop, name: n{i}}}, "
        f"to: {{kind: noop, name: n{(i + 1) % count}}}}}\n"
        for i in range(count)
    )
    text = f"graph: g\nresources:\n  noop:\n{resources}edges:\n{edges}"
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "g.yaml")
    message = caught.value.message
    assert len(message) < 400, message
    assert message.startswith("dependency cycle: noop[n0] -> noop[n1] -> ")
    assert "-> (9989 more) ->" in message
    assert message.endswith(" -> noop[n9999] -> noop[n0]")
    assert caught.value.line == count + 5  # the first edge of the cycle


def test_a_long_cycle_is_refused_about_as_fast_as_the_graph_is_read():
    """The lines of the cycle's edges were found with set(steps) made again for
    every edge: 10,000 edges in one cycle took 20 s to refuse (80 s at 20,000),
    reading the same graph without its closing edge 1 s."""
    count = 10000
    resources = "".join(f"  - name: n{i}\n" for i in range(count))
    edges = "".join(
        f"- {{name: e{i}, from: {{kind: noop, name: n{i}}}, to: {{kind: noop, name: n{i + 1}}}}}\n"
        for i in range(count - 1)
    )
    text = f"graph: g\nresources:\n  noop:\n{resources}edges:\n{edges}"
    start = time.perf_counter()
    parse_graph(text, "g.yaml")
    chain = time.perf_counter() - start
    last = f"n{count - 1}"
    closing = (
        f"- {{name: back, from: {{kind: noop, name: {last}}}, to: {{kind: noop, name: n0}}}}\n"
    )
    start = time.perf_counter()
    with pytest.raises(GraphError, match="dependency cycle"):
        parse_graph(text + closing, "g.yaml")
    cycle = time.perf_counter() - start
    assert cycle < 5 * chain + 1, (cycle, chain)  # measured together: load cancels out


def test_a_short_cycle_is_named_in_full():
    text = (
        "graph: g\nresources:\n  noop:\n  - name: a\n  - name: b\nedges:\n"
        "- {name: x, from: {kind: noop, name: a}, to: {kind: noop, name: b}}\n"
        "- {name: y, from: {kind: noop, name: b}, to: {kind: noop, name: a}}\n"
    )
    with pytest.raises(GraphError, match=r"dependency cycle: noop\[a\] -> noop\[b\] -> noop\[a\]$"):
        parse_graph(text, "g.yaml")


def test_a_cycle_through_an_autoedge_says_which_step_is_automatic_and_how_to_drop_it():
    """The file showed one edge, folder file -> its folder: the cycle's other step
    (a folder before its files) came from nowhere the user could see."""
    edge = "- {name: e, from: {kind: file, name: /srv/d/f}, to: {kind: file, name: /srv/d/}}\n"
    text = (
        "graph: g\nresources:\n  file:\n  - {name: /srv/d/, state: exists}\n"
        "  - {name: /srv/d/f, content: x}\nedges:\n" + edge
    )
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "g.yaml")
    assert caught.value.message == (
        "dependency cycle: file[/srv/d/] -> file[/srv/d/f] -> file[/srv/d/]; "
        "file[/srv/d/] -> file[/srv/d/f] is an automatic edge: "
        "meta: {autoedge: false} on file[/srv/d/f] drops it"
    )
    # As it says: the same graph with that meta has no cycle.
    dropped = text.replace("content: x}", "content: x, meta: {autoedge: false}}")
    assert parse_graph(dropped, "g.yaml").edges


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


@pytest.mark.parametrize(
    "tail", ["---\n", "---\n# the end\n", "...\n---\n...\n", "---\n---\n"], ids=repr
)
def test_empty_documents_after_the_graph_are_nothing_lost(tail):
    """A closing ``---`` was 'a second document'; mgmt reads the first and ignores
    the rest, and an empty one holds nothing: only one with something in it is refused."""
    graph = parse_graph("---\ngraph: g\nresources:\n  noop:\n  - name: a\n" + tail, "g.yaml")
    assert list(graph.resources) == [("noop", "a")]


AS_WRITTEN = """\
graph: 2024
comment: 2024-01-01
resources:
  file:
  - name: /tmp/a
    mode: 0644
    content: 1.10
    owner: 0
  - name: /tmp/b
    mode: 755
    recurse: yes
    state: absent
  noop:
  - name: yes
  exec:
  - name: e
    cmd: true
    ifcmd: false
    timeout: 010
  pkg:
  - name: p
    state: 1.2
edges:
- name: 1
  from: {kind: noop, name: yes}
  to: {kind: exec, name: e}
"""


def test_a_plain_scalar_in_a_text_field_is_the_text_written():
    """As mgmt (Go's yaml.v2) reads it; YAML alone read 420, true, 1.1, a date."""
    graph = parse_graph(AS_WRITTEN, "g.yaml")
    assert (graph.name, graph.comment) == ("2024", "2024-01-01")
    a, b = graph.resources[("file", "/tmp/a")], graph.resources[("file", "/tmp/b")]
    assert (a.params["mode"], a.params["content"], a.params["owner"]) == ("0644", "1.10", "0")
    assert b.params["mode"] == "755" and b.params["recurse"] is True  # a bool field keeps it
    assert ("noop", "yes") in graph.resources
    e = graph.resources[("exec", "e")]
    assert (e.params["cmd"], e.params["ifcmd"], e.params["timeout"]) == ("true", "false", 8)
    assert graph.resources[("pkg", "p")].params["state"] == "1.2"
    assert [(x.from_, x.to, x.name) for x in graph.edges] == [(("noop", "yes"), ("exec", "e"), "1")]


def test_a_plain_mac_address_is_the_text_written_not_a_base_60_number():
    """README: a MAC may be written plain; YAML 1.1 alone reads this one as 41135040007."""
    text = (
        "graph: g\nresources:\n  http:server:\n  - name: s\n  http:server:file:\n"
        "  - {name: f, server: s, content: x, mac: 52:54:00:00:00:07}\n"
    )
    assert isinstance(yaml.safe_load("mac: 52:54:00:00:00:07")["mac"], int)
    graph = parse_graph(text, "g.yaml")
    assert graph.resources[("http:server:file", "f")].params["mac"] == "52:54:00:00:00:07"


def test_a_scalar_tagged_or_quoted_is_what_it_says():
    text = "graph: g\nresources:\n  file:\n  - name: /tmp/a\n    mode: !!int 0644\n"
    with pytest.raises(GraphError, match=r"mode: 420 is a number, not the octal digits"):
        parse_graph(text, "g.yaml")
    text = "graph: g\nresources:\n  file:\n  - &f\n    name: /tmp/a\n    mode: &m 0640\n"
    text += "  - name: /tmp/b\n    mode: *m\n  - <<: *f\n    name: /tmp/c\n"
    graph = parse_graph(text, "g.yaml")
    modes = [graph.resources[("file", f"/tmp/{n}")].params["mode"] for n in "abc"]
    assert modes == ["0640", "0640", "0640"]  # through an alias and a merge too


def test_a_graph_of_the_most_resources_each_merging_its_defaults_loads():
    """With merge keys, one alias per resource is how a large graph is written: at
    12,000 such resources the alias bound (100,000 values) refused it."""
    from mgmt.graph.limits import MAX_RESOURCES

    head = (
        "graph: g\nresources:\n  file:\n  - &d\n    name: /srv/f0\n    content: x\n"
        "    mode: 0644\n    owner: root\n    group: root\n    meta: {retry: 2, delay: 100}\n"
    )
    text = head + "".join(f"  - <<: *d\n    name: /srv/f{i}\n" for i in range(1, MAX_RESOURCES))
    graph = parse_graph(text, "g.yaml")
    assert len(graph.resources) == MAX_RESOURCES
    last = graph.resources[("file", f"/srv/f{MAX_RESOURCES - 1}")]
    assert (last.params["mode"], last.meta.retry) == ("0644", 2)
