"""``via:``: the hops to a host, their errors (file:line, exit 2), grouping by first hop."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mgmt.errors import GraphError
from mgmt.remote.hierarchy.hops import group_by_first_hop
from mgmt.remote.hostspec import load_remotes, read_remote


def graph(tmp_path, name: str, remote: str, via: str = "") -> object:
    path = tmp_path / name
    path.write_text(f"graph: {name}\nresources: {{}}\nremote: {remote}\n{via}")
    return path


def test_one_hop_as_url_or_alias(tmp_path):
    spec = read_remote(
        graph(tmp_path, "a.yaml", "ssh://root@10.0.0.9", "via: ssh://ops@bastion:2222\n")
    )
    assert spec.name == "10.0.0.9"
    [hop] = spec.via
    assert (hop.target, hop.user, hop.port) == ("bastion", "ops", 2222)
    spec = read_remote(graph(tmp_path, "b.yaml", "ssh://root@10.0.0.9", "via: bastion\n"))
    assert [h.target for h in spec.via] == ["bastion"]


def test_a_list_is_the_hops_in_order(tmp_path):
    via = "via:\n  - ssh://root@s1\n  - s2\n"
    spec = read_remote(graph(tmp_path, "a.yaml", "ssh://root@leaf", via))
    assert [h.name for h in spec.via] == ["s1", "s2"]


def test_a_graph_without_via_runs_as_today(tmp_path):
    assert read_remote(graph(tmp_path, "a.yaml", "ssh://root@h1")).via == ()


BAD = [
    ("via: 42\n", 4, "via: must be a string or a list of strings, got int 42"),
    ("via: []\n", 4, "via: is an empty list"),
    ("via:\n  - s1\n  - {a: 1}\n", 6, "via: each hop must be a non-empty string, got a mapping"),
    ("via: http://s1\n", 4, "via: unsupported scheme 'http'"),
    ("via: 's1; reboot'\n", 4, "via: not a host name or ssh alias"),
    ("via: ssh://s1:0\n", 4, "via: invalid port"),
    ("via: [s1, s2, s1]\n", 4, "via: s1 is named twice (a loop)"),
    ("via: [s1, leaf]\n", 4, "via: the host leaf cannot be its own hop"),
    ("via: [s1, 'ssh://root:pw@s2']\n", 4, "via: s2: a password cannot be used for a host behind"),
]


@pytest.mark.parametrize(("via", "line", "message"), BAD)
def test_bad_hops_name_file_and_line(tmp_path, via, line, message):
    path = graph(tmp_path, "a.yaml", "ssh://root@leaf", via)
    with pytest.raises(GraphError) as caught:
        read_remote(path)
    assert str(caught.value).startswith(f"{path}:{line}: {message}")


def test_a_password_for_the_host_itself_is_refused_behind_via(tmp_path):
    path = graph(tmp_path, "a.yaml", "ssh://root:pw@leaf", "via: s1\n")
    with pytest.raises(GraphError, match="remote: a password cannot be used"):
        read_remote(path)


def test_hosts_are_grouped_by_first_hop_in_input_order(tmp_path):
    paths = [
        graph(tmp_path, "d.yaml", "ssh://root@direct"),
        graph(tmp_path, "l1.yaml", "ssh://root@l1", "via: ssh://root@s1\n"),
        graph(tmp_path, "l3.yaml", "ssh://root@l3", "via: ssh://root@s2\n"),
        graph(tmp_path, "l2.yaml", "ssh://root@l2", "via: ssh://root@s1\n"),
        graph(tmp_path, "deep.yaml", "ssh://root@deep", "via: [ssh://root@s1, ssh://root@s3]\n"),
    ]
    direct, trees = group_by_first_hop(load_remotes(paths).specs)
    assert [s.name for s in direct] == ["direct"]
    assert [t.name for t in trees] == ["s1", "s2"]
    s1 = trees[0]
    assert [h.name for h in s1.hosts] == ["l1", "l2", "deep"]
    assert [h.name for h in s1.hosts[2].via] == ["s3"]  # the rest of its hops
    assert s1.below() == ["l1", "l2", "s3", "s3/deep"]


def test_a_secondary_with_failed_hosts_below_is_failed_counting_each_host_once(tmp_path):
    from types import SimpleNamespace

    from mgmt.remote.hierarchy.upstream import Hierarchy
    from mgmt.remote.orchestration.results import CONVERGED, FAILED, HostResult

    paths = [
        graph(tmp_path, "l1.yaml", "ssh://root@l1", "via: ssh://root@s1\n"),
        graph(tmp_path, "deep.yaml", "ssh://root@deep", "via: [ssh://root@s1, ssh://root@s3]\n"),
    ]
    _, trees = group_by_first_hop(load_remotes(paths).specs)
    hierarchy = Hierarchy(trees, tmp_path, lambda tree: {}, {})
    # What s1 relayed: its leaf converged; below s3 (which says so itself) deep failed.
    hierarchy.sessions["s1"] = SimpleNamespace(leaf_converged={}, leaf_results={
        "l1": HostResult("l1", CONVERGED),
        "s3": HostResult("s3", FAILED, message="1 of 1 host(s) below failed"),
        "s3/deep": HostResult("s3/deep", FAILED, message="agent exited with status 1"),
    })  # fmt: skip
    rows = {r.host: r for r in hierarchy.expand([HostResult("s1", CONVERGED)])}
    assert list(rows) == ["s1", "s1/l1", "s1/s3", "s1/s3/deep"]
    assert (rows["s1"].result, rows["s1"].message) == (FAILED, "1 of 2 host(s) below failed")
    assert rows["s1/l1"].result == CONVERGED
    # A secondary that failed itself keeps its own reason.
    rows = hierarchy.expand([HostResult("s1", FAILED, message="cannot connect")])
    assert (rows[0].result, rows[0].message) == (FAILED, "cannot connect")


def test_hosts_of_a_lost_secondary_say_whether_they_had_converged(tmp_path):
    """No results came up (the secondary died): what its hosts' agents last said
    is all there is; failed all the same, as a lost host is."""
    from types import SimpleNamespace

    from mgmt.remote.hierarchy.upstream import Hierarchy
    from mgmt.remote.orchestration.results import FAILED, HostResult

    paths = [
        graph(tmp_path, "l1.yaml", "ssh://root@l1", "via: ssh://root@s1\n"),
        graph(tmp_path, "l2.yaml", "ssh://root@l2", "via: ssh://root@s1\n"),
        graph(tmp_path, "deep.yaml", "ssh://root@deep", "via: [ssh://root@s1, ssh://root@s3]\n"),
    ]
    _, trees = group_by_first_hop(load_remotes(paths).specs)
    hierarchy = Hierarchy(trees, tmp_path, lambda tree: {}, {})
    # l1 converged, l2 was busy again when s1 went; s3 relayed that deep converged.
    converged = {"l1": True, "l2": False, "s3/deep": True}
    hierarchy.sessions["s1"] = SimpleNamespace(leaf_converged=converged, leaf_results={})
    lost = HostResult("s1", FAILED, message="lost: no answer to SSH keepalives for 30 s")
    rows = {r.host: r for r in hierarchy.expand([lost])}
    why = "lost: no answer to SSH keepalives for 30 s"
    assert {h: (r.result, r.message) for h, r in rows.items()} == {
        "s1": (FAILED, why),
        "s1/l1": (FAILED, f"converged, then lost via s1: {why}"),
        "s1/l2": (FAILED, f"via s1: {why}"),
        "s1/s3": (FAILED, f"via s1: {why}"),
        "s1/s3/deep": (FAILED, f"converged, then lost via s1: {why}"),
    }


def test_hosts_of_a_stopped_secondary_whose_agents_ran_did_start(tmp_path):
    """No results came up from a secondary that stopped (cut short as it said them):
    a host whose agent had said converged or busy was "stopped - never started"."""
    from types import SimpleNamespace

    from mgmt.remote.hierarchy.upstream import Hierarchy
    from mgmt.remote.orchestration.results import CONVERGED, STOPPED, HostResult

    paths = [
        graph(tmp_path, "l1.yaml", "ssh://root@l1", "via: ssh://root@s1\n"),
        graph(tmp_path, "l2.yaml", "ssh://root@l2", "via: ssh://root@s1\n"),
    ]
    _, trees = group_by_first_hop(load_remotes(paths).specs)
    hierarchy = Hierarchy(trees, tmp_path, lambda tree: {}, {})
    hierarchy.sessions["s1"] = SimpleNamespace(leaf_converged={"l1": True}, leaf_results={})
    rows = {r.host: r for r in hierarchy.expand([HostResult("s1", STOPPED)])}
    assert {h: (r.result, r.message) for h, r in rows.items()} == {
        "s1": (STOPPED, ""),
        "s1/l1": (STOPPED, "ran; stopped with s1, no result of its own"),
        "s1/l2": (STOPPED, "never started"),
    }
    rows = {r.host: r for r in hierarchy.expand([HostResult("s1", CONVERGED)])}
    assert rows["s1/l1"].result == CONVERGED


def test_one_hop_two_logins_is_an_error(tmp_path):
    paths = [
        graph(tmp_path, "l1.yaml", "ssh://root@l1", "via: ssh://root@s1\n"),
        graph(tmp_path, "l2.yaml", "ssh://root@l2", "via: ssh://ops@s1\n"),
    ]
    with pytest.raises(GraphError, match=r"via: s1 is given as ops@s1 here and as root@s1 in"):
        group_by_first_hop(load_remotes(paths).specs)


def test_a_hop_that_also_runs_a_graph_is_an_error(tmp_path):
    paths = [
        graph(tmp_path, "s1.yaml", "ssh://root@s1"),
        graph(tmp_path, "l1.yaml", "ssh://root@l1", "via: ssh://root@s1\n"),
    ]
    with pytest.raises(GraphError, match="host s1 runs this graph and is also the via: of"):
        group_by_first_hop(load_remotes(paths).specs)


@pytest.mark.parametrize(
    "own_via, leaf_via",
    [
        ("via: ssh://root@s2\n", "via: ssh://root@s1\n"),  # a leaf of s2, the via of l1
        ("", "via: [ssh://root@s2, ssh://root@s1]\n"),  # a direct host, a hop further down
        ("via: ssh://root@s2\n", "via: [ssh://root@s2, ssh://root@s1]\n"),  # both behind s2
    ],
)
def test_a_host_with_a_graph_anywhere_cannot_be_a_hop_anywhere(tmp_path, own_via, leaf_via):
    s1 = graph(tmp_path, "s1.yaml", "ssh://root@s1", own_via)
    paths = [s1, graph(tmp_path, "l1.yaml", "ssh://root@l1", leaf_via)]
    with pytest.raises(GraphError, match="host s1 runs this graph and is also the via: of") as err:
        group_by_first_hop(load_remotes(paths).specs)
    assert err.value.path == str(s1)


def test_a_secondary_that_is_a_leaf_of_another_is_refused_in_one_line_with_exit_2(tmp_path):
    paths = [
        graph(tmp_path, "s1.yaml", "ssh://root@127.0.0.1:1", "via: ssh://root@127.0.0.2:1\n"),
        graph(tmp_path, "l1.yaml", "ssh://root@l1", "via: ssh://root@127.0.0.1:1\n"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "mgmt", "run", "--tmp-prefix"]
        + [arg for path in paths for arg in ("--remote", str(path))],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, MGMT_BUNDLE=str(paths[0])),
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"mgmt: error: {paths[0]}: host 127.0.0.1 runs this graph and is also the via: of "
        f"{paths[1]}: give its graph to another host, or reach it another way"
    )


def test_the_command_line_says_so_in_one_line_with_exit_2_before_connecting(tmp_path):
    path = graph(tmp_path, "a.yaml", "ssh://root@127.0.0.1:1", "via:\n  - s1\n  - 7\n")
    done = subprocess.run(
        [sys.executable, "-m", "mgmt", "run", "--tmp-prefix", "--remote", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, MGMT_BUNDLE=str(path)),
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    message = "via: each hop must be a non-empty string, got int 7"
    assert done.stderr.strip() == f"mgmt: error: {path}:6: {message}"


def test_a_secondary_settings_line_that_is_not_json_is_an_input_error():
    from mgmt.errors import InputError
    from mgmt.remote.hierarchy.secondary import secondary_settings

    with pytest.raises(InputError, match="secondary settings on stdin"):
        secondary_settings('{"secondary": true, oops\n')
    assert secondary_settings('{"secondary": true, "hostname": "s1"}') == (
        '{"hostname": "s1"}',
        None,
    )
    line = '{"secondary": true, "hostname": "s1", "sudo_secret": ["tok", null]}'
    assert secondary_settings(line) == ('{"hostname": "s1"}', ("tok", None))
    with pytest.raises(InputError, match="sudo_secret: invalid"):
        secondary_settings('{"secondary": true, "sudo_secret": "pw"}')
    # The level above's password gate: [user, state, where it was refused].
    line = '{"secondary": true, "sudo_secret": ["tok", "", ["alice", "wrong", "s2/10.0.0.5"]]}'
    assert secondary_settings(line)[1] == ("tok", "", ["alice", "wrong", "s2/10.0.0.5"])
    with pytest.raises(InputError, match="sudo_secret: invalid"):
        secondary_settings(
            '{"secondary": true, "sudo_secret": ["tok", "pw", ["alice", "maybe", null]]}'
        )


def test_each_level_down_has_less_time_to_stop_its_hosts():
    from mgmt.remote.hierarchy.plan import grace_below
    from mgmt.remote.orchestration.session import STOP_GRACE

    levels = [STOP_GRACE]
    for _ in range(4):
        levels.append(grace_below(levels[-1]))
    assert levels == [10.0, 7.0, 4.0, 2.0, 2.0]


PLAN_CHECK = """
import json, sys
from pathlib import Path
from mgmt.remote.hierarchy.plan import load_plan, plan_payload
specs, _, _ = load_plan(Path(sys.argv[1]), Path(sys.argv[2]))
sent = [plan_payload(spec.graph) for spec in specs]
print(json.dumps({"sent": [[data.decode(), as_json] for data, as_json in sent],
                  "yaml": "yaml" in sys.modules}))
"""


def _on_secondary(tmp_path, graphs: list, name: str, edits: dict) -> dict:
    """What a secondary sends its hosts for these graphs (``edits``: texts saved over
    them once read as the run's graphs), and whether it imported PyYAML for it."""
    from mgmt.remote.hierarchy.plan import OPTIONS, plan_for, write_plan
    from mgmt.remote.orchestration.context import graph_payload

    _, [tree] = group_by_first_hop(load_remotes(graphs).specs)
    for path, text in edits.items():
        path.write_text(text)
    options = dict.fromkeys(OPTIONS, 0)
    trust = {"known_hosts": "", "aliases": {}}
    plan = write_plan(plan_for(tree, trust, options, graph_payload), tmp_path / f"{name}.json")
    workdir = tmp_path / name
    workdir.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", PLAN_CHECK, str(plan), str(workdir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_a_secondary_sends_each_host_what_the_initiator_would_without_parsing_yaml(tmp_path):
    from mgmt.remote.orchestration.context import graph_payload

    plain = graph(tmp_path, "a.yaml", "ssh://10.9.0.2", "via: s1\n")
    edited = graph(tmp_path, "b.yaml", "ssh://10.9.0.3", "via: s1\n")
    # Saved with a date in it during the run: no JSON form, the host gets (and refuses) the YAML.
    # (Not in comment: a plain date there is its text, as mgmt reads it.)
    dated = {edited: edited.read_text() + "when: 2026-12-05\n"}

    both = _on_secondary(tmp_path, [plain, edited], "both", dated)
    direct = [[data.decode(), as_json] for data, as_json in map(graph_payload, (plain, edited))]
    assert direct[0][1] is not None and direct[1][1] is None
    assert both["sent"] == direct
    assert both["yaml"]  # the dated graph is read as the initiator reads it

    json_only = _on_secondary(tmp_path, [plain], "json-only", {})
    assert json_only["sent"] == direct[:1]
    assert not json_only["yaml"]  # the plan holds its JSON form: sent as it is
