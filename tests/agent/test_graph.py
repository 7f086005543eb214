"""Graph files: the model, and every kind of mistake reported at its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mgmt.errors import GraphError
from mgmt.graph import diff_resources, load_graph, parse_graph
from mgmt.resources.base import Meta

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_write_ups_example_graph_loads():
    graph = load_graph(EXAMPLES / "remote2a.yaml")
    assert graph.name == "mygraph"
    assert graph.remote == "ssh://root@10.254.0.2:22"
    assert set(graph.local()) == {("file", "file1a")}
    exported = graph.exported()[("file", "file2a")]
    assert exported.params["content"] == "i am file2a, exported from host a\n"
    assert exported.params["path"] == "/tmp/file2a"
    assert [(c.kind, c.pattern) for c in graph.collect] == [("file", "/tmp/")]


@pytest.mark.parametrize(
    ("lines", "sudo", "python"),
    [
        ("", None, None),
        ("sudo: true\n", True, None),
        (
            "sudo: false\npython: /usr/libexec/platform-python\n",
            False,
            "/usr/libexec/platform-python",
        ),
        (
            "sudo: deploy\npython: ~/.pyenv/versions/3.9.18/bin/python3\n",
            "deploy",
            "~/.pyenv/versions/3.9.18/bin/python3",
        ),
    ],
)
def test_sudo_and_python_keys_sit_beside_remote(lines, sudo, python):
    graph = parse_graph("graph: g\nremote: h\n" + lines)
    assert (graph.remote, graph.sudo, graph.python) == ("h", sudo, python)


def test_defaults_meta_and_edges():
    graph = parse_graph(
        """
graph: g
resources:
  exec:
  - name: first
    cmd: "true"
    meta: {retry: 3, delay: 50, noop: true}
  - name: second
    cmd: "true"
edges:
- name: e1
  from: {kind: exec, name: first}
  to: {kind: exec, name: second}
"""
    )
    first = graph.resources[("exec", "first")]
    assert first.meta == Meta(retry=3, delay=50, noop=True)
    assert first.params["timeout"] == 0 and first.params["shell"] == ""
    assert graph.edges[0].from_ == ("exec", "first") and graph.edges[0].to == ("exec", "second")


BAD = [
    ("graph: g\nbogus: 1\n", 2, "unknown key 'bogus'"),
    ("resources: {}\n", 1, "needs 'graph'"),
    ("graph: g\nresources:\n  frobnicate:\n  - name: x\n", 3, "unknown resource kind 'frobnicate'"),
    ("graph: g\nresources:\n  exec:\n  - name: x\n", 4, "cmd: required field missing"),
    (
        "graph: g\nresources:\n  exec:\n  - name: x\n    cmd: ls\n    colour: red\n",
        6,
        "unknown field",
    ),
    ("graph: g\nresources:\n  file:\n  - name: /x\n    mode: 99z\n", 5, "octal mode"),
    # A plain 0644 is the text '0644' (as mgmt reads it); a number asked for is no mode.
    ("graph: g\nresources:\n  file:\n  - name: /x\n    mode: !!int 0644\n", 5, "420 is a number"),
    ("graph: g\nresources:\n  file:\n  - name: /x\n    mode: 0999\n", 5, "'0999' is not an octal"),
    ("graph: g\nresources:\n  file:\n  - name: /x\n    state: gone\n", 5, "not one of"),
    (
        "graph: g\nresources:\n  exec:\n  - name: x\n    cmd: ls\n    timeout: soon\n",
        6,
        "expected int",
    ),
    (
        "graph: g\nresources:\n  noop:\n  - name: x\n    meta: {retry: yes}\n",
        5,
        "retry must be int",
    ),
    ("graph: g\nresources:\n  noop:\n  - name: x\n  - name: x\n", 5, "duplicate resource noop[x]"),
    ("graph: g\nresources:\n  file:\n  - name: relative/path\n", 4, "must be an absolute path"),
    ("graph: g\nresources:\n  file:\n  - name: /x\n    basename: ../y\n", 5, "single name"),
    ("graph: g\nresources:\n  file:\n  - name: /x\n    basename: ..\n", 5, "basename: '..'"),
    ("graph: g\nresources:\n  file:\n  - name: /\n    state: absent\n", 4, "refusing to remove /"),
    (
        "graph: g\nresources:\n  noop:\n  - {name: a}\n"
        "edges:\n- name: e\n  from: {kind: noop, name: a}\n  to: {kind: noop, name: zz}\n",
        8,
        "missing resource noop[zz]",
    ),
    (
        "graph: g\nresources:\n  noop: [{name: a}]\ncollect:\n- kind: nope\n",
        5,
        "unknown resource kind",
    ),
    ("graph: g\nresources: [\n", 3, "YAML syntax error"),
    ("graph: g\ngraph: h\n", 2, "duplicate key 'graph'"),
    ("graph: g\nremote: h\nsudo: 3\n", 3, "'sudo' must be true, false or a user name"),
    ("graph: g\nsudo: ' root'\n", 2, "'sudo' must be true, false or a user name"),
    ("graph: g\npython: [python3]\n", 2, "'python' must be a string"),
    ("", 1, "empty"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[b[2] for b in BAD])
def test_bad_graphs_name_file_and_line(text, line, message):
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "bad.yaml")
    assert caught.value.line == line, str(caught.value)
    assert message in caught.value.message
    assert str(caught.value).startswith(f"bad.yaml:{line}: ")


def test_a_cycle_is_reported_with_its_path_and_an_edge_line():
    text = """graph: g
resources:
  noop:
  - name: a
  - name: b
  - name: c
edges:
- name: ab
  from: {kind: noop, name: a}
  to: {kind: noop, name: b}
- name: bc
  from: {kind: noop, name: b}
  to: {kind: noop, name: c}
- name: ca
  from: {kind: noop, name: c}
  to: {kind: noop, name: a}
"""
    with pytest.raises(GraphError) as caught:
        parse_graph(text, "cycle.yaml")
    message = str(caught.value)
    assert message.startswith("cycle.yaml:8: dependency cycle: ")
    for key in ("noop[a]", "noop[b]", "noop[c]"):
        assert key in message


def test_autoedges_join_a_file_to_its_directory_and_can_close_a_cycle():
    text = """graph: g
resources:
  file:
  - name: dir
    path: /tmp/d/
  - name: inner
    path: /tmp/d/inner
edges:
- name: back
  from: {kind: file, name: inner}
  to: {kind: file, name: dir}
"""
    with pytest.raises(GraphError, match="dependency cycle"):
        parse_graph(text)
    relaxed = text.replace(
        "    path: /tmp/d/inner\n", "    path: /tmp/d/inner\n    meta: {autoedge: false}\n"
    )
    assert len(parse_graph(relaxed).resources) == 2


def test_diff_tells_added_changed_removed_unchanged():
    old = parse_graph(
        "graph: g\nresources:\n  noop: [{name: a}, {name: b}]\n  exec:\n  - {name: c, cmd: ls}\n"
    )
    new = parse_graph(
        "graph: g\nresources:\n  noop: [{name: a}, {name: d}]\n  exec:\n  - {name: c, cmd: pwd}\n"
    )
    diff = diff_resources(old.resources, new.resources)
    assert diff.added == [("noop", "d")]
    assert diff.changed == [("exec", "c")]
    assert diff.removed == [("noop", "b")]
    assert diff.unchanged == [("noop", "a")]
    assert diff.summary() == "added 1 (noop[d]), changed 1 (exec[c]), removed 1 (noop[b])"


def test_moving_a_resource_to_another_line_is_not_a_change():
    old = parse_graph("graph: g\nresources:\n  noop:\n  - name: a\n")
    new = parse_graph("graph: g\ncomment: moved\n\nresources:\n  noop:\n  - name: a\n")
    assert diff_resources(old.resources, new.resources).empty


def test_two_names_of_one_file_through_a_symlinked_folder_clash_on_the_host(tmp_path):
    """Parsed where it runs (the agent), a file is known by its folder's real path:
    the two resources wrote "one" and "two" for ever (10,000 writes in 8 s)."""
    from mgmt.engine.agent import read_and_parse

    (tmp_path / "f").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "f")
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: a, path: {tmp_path}/f/a.txt, content: one}}\n"
        f"  - {{name: b, path: {tmp_path}/link/a.txt, content: two}}\n"
    )
    with pytest.raises(GraphError) as refused:
        read_and_parse(str(graph))
    assert refused.value.line == 5
    said = str(refused.value)
    assert f"file[b] and file[a] (line 4) both manage file:{tmp_path}/f/a.txt" in said
    assert f"(file[b] as file:{tmp_path}/link/a.txt)" in said  # the name it was given
    parse_graph(graph.read_text(), str(graph))  # elsewhere (an initiator) it cannot tell


def test_a_file_added_to_a_copied_tree_is_fine_unless_the_source_holds_it_too(tmp_path):
    """A copy without force leaves files its source lacks alone: one added beside them
    is the usual pattern. One the source holds too would be written by both, which
    only the host can tell (the agent reads its graph there)."""
    from mgmt.engine.agent import read_and_parse

    source = tmp_path / "src"
    source.mkdir()
    (source / "shipped.conf").write_text("from the tree\n")
    graph = tmp_path / "g.yaml"

    def graph_with(inner: str, state: str = "") -> str:
        return (
            "graph: g\nresources:\n  file:\n"
            f"  - {{name: tree, path: {tmp_path}/dst/, source: {source}/, recurse: true}}\n"
            f"  - {{name: inner, path: {tmp_path}/dst/{inner}, content: mine{state}}}\n"
        )

    graph.write_text(graph_with("extra.conf"))
    read_and_parse(str(graph))  # added beside the copy: fine, here and elsewhere
    graph.write_text(graph_with("shipped.conf"))
    parse_graph(graph.read_text(), str(graph))  # elsewhere the source cannot be looked at
    with pytest.raises(GraphError, match=r"file\[inner\] and file\[tree\] .* both manage"):
        read_and_parse(str(graph))


def test_two_removals_one_inside_the_other_agree(tmp_path):
    text = (
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: old, path: {tmp_path}/old/, state: absent, recurse: true}}\n"
        f"  - {{name: older, path: {tmp_path}/old/sub/, state: absent, recurse: true}}\n"
    )
    parse_graph(text, "g.yaml", real_paths=True)


@pytest.mark.parametrize(
    "tree", ["state: absent, recurse: true", "source: SRC/src/, recurse: true, force: true"]
)
def test_a_tree_at_a_symlinked_folder_clashes_with_a_file_below_it_on_the_host(tmp_path, tree):
    """The tree was known by its name, the file by where the link leads: they never
    met, and the two wrote and removed the file for ever (22,000 lines in 15 s)."""
    from mgmt.engine.agent import read_and_parse

    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to("real")
    (tmp_path / "src").mkdir()
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: tree, path: {tmp_path}/alias/, {tree.replace('SRC', str(tmp_path))}}}\n"
        f"  - {{name: f, path: {tmp_path}/alias/extra, content: x}}\n"
    )
    with pytest.raises(GraphError, match=r"file\[f\] and file\[tree\] \(line 4\) both manage"):
        read_and_parse(str(graph))


def test_resources_that_only_want_a_path_to_exist_agree_with_a_copy(tmp_path):
    """A folder the copy makes too, or a path the forced copy removes anyway, is no
    fight: both were refused."""
    from mgmt.engine.agent import read_and_parse

    (tmp_path / "src" / "sub").mkdir(parents=True)
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: cp, path: {tmp_path}/dst/, source: {tmp_path}/src/, recurse: true,"
        " force: true}\n"
        f"  - {{name: subdir, path: {tmp_path}/dst/sub/}}\n"
        f"  - {{name: gone, path: {tmp_path}/dst/old.conf, state: absent}}\n"
    )
    read_and_parse(str(graph))


@pytest.mark.parametrize(
    ("path", "source", "extra", "said"),
    [
        ("dst/", "file.txt", "", "is not a directory, but path {tmp}/dst/ ends in /"),
        ("dst", "file.txt", "recurse: true", "is not a directory, but recurse: true"),
        ("dst", "folder", "mode: '0644'", "is a directory, but path {tmp}/dst is a file"),
        ("dst", "folder/", "", "is a directory, but path {tmp}/dst is a file"),
    ],
)
def test_a_source_of_the_wrong_type_is_refused_on_the_host(tmp_path, path, source, extra, said):
    """A tree copied from a file, or a file from a folder, failed at every check
    of the run (the folder already made), not when the graph was read."""
    from mgmt.engine.agent import read_and_parse

    (tmp_path / "file.txt").write_text("x\n")
    (tmp_path / "folder").mkdir()
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n  - name: copy\n"
        f"    path: {tmp_path}/{path}\n    source: {tmp_path}/{source}\n    {extra}\n"
    )
    parse_graph(graph.read_text(), str(graph))  # elsewhere the source cannot be looked at
    with pytest.raises(GraphError) as caught:
        read_and_parse(str(graph))
    assert caught.value.line == 6, str(caught.value)
    assert caught.value.message.startswith(f"file[copy]: source: {tmp_path}/{source}")
    assert said.format(tmp=tmp_path) in caught.value.message


def test_a_source_the_host_lacks_yet_or_of_the_right_type_is_fine(tmp_path):
    """Another resource (an exec, a package) may make the source during the run; an
    export is applied on other hosts, whose files these are not."""
    from mgmt.engine.agent import read_and_parse

    (tmp_path / "file.txt").write_text("x\n")
    (tmp_path / "folder").mkdir()
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: later, path: {tmp_path}/a/, source: {tmp_path}/made-later}}\n"
        f"  - {{name: tree, path: {tmp_path}/b/, source: {tmp_path}/folder}}\n"
        f"  - {{name: one, path: {tmp_path}/c, source: {tmp_path}/file.txt}}\n"
        f"  - {{name: gone, path: {tmp_path}/d, source: {tmp_path}/folder, state: absent}}\n"
        f'  - {{name: "@@out", path: {tmp_path}/e/, source: {tmp_path}/file.txt}}\n'
    )
    read_and_parse(str(graph))


def test_a_copy_runs_after_the_resource_that_makes_its_source():
    """A file copied from one another resource makes waits for it (as fragments do),
    instead of failing 'No such file' first and being fixed by the watch after."""
    from mgmt.graph.deps import dependencies

    graph = parse_graph(
        "graph: g\nresources:\n  file:\n"
        "  - {name: copy, path: /tmp/g/copy, source: /tmp/g/gen//s}\n"
        "  - {name: tree, path: /tmp/g/tree/, source: /tmp/g/gen/}\n"
        "  - {name: make, path: /tmp/g/gen/s, content: x}\n"
        "  - {name: folder, path: /tmp/g/gen/}\n"
    )
    parents = dependencies(graph.resources, graph.edges)
    assert ("file", "make") in parents[("file", "copy")]
    assert ("file", "folder") in parents[("file", "tree")]
