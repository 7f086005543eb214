"""--noop diffs and the --json document, checked field by field on a private host.

The graph rewrites and removes files, so the agent runs where / is read-only
and only the test's temp dir can change (a PrivateHost).
"""

from __future__ import annotations

import grp
import json
import os
import pwd

import pytest
from private_host import PrivateHost


@pytest.fixture
def host(tmp_path):
    h = PrivateHost(tmp_path)
    yield h
    h.close()


def write_graph(tmp_path) -> str:
    d = tmp_path / "w"
    graph = tmp_path / "g.yaml"
    graph.write_text(
        f"""\
graph: report
resources:
  file:
  - name: {d}/motd
    content: "hello\\nnew line\\n"
    mode: "0640"
  - name: {d}/same
    content: "same\\n"
  - name: {d}/gone
    state: absent
  - name: {d}/blob
    content: "text now\\n"
  - name: {d}/fresh
    content: "x"
  exec:
  - name: broken
    cmd: /nonexistent/tool
"""
    )
    d.mkdir()
    (d / "motd").write_text("hello\nold line\n")
    (d / "motd").chmod(0o600)
    (d / "same").write_text("same\n")
    (d / "gone").write_text("bye")
    (d / "blob").write_bytes(b"\x00\x01binary")
    return str(graph)


def run(host, tmp_path, graph, *extra) -> tuple:
    args = ["--file", graph, "--no-server", "--prefix", str(tmp_path / "state")]
    proc = host.agent([*args, "--converged-timeout", "0", "--json", *extra], tmp_path / "log")
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode()


def by_name(doc) -> dict:
    return {(r["kind"], os.path.basename(r["name"])): r for r in doc["resources"]}


def test_noop_json_names_each_difference_and_changes_nothing(host, tmp_path):
    graph = write_graph(tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()}
    code, out = run(host, tmp_path, graph, "--noop")
    assert code == 0  # under noop the exec runs nothing, so it cannot fail
    doc = json.loads(out)  # the whole of stdout is the one document
    assert {p.name: p.read_bytes() for p in (tmp_path / "w").iterdir()} == before
    assert (doc["version"], doc["noop"], doc["status"]) == (1, True, "ok")
    assert doc["converged"] is True
    rows = by_name(doc)
    motd = rows[("file", "motd")]
    assert motd["result"] == "would-change"
    content, mode = motd["changes"]
    assert (content["field"], content["applied"]) == ("content", False)
    assert "-old line\n+new line\n" in content["diff"]
    assert content["diff"].startswith(f"--- {tmp_path}/w/motd\n")
    assert (mode["field"], mode["wanted"], mode["actual"]) == ("mode", "0640", "0600")
    assert rows[("file", "same")] == {
        "kind": "file", "name": f"{tmp_path}/w/same", "result": "unchanged",
        "changes": [], "errors": [],
    }  # fmt: skip
    gone = rows[("file", "gone")]["changes"][0]
    assert (gone["field"], gone["wanted"], gone["actual"]) == ("state", "absent", "exists")
    assert rows[("file", "blob")]["changes"][0]["diff"].startswith("Binary files")
    fresh = rows[("file", "fresh")]["changes"][0]
    assert (fresh["field"], fresh["wanted"], fresh["actual"]) == ("state", "exists", "absent")
    assert rows[("exec", "broken")]["result"] == "would-change"
    # The diff is in the log too (stderr), for a person reading --noop without --json.
    assert "-old line\n" in (tmp_path / "log").read_text()
    assert doc["summary"] == {
        "unchanged": 1, "changed": 0, "would-change": 5, "failed": 0, "pending": 0,
    }  # fmt: skip


def test_json_after_applying_reports_changes_as_applied(host, tmp_path):
    graph = write_graph(tmp_path)
    code, out = run(host, tmp_path, graph)
    assert code == 1
    doc = json.loads(out)
    assert (doc["noop"], doc["status"]) == (False, "failed")
    rows = by_name(doc)
    broken = rows[("exec", "broken")]
    assert broken["result"] == "failed" and "cannot run" in broken["errors"][-1]
    assert (tmp_path / "w" / "motd").read_text() == "hello\nnew line\n"
    assert not (tmp_path / "w" / "gone").exists()
    motd = rows[("file", "motd")]
    assert motd["result"] == "changed"
    assert [c["field"] for c in motd["changes"]] == ["content"]  # a new file, the mode with it
    assert motd["changes"][0]["applied"] is True
    assert rows[("file", "same")]["result"] == "unchanged"
    # Log lines never reach stdout: it parses as one document.
    assert out.count("\n") == 1


def test_without_json_stdout_stays_empty(host, tmp_path):
    graph = write_graph(tmp_path)
    args = ["--file", graph, "--no-server", "--prefix", str(tmp_path / "state")]
    proc = host.agent([*args, "--converged-timeout", "0", "--noop"], tmp_path / "log")
    out, _ = proc.communicate(timeout=60)
    assert out == b""


def test_noop_json_shows_an_owner_given_by_name_as_a_name(host, tmp_path):
    """The wanted owner was shown as the uid the name has on the host (65534),
    not as the graph said it."""
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    target, other = tmp_path / "owned", tmp_path / "owned-too"
    target.write_text("x\n")
    other.write_text("x\n")
    here = os.stat(target)
    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: owners\nresources:\n  file:\n"
        f"  - {{name: named, path: {target}, owner: nobody, group: {group}}}\n"
        f"  - {{name: ids, path: {other}, owner: {nobody.pw_uid}, group: '{nobody.pw_gid}'}}\n"
    )
    code, out = run(host, tmp_path, str(graph), "--noop")
    assert code == 0
    rows = by_name(json.loads(out))
    shown = [(c["field"], c["wanted"], c["actual"]) for c in rows[("file", "named")]["changes"]]
    assert shown == [
        ("owner", "nobody", pwd.getpwuid(here.st_uid).pw_name),
        ("group", group, grp.getgrgid(here.st_gid).gr_name),
    ]
    shown = [(c["field"], c["wanted"], c["actual"]) for c in rows[("file", "ids")]["changes"]]
    assert shown == [("owner", nobody.pw_uid, here.st_uid), ("group", nobody.pw_gid, here.st_gid)]
    assert os.stat(target).st_uid == os.stat(other).st_uid == here.st_uid  # noop: untouched
