"""How the file kind reads a path: leading slashes made one, and walks up folders that end.

Loading a graph walks up each file path's folders (autoedges, clashes). POSIX
lets "//" mean something of its own and os.path keeps it ("//" is its own
dirname): a walk that waits for "/" never ended on "//tmp/f" and ate memory.
Each check runs in a subprocess with a timeout, so a regression fails the test
instead of hanging the suite.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest
from helpers import SRC

SNIPPET = textwrap.dedent(
    """
    import sys
    from mgmt.graph.clash import find_clash
    from mgmt.graph.model import ResourceSpec
    from mgmt.resources.base import fill_params
    from mgmt.resources.file import FileRes

    params = fill_params(FileRes, eval(sys.argv[1]))
    res = FileRes("f", params)
    provides, needs = FileRes.autoedges("f", params)
    print(res.path, provides, needs, res.params.get("source"), flush=True)
    from mgmt.resources.filepath import folders_above
    print(folders_above("//"), folders_above("//tmp//a"))
    collected = FileRes.collected_params("x", {"path": "/elsewhere/x", "content": ""}, "//tmp/")
    print(collected["path"], FileRes.autoedges("x", fill_params(FileRes, collected)))
    spec = ResourceSpec("file", "f", params, line=1)
    print(find_clash([spec], False))
    """
)


def _bounded() -> None:
    # The old loop appended to a list without end: capped, it dies of MemoryError
    # in a moment instead of eating the machine's memory until the timeout.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run(params: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SNIPPET, params],
        capture_output=True,
        text=True,
        timeout=10,  # the old loop never ended: a timeout here is the bug
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        preexec_fn=_bounded,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "params, path, folder",
    [
        ("{'path': '//tmp/f', 'content': 'x'}", "/tmp/f", "/tmp"),
        ("{'path': '///tmp//f', 'content': 'x'}", "/tmp/f", "/tmp"),
        ("{'path': '/a/f', 'dirname': '//x', 'content': 'x'}", "/x/f", "/x"),
        ("{'path': '//tmp/d/', 'source': '//tmp/src', 'recurse': True}", "/tmp/d", "/tmp"),
    ],
)
def test_leading_slashes_are_one_and_loading_ends(params, path, folder):
    lines = run(params).splitlines()
    source = "/tmp/src" if "source" in params else "None"  # compared with the path so
    # A source is needed too (made first when a resource makes it), with one slash.
    needs = f"'file:{folder}', 'file:{source}'" if "source" in params else f"'file:{folder}'"
    assert lines[0] == f"{path} ['file:{path}'] [{needs}] {source}"
    assert lines[1] == "[] ['/tmp']"
    # A collect pattern "//tmp/" puts another host's file at /tmp/x, not //tmp/x.
    assert lines[2] == "/tmp/x (['file:/tmp/x'], ['file:/tmp'])"
    assert lines[3] == "None"


@pytest.fixture
def locked(tmp_path, monkeypatch):
    """A link this user may not read (as /proc/1/root is in a container, or a link
    in a 0700 folder for a non-root agent): readlink fails with EACCES."""
    import errno
    import os

    (tmp_path / "real").mkdir()
    link = tmp_path / "locked"
    link.symlink_to(tmp_path / "real")
    readlink = os.readlink

    def refusing(path, *args, **kwargs):
        if os.fspath(path) == str(link):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return readlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "readlink", refusing)
    return link


def test_an_unreadable_link_on_the_way_is_no_internal_error(locked):
    from mgmt.errors import GraphError
    from mgmt.graph.parse import parse_graph

    text = f"graph: g\nresources:\n  file:\n    - {{name: r, path: {locked}/a/x, content: x}}\n"
    graph = parse_graph(text, "g.yaml", real_paths=True)  # clashes looked for by real paths
    assert len(graph.resources) == 1
    removal = f"    - {{name: s, path: {locked}/a, state: absent, recurse: true}}\n"
    with pytest.raises(GraphError) as caught:
        parse_graph(text + removal, "g.yaml", real_paths=True)
    assert f"g.yaml:5: file[s]: path: cannot tell where {locked}/a leads" in str(caught.value)


def test_a_file_claimed_through_an_unreadable_link_is_checked(locked, watcher, tmp_path):
    from helpers import make_init

    from mgmt.resources.base import fill_params
    from mgmt.resources.file import FileRes

    res = FileRes("r", fill_params(FileRes, {"path": f"{locked}/x", "content": "x"}))
    res.setup(make_init(watcher, tmp_path))
    assert res.check_apply(False) is False  # noop: would create it, no PermissionError
    assert not (tmp_path / "real" / "x").exists()
