"""A file resource's paths and names are checked when the graph is read: exit 2,
naming the file, the line and the field, never a traceback.

Only refusals at load are run here (the graph never applies), and the paths
are in the test's temp dir.
"""

from __future__ import annotations

import json

import pytest
from helpers import run_mgmt

CONTROL = ["\n06:00:00 agent: all fine", "\x1b[31m", "\x7f", "\x85", "\u2028", "\t"]


def load(tmp_path, resource: dict, collect=None):
    graph = {"graph": "g", "resources": {"file": [resource]}}
    if collect is not None:
        graph["collect"] = collect
    path = tmp_path / "g.yaml"
    # JSON is YAML: each value on its own line, so the error's line names the field.
    path.write_text(json.dumps(graph, indent=1))
    lines = path.read_text().splitlines()
    args = ["--file", str(path), "--no-server", "--tmp-prefix", "--noop"]
    args += ["--converged-timeout", "1"]  # a regression that loads ends too
    done = run_mgmt(args)
    return done, lines


def line_of(lines, text: str) -> int:
    return next(n for n, line in enumerate(lines, 1) if text in line)


@pytest.mark.parametrize("bad", CONTROL)
@pytest.mark.parametrize("field", ["path", "dirname", "basename", "source", "owner", "group"])
def test_a_control_character_in_a_path_or_name_is_refused_at_load(tmp_path, field, bad):
    value = {
        "path": f"{tmp_path}/x{bad}",
        "dirname": f"{tmp_path}/d{bad}",
        "basename": f"b{bad}",
        "source": f"{tmp_path}/s{bad}",
        "owner": f"u{bad}",
        "group": f"g{bad}",
    }[field]
    resource = {"name": "r", "path": f"{tmp_path}/f", field: value}
    done, lines = load(tmp_path, resource)
    assert done.returncode == 2, done.stderr
    where = line_of(lines, f'"{field}"')
    assert f"g.yaml:{where}: file[r]: {field}: must not hold the control character" in done.stderr
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr
    assert not any(line.startswith("06:00:00") for line in done.stderr.splitlines())


def test_a_control_character_in_a_collect_pattern_is_refused_at_load(tmp_path):
    resource = {"name": "r", "path": f"{tmp_path}/f", "content": ""}
    done, lines = load(tmp_path, resource, [{"kind": "file", "pattern": f"{tmp_path}/\x1b[31m/"}])
    assert done.returncode == 2, done.stderr
    where = line_of(lines, '"pattern"')
    assert f"g.yaml:{where}: collect: pattern: must not hold the control character" in done.stderr
    assert "\x1b" not in done.stderr


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("owner", "nosuchuser", "owner: no user named 'nosuchuser' on this host"),
        ("group", "nosuchgroup", "group: no group named 'nosuchgroup' on this host"),
        ("owner", "\uff11", "owner: no user named '\uff11' on this host"),  # fullwidth 1
    ],
)
@pytest.mark.parametrize("exists", [False, True])
def test_noop_fails_an_owner_this_host_lacks_as_the_real_run_does(
    tmp_path, field, value, message, exists
):
    target = tmp_path / "f"
    if exists:
        target.write_text("old")
    resource = {"name": "r", "path": str(target), "content": "new", field: value}
    noop, _ = load(tmp_path, resource)
    assert noop.returncode == 1, noop.stderr
    assert message in noop.stderr
    assert "Traceback" not in noop.stderr
    assert target.exists() == exists and (not exists or target.read_text() == "old")


@pytest.mark.parametrize("field", ["owner", "group"])
def test_an_owner_name_over_256_characters_is_refused_at_load(tmp_path, field):
    for size in (257, 1 << 20):
        done, lines = load(tmp_path, {"name": "r", "path": f"{tmp_path}/f", field: "u" * size})
        assert done.returncode == 2, done.stderr[:500]
        where = line_of(lines, f'"{field}"')
        assert f"g.yaml:{where}: file[r]: {field}: a name of {size} characters" in done.stderr
        assert len(done.stderr) < 1000  # the name is not echoed back
    done, _ = load(tmp_path, {"name": "r", "path": f"{tmp_path}/f", field: "u" * 256})
    assert done.returncode == 1 and "on this host" in done.stderr  # read, then looked up


@pytest.mark.parametrize("field", ["path", "dirname", "basename", "source"])
def test_a_path_longer_than_linux_opens_is_refused_at_load_without_repeating_it(tmp_path, field):
    """No path over PATH_MAX (4096 bytes with its NUL) can be opened: a 1 MB one was
    taken, and its errors repeated it whole."""
    long = "d/" * (1 << 19)  # 1 MiB
    value = {
        "path": f"{tmp_path}/{long}f",
        "dirname": f"{tmp_path}/{long}",
        "basename": "b" * 4096,
        "source": f"{tmp_path}/{long}s",
    }[field]
    done, lines = load(tmp_path, {"name": "r", "path": f"{tmp_path}/f", field: value})
    assert done.returncode == 2, done.stderr[:500]
    where = line_of(lines, f'"{field}"')
    said = f"g.yaml:{where}: file[r]: {field}: a path of {len(value.encode())} bytes"
    assert said in done.stderr and "longer than Linux opens (4095)" in done.stderr, done.stderr
    assert len(done.stderr) < 1000


@pytest.mark.parametrize(
    ("kind", "field", "other"),
    [("file", "owner", "path: TMP/f"), ("file", "group", "path: TMP/f"),
     ("exec", "user", "cmd: 'true'"), ("exec", "group", "cmd: 'true'")],
)  # fmt: skip
@pytest.mark.parametrize("value", ["-5", "+7", "-0"])
def test_a_signed_number_as_owner_or_user_is_refused_at_load(tmp_path, kind, field, other, value):
    """A plain `owner: -5` is read as the text written, which passed as a name: the
    graph loaded and every run failed with "no user named '-5' on this host"."""
    path = tmp_path / "g.yaml"
    other = other.replace("TMP", str(tmp_path))
    path.write_text(
        f"graph: g\nresources:\n  {kind}:\n  - name: r\n    {other}\n    {field}: {value}\n"
    )
    args = ["--file", str(path), "--no-server", "--tmp-prefix", "--noop"]
    done = run_mgmt([*args, "--converged-timeout", "1"])  # a regression that loads ends too
    assert done.returncode == 2, done.stderr
    assert f"g.yaml:6: {kind}[r]: {field}: {value} is not a valid id" in done.stderr
    assert "Traceback" not in done.stderr
