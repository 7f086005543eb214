"""Every removal of a directory tree by the file kind goes through one guard.

A tree goes three ways: state: absent with recurse, force replacing a directory
by a file, and a tree copy with force. "/" is refused always, a top-level system
directory or the home unless recurse and force are both set; at load on the
path as named and resolved, and again right before the removal on where the
path leads then. Nothing outside the test's temp dir is ever applied: system
paths are only checked at load, and the apply-time check uses the home
directory, set to a folder of the temp dir.
"""

from __future__ import annotations

import os

import pytest
from helpers import make_init

from mgmt.resources.base import FieldError, ResourceError, fill_params
from mgmt.resources.file import FileRes


def make(**params) -> FileRes:
    return FileRes("f", fill_params(FileRes, params))


@pytest.mark.parametrize("path", ["/..", "/.", "/etc/..", "/usr/lib/../.."])
@pytest.mark.parametrize(
    "extra",
    [
        {"content": "", "force": True},
        {"content": "", "force": True, "recurse": True},
        {"source": "/nonexistent-src", "recurse": True, "force": True},
    ],
)
def test_a_path_leading_to_root_is_refused_whatever_the_fields(path, extra):
    with pytest.raises(FieldError, match="refusing to remove /: never allowed") as caught:
        make(path=path, **extra)
    assert caught.value.field == "path"


@pytest.mark.parametrize("path", ["/etc", "/root", "/usr", "/var", "/lib"])
def test_force_alone_never_replaces_a_system_directory_by_a_file(path):
    with pytest.raises(FieldError, match="set recurse: true and force: true") as caught:
        make(path=path, content="", force=True)
    assert caught.value.field == "recurse"
    make(path=path, content="", force=True, recurse=True)  # the opt-in: validated, never applied
    make(path=path + "/motd", content="", force=True)  # below one: an ordinary path


def test_a_tree_copy_with_force_onto_a_system_directory_needs_the_opt_in():
    with pytest.raises(FieldError, match="refusing to remove /etc"):
        make(path="/etc/", source="/nonexistent-src", force=True)
    make(path="/etc/", source="/nonexistent-src")  # without force it removes nothing
    make(path="/etc/", force=True)  # force without a source only replaces a file or a link


def test_the_home_directory_is_refused_through_a_link(monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(FieldError, match=f"which is {home}"):
        make(path=str(tmp_path / "link" / "home"), content="", force=True)


def test_a_collected_resource_gets_the_same_guard():
    # What engine.exchange does with another host's file under a collect pattern.
    for pattern, exported in (("/", "/anywhere/etc"), ("/etc/", "/x/..")):
        with pytest.raises(FieldError):
            params = FileRes.collected_params(
                "x", {"path": exported, "content": "", "force": True}, pattern
            )
            FileRes("x", fill_params(FileRes, params))


@pytest.mark.parametrize("opt_in", [{}, {"recurse": True}])
def test_a_parent_swapped_for_a_link_is_seen_at_apply_time(watcher, tmp_path, monkeypatch, opt_in):
    home = tmp_path / "home"
    (home / "keep").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    parent = tmp_path / "p"
    (parent / "home" / "sub").mkdir(parents=True)
    # Fine at load; recurse and force opt in for the path as named, not for where a
    # link swapped in later leads.
    res = make(path=str(parent / "home"), content="x", force=True, **opt_in)
    res.setup(make_init(watcher, tmp_path))
    os.rename(parent, tmp_path / "p.old")
    parent.symlink_to(tmp_path)  # p/home is now the home directory
    with pytest.raises(ResourceError, match=f"refusing to remove {parent}/home .which is {home}"):
        res.check_apply(True)
    assert (home / "keep").is_dir()


def test_force_removes_a_tree_without_following_the_links_in_it(watcher, tmp_path):
    victim = tmp_path / "victim"
    (victim / "deep").mkdir(parents=True)
    target = tmp_path / "d"
    (target / "a" / "b").mkdir(parents=True)
    (target / "a" / "b" / "f").write_text("x")
    (target / "a" / "link").symlink_to(victim)
    (target / "flink").symlink_to(victim / "deep")
    res = make(path=str(target), content="new", force=True)
    res.setup(make_init(watcher, tmp_path))
    assert res.check_apply(True) is False
    assert target.read_text() == "new"
    assert (victim / "deep").is_dir()


@pytest.mark.parametrize("path", ["/..", "/etc/..", "/etc"])
def test_the_agent_refuses_such_a_graph_at_load(tmp_path, path):
    from helpers import run_mgmt

    graph = tmp_path / "g.yaml"
    graph.write_text(
        f'graph: g\nresources:\n  file:\n    - name: r\n      path: "{path}"\n'
        '      content: ""\n      force: true\n'
    )
    # --noop as well: should the check ever go, this run still removes nothing.
    args = ["--file", str(graph), "--no-server", "--tmp-prefix", "--noop"]
    done = run_mgmt([*args, "--converged-timeout", "1"])
    assert done.returncode == 2, done.stderr
    field = "path" if path != "/etc" else "recurse"
    assert f"g.yaml:{5 if field == 'path' else 4}: file[r]: {field}: refusing to remove" in (
        done.stderr
    )
    assert "would replace" not in done.stderr and "Traceback" not in done.stderr
