"""Bad values in a graph are refused when it is read: exit 2, ``file:line: message``.

The parser cases are a table (graph_input_cases.json): values PyYAML resolves
but cannot build (dates, tagged scalars, 5000-digit numbers), lone surrogates
in JSON, numbers outside a field's range, two resources managing one thing,
names and top-level values that used to be accepted silently, and type errors
in the YAML's words. A few go through the real CLI and through a live reload.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mgmt.errors import GraphError
from mgmt.graph import parse_graph

CASES = json.loads((Path(__file__).parent / "graph_input_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_refused_with_file_line_and_message(case):
    with pytest.raises(GraphError) as caught:
        parse_graph(case["text"], "g.yaml")
    error = caught.value
    assert case["message"] in error.message, str(error)
    assert error.line == case["line"], str(error)
    assert str(error).startswith(f"g.yaml:{case['line']}: ")
    assert "\n" not in str(error)
    assert "Loc" not in str(error)  # the reader's classes are no words for a user


@pytest.fixture
def pure_python_yaml(monkeypatch):
    """PyYAML without libyaml, as on a host whose PyYAML was built without it."""
    import yaml

    from mgmt.graph import yamlload

    monkeypatch.setattr(yamlload, "_Loader", yaml.SafeLoader)


YAML_CASES = [c for c in CASES if not c["text"].startswith("{")]


@pytest.mark.parametrize("case", YAML_CASES, ids=[c["id"] for c in YAML_CASES])
def test_the_same_without_libyaml(pure_python_yaml, case):
    with pytest.raises(GraphError) as caught:
        parse_graph(case["text"], "g.yaml")
    assert case["message"] in caught.value.message
    assert caught.value.line == case["line"], str(caught.value)


GOOD = """graph: g
comment: "2020-13-45"
resources:
  timer:
  - name: t
    interval: 31536000
  exec:
  - name: e
    cmd: "true"
    timeout: 0
    pollint: 31536000
    meta: {retry: -1, delay: 31536000000}
  tftp:server:
  - {name: s, timeout: 255, retries: 0}
  http:server:
  - {name: h, max_ranges: 0}
  file:
  - {name: "/tmp/d/"}
  - {name: "/tmp/d/x", content: "\\U0001F600"}
  - {name: "@@e", path: "/tmp/d/x", content: exported}
  noop:
  - {name: "é b"}
edges:
- {name: e, from: {kind: exec, name: e}, to: {kind: noop, name: "é b"}}
"""


def test_values_at_the_bounds_and_near_misses_still_load():
    graph = parse_graph(GOOD, "g.yaml")
    assert graph.comment == "2020-13-45"
    assert graph.resources[("timer", "t")].params["interval"] == 31536000
    assert graph.resources[("exec", "e")].meta.retry == -1
    # A directory and a file in it, and an export of the same path: no clash.
    assert graph.resources[("file", "/tmp/d/x")].params["content"] == "\U0001f600"
    assert graph.resources[("file", "e")].exported


def test_hostname_resources_that_set_different_names_do_not_clash():
    text = (
        "graph: g\nresources:\n  hostname:\n"
        "  - {name: static, static_hostname: web1}\n"
        "  - {name: pretty, pretty_hostname: Web server one}\n"
    )
    assert len(parse_graph(text, "g.yaml").resources) == 2


def test_null_or_absent_resources_are_no_resources():
    for text in ("graph: g\n", "graph: g\nresources:\n", "graph: g\nresources: {}\n"):
        assert parse_graph(text, "g.yaml").resources == {}


def test_a_json_graph_with_a_surrogate_pair_loads():
    text = json.dumps({"graph": "g", "comment": "\U0001f600 \\ud800"})  # escaped as a pair
    assert "\\ud83d\\ude00" in text
    assert parse_graph(text, "g.json").comment == "\U0001f600 \\ud800"


def _mgmt(tmp_path: Path, graph: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--no-server",
         "--tmp-prefix", "--converged-timeout", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


CLI_CASES = [
    ("date.yaml", "graph: g\ncomment: 2020-13-45\n", "date.yaml:2: cannot read '2020-13-45'"),
    ("digits.json", '{"graph": "g", "comment": ' + "1" * 5000 + "}", "digits.json:1: a number"),
    ("delay.yaml",
     "graph: g\nresources:\n  exec:\n  - name: e\n    cmd: 'false'\n"
     "    meta: {retry: 2, delay: 99999999999999999999999}\n",
     "delay.yaml:6: exec[e]: meta delay: 99999999999999999999999 is out of range"),
    # Refused here, not at run time as 'no such unit on this host' (exit 1).
    ("unit.yaml", "graph: g\nresources:\n  svc:\n  - state: running\n    name: mgmt-web;ls\n",
     "unit.yaml:5: svc[mgmt-web;ls]: name: 'mgmt-web;ls' is not a unit name: ';' is not allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "expected"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_the_real_cli_exits_2_with_one_line(tmp_path, name, text, expected):
    graph = tmp_path / name
    graph.write_text(text)
    result = _mgmt(tmp_path, graph)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(f"mgmt: error: {tmp_path}/{expected}")
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# Graphs the agent must refuse before it writes anything: (file name, its text with
# {out} for the folder its files would go to, what the error says).
REFUSED_BEFORE_ANY_WRITE = [
    ("g.json",
     '{{"graph": "g", "resources": {{"file": [\n'
     '{{"name": "r", "path": "{out}/\\udc80", "content": "x"}},\n'
     '{{"name": "s", "path": "{out}/js", "content": "\\ud800"}}]}}}}',
     ["g.json:2: a string holds a lone surrogate U+DC80", "(the value of 'path')"]),
    ("g.yaml",
     "graph: g\nresources:\n  file:\n"
     "  - {{name: a, path: {out}/fight, content: one}}\n"
     "  - {{name: b, path: {out}/fight, content: two}}\n",
     ["g.yaml:5: file[b] and file[a] (line 4) both manage file:{out}/fight"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "said"), REFUSED_BEFORE_ANY_WRITE, ids=["surrogate-path", "one-path-twice"]
)
def test_refused_before_any_write(tmp_path, name, text, said):
    out = tmp_path / "out"
    out.mkdir()
    graph = tmp_path / name
    graph.write_text(text.format(out=out))
    result = _mgmt(tmp_path, graph)
    assert result.returncode == 2, result.stderr
    for words in said:
        assert words.format(out=out) in result.stderr, result.stderr
    assert list(out.iterdir()) == []


def test_a_reload_with_a_bad_value_logs_one_line_and_keeps_the_graph(tmp_path, mgmt_log):
    from mgmt.engine.agent import Agent
    from mgmt.settings import Settings

    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\ncomment: 2020-13-45\n")
    agent = Agent(Settings(file=graph, no_server=True), world=None, state_dir=tmp_path / "state")
    assert agent._reload() is False
    logged = mgmt_log.getvalue()
    assert f"{graph}:2: cannot read '2020-13-45' as a date" in logged
    assert "keeping the last good graph" in logged
    assert "Traceback" not in logged and len(logged.strip().splitlines()) == 1


def test_json_refusals_need_no_pyyaml():
    # A remote agent reads its JSON graph with the standard library alone.
    code = """if True:
        import sys
        sys.modules["yaml"] = None  # any import of PyYAML fails
        from mgmt.errors import GraphError
        from mgmt.graph import parse_graph
        for text in ('{"graph": "g",\\n"comment": ' + "1" * 5000 + "}",
                     '{"graph": "g",\\n"comment": "\\\\udc80"}'):
            try:
                parse_graph(text, "g.json")
            except GraphError as err:
                print(err)
    """
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "g.json:2: a number has more than 100 digits; no field takes one",
        "g.json:2: a string holds a lone surrogate U+DC80, which is not valid Unicode text"
        " (the value of 'comment')",
    ]


def test_a_fifo_or_a_device_is_refused_without_waiting_for_a_writer(tmp_path):
    """Every reader of a graph file (--file, --remote, fab deploy, a reload) goes
    through read_graph_text: opened without O_NONBLOCK, a FIFO waited for ever."""
    from mgmt.graph.parse import read_graph_text

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        errors = []

        def read(path=path, errors=errors) -> None:
            try:
                read_graph_text(path)
            except GraphError as error:
                errors.append(error)

        reader = threading.Thread(target=read, daemon=True)  # a hang fails, not blocks, the test
        reader.start()
        reader.join(10)
        assert [e.message for e in errors] == ["not a regular file; expected a graph file"]


def test_a_directory_is_refused_as_any_other_non_file(tmp_path):
    """A running agent's graph file replaced by a directory: a GraphError, as at start."""
    from mgmt.graph.parse import read_graph_text

    with pytest.raises(GraphError) as caught:
        read_graph_text(tmp_path)
    assert caught.value.message == "not a regular file; expected a graph file"


def test_a_graph_file_is_read_whole_up_to_the_bound_and_refused_past_it(tmp_path):
    """read_graph_text reads what the file holds and a byte more (not the bound's
    4 MiB buffer each time): a file at the bound is read whole, one byte more is refused."""
    from mgmt.graph.limits import MAX_BYTES
    from mgmt.graph.parse import read_graph_text

    at_bound = tmp_path / "at.yaml"
    at_bound.write_bytes(b"x" * MAX_BYTES)
    assert len(read_graph_text(at_bound)) == MAX_BYTES
    past = tmp_path / "past.yaml"
    past.write_bytes(b"x" * (MAX_BYTES + 1))
    with pytest.raises(GraphError) as caught:
        read_graph_text(past)
    assert caught.value.message.startswith("the graph is larger than")


def test_a_graph_file_that_grew_since_its_size_was_taken_is_read_whole(tmp_path, monkeypatch):
    """The size read first is a hint: a file written to meanwhile (or a /proc file,
    whose size says 0) is read on to the bound, and refused past it."""
    from mgmt.graph import parse
    from mgmt.graph.limits import MAX_BYTES

    text = "graph: g\n" + "# more\n" * 1000
    grown = tmp_path / "grown.yaml"
    grown.write_text(text)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"x" * (MAX_BYTES + 10))
    real_fstat = os.fstat

    def shrunk(fd):  # as if taken before the writes
        status = list(real_fstat(fd))
        status[6] = 3  # st_size
        return os.stat_result(status)

    monkeypatch.setattr(parse.os, "fstat", shrunk)
    assert parse.read_graph_text(grown) == text
    with pytest.raises(GraphError):
        parse.read_graph_text(huge)
    monkeypatch.undo()
    status = parse.read_graph_text("/proc/self/status")
    assert os.stat("/proc/self/status").st_size == 0 and "\nPid:" in status
