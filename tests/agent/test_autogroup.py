"""The engine's autogroup: resources their kind applies together become one vertex, cycles never."""

from __future__ import annotations

import time

import pytest

from mgmt.engine.autogroup import GroupSpec, autogroup, build
from mgmt.graph.deps import dependencies, find_cycle
from mgmt.graph.model import Edge, ResourceSpec
from mgmt.resources.base import Meta, fill_params
from mgmt.resources.pkg import PkgRes


def pkg(name, **params):
    meta = Meta(**{k: params.pop(k) for k in Meta._fields if k in params})
    return ResourceSpec("pkg", name, fill_params(PkgRes, params), meta)


def noop(name):
    return ResourceSpec("noop", name, {})


def grouped(specs, edges=()):
    specs = {s.key: s for s in specs}
    return autogroup(specs, dependencies(specs, edges))


# (resources, edges, the groups expected as sorted member names)
CASES = [
    ([pkg("a"), pkg("b"), pkg("c")], [], [["a", "b", "c"]]),
    ([pkg("a"), pkg("b", autogroup=False)], [], []),
    ([pkg("a"), pkg("b", allowuntrusted=True), pkg("c")], [], [["a", "c"]]),
    # A group runs as its leader's meta says: only members whose meta says the same.
    ([pkg("a"), pkg("b", noop=True), pkg("c", noop=True), pkg("d")], [], [["a", "d"], ["b", "c"]]),
    ([pkg("a", retry=2), pkg("b"), pkg("c", retry=2, delay=5)], [], []),
    ([pkg(n, retry=-1, delay=9, autoedge=n != "c") for n in "abc"], [], [["a", "b", "c"]]),
    # a -> n -> b: merging a and b would close a cycle through n.
    ([pkg("a"), noop("n"), pkg("b")], [("pkg", "a", "noop", "n"), ("noop", "n", "pkg", "b")], []),
    # n -> a and n -> b: both after n, together.
    ([pkg("a"), noop("n"), pkg("b")], [("noop", "n", "pkg", "a"), ("noop", "n", "pkg", "b")],
     [["a", "b"]]),
]  # fmt: skip


@pytest.mark.parametrize("specs, edges, groups", CASES)
def test_groups_follow_keys_and_never_make_cycles(specs, edges, groups):
    edges = [Edge((k1, n1), (k2, n2)) for k1, n1, k2, n2 in edges]
    out, parents = grouped(specs, edges)
    found = [sorted(m.name for m in s.members) for s in out.values() if isinstance(s, GroupSpec)]
    assert found == groups
    assert find_cycle(parents) is None
    members = sum((len(s.members) if isinstance(s, GroupSpec) else 1 for s in out.values()), 0)
    assert members == len(specs)  # nobody lost, nobody doubled


def test_edges_move_onto_the_group_and_the_leader_answers_for_its_members():
    specs = [pkg("a"), pkg("b"), noop("n")]
    out, parents = grouped(specs, [Edge(("noop", "n"), ("pkg", "b"))])
    (group,) = [s for s in out.values() if isinstance(s, GroupSpec)]
    assert parents[group.key] == {("noop", "n")}
    leader = build(group)
    assert [m.package for m in leader.members] == ["a", "b"]
    assert group.same_as(grouped(specs, [])[0][group.key])


def test_thousands_of_packages_group_in_one_walk_of_the_graph():
    """Each member was tried alone, with a walk of the whole graph each time: 2000
    packages behind a chain of noops took 11 s at every update (reload, collect)."""
    specs, edges = [], []
    for i in range(3000):
        specs += [pkg(f"p{i}"), noop(f"n{i}")]
        edges.append(Edge(("noop", f"n{i}"), ("pkg", f"p{i}")))
        if i:
            edges.append(Edge(("noop", f"n{i - 1}"), ("noop", f"n{i}")))
    started = time.monotonic()
    out, parents = grouped(specs, edges)
    took = time.monotonic() - started
    (group,) = [s for s in out.values() if isinstance(s, GroupSpec)]
    assert len(group.members) == 3000 and len(out) == 3001
    assert parents[group.key] == {("noop", f"n{i}") for i in range(3000)}
    assert find_cycle(parents) is None
    assert took < 5, took  # 0.3 s here; 35 s before
