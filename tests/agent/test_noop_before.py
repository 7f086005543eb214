"""Under noop, what each resource is told would change before it (changed_before):
the right names after events and graph edits."""

import pytest

from mgmt.graph.model import Edge, ResourceSpec
from mgmt.resources.base import REGISTRY, Resource

# What each resource's check finds (True: would change), and what it was told.
CHANGES: dict = {}
TOLD: dict = {}


class BeforeProbe(Resource):
    kind = "before"
    fields: dict = {}

    def check_apply(self, apply: bool) -> bool:
        # Kept, not listed: a kind lists the names only when it has something to say.
        TOLD[self.name] = self.changed_before
        return not CHANGES.get(self.name, False)


@pytest.fixture(autouse=True)
def before_kind():
    REGISTRY["before"] = f"{__name__}:BeforeProbe"
    CHANGES.clear()
    TOLD.clear()
    yield
    del REGISTRY["before"]


def specs(*names):
    return {("before", n): ResourceSpec("before", n, {}) for n in names}


def edges(*pairs):
    return [Edge(("before", a), ("before", b)) for a, b in pairs]


def recheck(engine, *names):
    """An event on each: checked again, as a watch would have it."""
    for name in names:
        engine.poke(engine._vertices[("before", name)])
    assert engine.wait_idle(10)


def test_each_is_told_every_resource_above_it_that_would_change(engine_factory):
    # a -> b -> d, a -> c -> d (a diamond), d -> e; x alone. a, c and x would change.
    CHANGES.update(a=True, c=True, x=True)
    engine = engine_factory(noop=True)
    pairs = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]
    engine.update(specs("a", "b", "c", "d", "e", "x"), edges(*pairs))
    assert engine.wait_idle(10)
    assert TOLD == {
        "a": [], "x": [], "b": ["before[a]"], "c": ["before[a]"],
        "d": ["before[a]", "before[c]"], "e": ["before[a]", "before[c]"],
    }  # fmt: skip


def test_an_ancestor_that_turns_would_change_on_an_event_is_told_below(engine_factory):
    """g turns would-change when checked again; p and c, not checked again in noop,
    keep what they were built from: c's next check must still name g."""
    engine = engine_factory(noop=True)
    engine.update(specs("g", "p", "c"), edges(("g", "p"), ("p", "c")))
    assert engine.wait_idle(10)
    assert TOLD == {"g": [], "p": [], "c": []}
    CHANGES["g"] = True
    recheck(engine, "g")
    recheck(engine, "c")
    assert TOLD["c"] == ["before[g]"]
    CHANGES["p"] = True
    recheck(engine, "p", "c")
    assert TOLD["c"] == ["before[g]", "before[p]"]


def test_a_graph_edit_tells_what_is_above_now(engine_factory):
    CHANGES.update(a=True, b=True)
    engine = engine_factory(noop=True)
    engine.update(specs("a", "b", "c"), edges(("a", "c")))
    assert engine.wait_idle(10)
    assert TOLD["c"] == ["before[a]"]
    engine.update(specs("a", "b", "c"), edges(("b", "c")))  # a no longer above c
    recheck(engine, "c")
    assert TOLD["c"] == ["before[b]"]


def test_a_long_list_of_what_would_change_before_is_said_as_its_first_few():
    """A pkg after 10,000 would-change files logged all their names on one line."""
    from mgmt.resources.noop import NoopRes

    res = NoopRes("n", {})
    res.changed_before = [f"file[f{i}]" for i in range(7)]
    assert res.changed_before_said() == (
        "file[f0], file[f1], file[f2], file[f3], file[f4] (and 2 more)"
    )
    res.changed_before = ["file[f0]"]
    assert res.changed_before_said() == "file[f0]"
