"""The scheduler: order, parallelism, failures, retries, noop, live updates, convergence."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgmt.engine import retry, scheduler
from mgmt.engine.converger import Converger
from mgmt.errors import GraphError
from mgmt.graph import parse_graph
from mgmt.graph.model import Edge
from mgmt.resources.base import REGISTRY, Field, Resource, ResourceError
from mgmt.world.api import FAILURE_ERROR_MAX, Failure

# A kind for these tests only: records when it ran, can fail or block on demand.
LOG: list = []
GATES: dict = {}


class ProbeRes(Resource):
    kind = "probe"
    fields = {
        "fail": Field(int, default=0),
        "gate": Field(str, default=""),
        "changes": Field(bool, default=True),
    }

    def __init__(self, name, params, meta=None):
        super().__init__(name, params, meta)
        self.failures_left = self.params["fail"]

    def check_apply(self, apply: bool) -> bool:
        LOG.append((self.name, apply, time.monotonic()))
        gate = self.params["gate"]
        if gate:
            GATES[gate].wait(10)
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError(f"{self.name} broke")
        return not self.params["changes"]


@pytest.fixture(autouse=True, scope="module")
def probe_kind():
    kinds = {
        "probe": "ProbeRes", "gprobe": "GroupProbeRes", "selfpoke": "SelfPokingRes",
        "broken": "BrokenRes",
    }  # fmt: skip
    for kind, cls in kinds.items():
        REGISTRY[kind] = f"{__name__}:{cls}"
    yield
    for kind in kinds:
        del REGISTRY[kind]


def graph(text):
    return parse_graph("graph: g\nresources:\n" + text)


def edge(a, b):
    return f"- name: {a}{b}\n  from: {{kind: probe, name: {a}}}\n  to: {{kind: probe, name: {b}}}\n"


def names():
    return [entry[0] for entry in LOG]


def setup_function():
    LOG.clear()
    GATES.clear()


def test_dependencies_run_in_order(engine_factory):
    g = graph(
        "  probe: [{name: c}, {name: b}, {name: a}]\nedges:\n" + edge("a", "b") + edge("b", "c")
    )
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    assert names() == ["a", "b", "c"]


def test_independent_resources_run_in_parallel(engine_factory):
    GATES["g"] = threading.Event()
    g = graph("  probe:\n  - {name: slow, gate: g}\n  - {name: quick}\n")
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    # quick finishes while slow is still blocked: they run side by side.
    assert wait_for(lambda: "quick" in names() and "slow" in names(), 5)
    assert not engine.idle
    GATES["g"].set()
    assert engine.wait_idle(5)


def test_a_chain_runs_on_one_worker_thread(engine_factory):
    chain = "abcdefghij"
    g = graph(
        "  probe: [" + ", ".join(f"{{name: {n}}}" for n in chain) + "]\nedges:\n"
        + "".join(edge(a, b) for a, b in zip(chain, chain[1:]))
    )  # fmt: skip
    engine = engine_factory(workers=4)
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    assert names() == list(chain)
    assert engine.threads == 1  # never more work ready than one free worker


def test_workers_start_as_work_waits_up_to_the_pool_size(engine_factory):
    GATES["g"] = threading.Event()
    g = graph("  probe:\n" + "".join(f"  - {{name: p{n}, gate: g}}\n" for n in range(5)))
    engine = engine_factory(workers=3)
    engine.update(g.local(), g.edges)
    assert wait_for(lambda: len(LOG) == 3, 5)  # three run side by side, two wait
    assert engine.threads == 3
    GATES["g"].set()
    assert engine.wait_idle(5)
    assert sorted(names()) == [f"p{n}" for n in range(5)]
    assert engine.threads == 3


def test_a_due_timer_gets_a_worker_while_the_only_one_is_busy(engine_factory):
    # a and b wait out their delays on timers with one worker started; a's run blocks, and
    # b, due meanwhile, must start a second worker rather than wait behind it.
    GATES["g"] = threading.Event()
    GATES["g"].set()
    probes = (
        "  probe:\n"
        "  - {name: a, gate: g, meta: {delay: 1000}}\n"
        "  - {name: b, meta: {delay: 1000}}\n"
    )
    chain = graph(probes + "edges:\n" + edge("a", "b"))
    engine = engine_factory(workers=4)
    engine.update(chain.local(), chain.edges)
    assert engine.wait_idle(5)
    assert engine.threads == 1
    apart = graph(probes)  # the same resources, now independent
    engine.update(apart.local(), apart.edges)
    GATES["g"].clear()
    engine.poke_all()  # both inside their delay (a second, for a loaded machine): on timers
    assert wait_for(lambda: names().count("a") == names().count("b") == 2, 5), names()
    assert not engine.idle  # a is still blocked
    assert engine.threads == 2
    GATES["g"].set()
    assert engine.wait_idle(5)


def test_a_thread_limit_leaves_the_work_to_the_workers_started(engine_factory, monkeypatch):
    class OneThreadOnly(threading.Thread):  # as a host at its thread limit answers
        started = 0

        def start(self):
            if OneThreadOnly.started:
                raise RuntimeError("can't start new thread")
            OneThreadOnly.started += 1
            super().start()

    monkeypatch.setattr(scheduler.threading, "Thread", OneThreadOnly)
    g = graph("  probe:\n" + "".join(f"  - {{name: p{n}}}\n" for n in range(5)))
    engine = engine_factory(workers=3)
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    assert sorted(names()) == [f"p{n}" for n in range(5)] and engine.threads == 1


def test_a_failure_blocks_only_its_own_branch(engine_factory):
    g = graph(
        "  probe:\n  - {name: bad, fail: 99}\n  - {name: child}\n  - {name: other}\n"
        "edges:\n" + edge("bad", "child")
    )
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    assert "other" in names() and "child" not in names()
    assert engine.failed() == [("probe", "bad")]
    assert engine.failures() == [Failure("probe", "bad", "bad broke")]


class BrokenRes(ProbeRes):
    """A kind that, once ``refuse`` is set, will not be built ("init") or set up
    ("setup") by the engine, though its graph parsed (as a group's merge could)."""

    kind = "broken"
    refuse = ""
    closed: list = []

    def __init__(self, name, params, meta=None):
        super().__init__(name, params, meta)
        if BrokenRes.refuse == "init":
            raise ValueError(f"{name} cannot be built")

    def setup(self, init):
        super().setup(init)
        if BrokenRes.refuse == "setup":
            raise OSError(f"{self.name} cannot be set up")

    def close(self):
        BrokenRes.closed.append(self.name)


@pytest.mark.parametrize("at", ["init", "setup"])
def test_a_resource_that_cannot_be_built_fails_and_holds_its_children(
    engine_factory, at, monkeypatch
):
    g = graph(
        "  broken: [{name: bad}]\n  probe: [{name: child}, {name: other}]\n"
        "edges:\n- name: e\n  from: {kind: broken, name: bad}\n  to: {kind: probe, name: child}\n"
    )
    monkeypatch.setattr(BrokenRes, "refuse", at)
    monkeypatch.setattr(BrokenRes, "closed", [])
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    assert names() == ["other"]  # not the child: what it depends on is missing
    [failure] = engine.failures()
    assert (failure.kind, failure.name) == ("broken", "bad")
    assert failure.error == f"cannot create: bad cannot be {'built' if at == 'init' else 'set up'}"
    # A setup that failed half-way is closed, not left holding what it made.
    assert BrokenRes.closed == ([] if at == "init" else ["bad"])


class GroupProbeRes(ProbeRes):
    """Probes that group: one check for all, failing for the members with ``fail``
    and changing the others, as one dnf transaction with an unknown package."""

    kind = "gprobe"

    @classmethod
    def autogroup_key(cls, name, params):
        return "all"

    def merge(self, members):
        self.members = [self, *members]

    def check_apply(self, apply: bool) -> bool:
        for member in self.members:
            self.note("state", "right", "wrong", member=member.name)
        broken = [m.name for m in self.members if m.params["fail"]]
        if broken:
            raise ResourceError(repr(self), " ".join(broken) + " broke", members=broken)
        return False


def test_a_group_that_fails_for_some_members_fails_only_them(engine_factory):
    from mgmt.engine.report import resource_entries

    g = graph("  gprobe: [{name: a}, {name: b, fail: 1}, {name: c}]\n")
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    # What a detached cluster keeps in etcd names the member, not the group.
    [failure] = engine.failures()
    assert (failure.kind, failure.name) == ("gprobe", "b")
    assert failure.error.endswith("b broke")
    entries = {e["name"]: e for e in resource_entries(engine.outcomes())}
    assert {n: e["result"] for n, e in entries.items()} == {
        "a": "changed", "b": "failed", "c": "changed",
    }  # fmt: skip
    assert entries["a"]["errors"] == entries["c"]["errors"] == []
    # The failed member's difference was not made: it is no change of its.
    assert [name for name, e in entries.items() for _ in e["changes"]] == ["a", "c"]


def test_an_error_that_names_no_member_fails_the_whole_group():
    from mgmt.engine.outcome import Outcome

    outcome = Outcome()
    outcome.record(False, True, [], ResourceError("pkg[a]", "broke", members=[]))
    assert outcome.final_of("a") == outcome.final_of("b") == "failed"
    assert [f.name for f in outcome.failures("pkg", "a (+1 grouped)")] == ["a (+1 grouped)"]


def test_a_failures_error_is_cut_to_keep_the_etcd_value_small(engine_factory):
    long = "x" * FAILURE_ERROR_MAX
    g = graph(f"  probe:\n  - {{name: {long}, fail: 99}}\n")
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    assert engine.failures() == [Failure("probe", long, long[:-3] + "...")]  # said cut


def test_retry_with_delay_then_success_unblocks_children(engine_factory):
    g = graph(
        "  probe:\n  - {name: flaky, fail: 2, meta: {retry: 2, delay: 100}}\n  - {name: child}\n"
        "edges:\n" + edge("flaky", "child")
    )
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    runs = [t for n, _, t in LOG if n == "flaky"]
    assert len(runs) == 3
    assert runs[1] - runs[0] >= 0.09 and runs[2] - runs[1] >= 0.09
    assert names()[-1] == "child"
    assert engine.failed() == []


def test_an_event_during_the_last_failing_try_checks_it_again(engine_factory):
    """The event may have fixed what it failed on (a file's folder made again while
    the file failed on it): it is not lost with the failure."""
    GATES["g"] = threading.Event()
    g = graph("  probe:\n  - {name: p, fail: 1, gate: g}\n")
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert wait_for(lambda: names() == ["p"])  # the check is under way, held at the gate
    engine.poke(engine._vertices[("probe", "p")])  # the event, while it runs
    GATES["g"].set()  # it fails (its one failure)
    assert engine.wait_idle(5)
    assert names() == ["p", "p"] and engine.failed() == []
    runs = [t for _, _, t in LOG]
    assert runs[1] - runs[0] >= retry.EVENT_RECHECK  # not at full speed


class SelfPokingRes(ProbeRes):
    """Fails, and its failing check makes an event of its own (as a tree copy's
    half-written temp file does): at once, or (``gate: late``) a moment after the
    check ended, as inotify tells of it."""

    kind = "selfpoke"

    def check_apply(self, apply: bool) -> bool:
        LOG.append((self.name, apply, time.monotonic()))
        if self.params["gate"] == "late":
            threading.Timer(0.05, self.init.event).start()
        else:
            self.init.event()
        raise RuntimeError("broke, and said so")


def test_a_check_that_makes_its_own_event_is_rechecked_and_converges(engine_factory):
    """Its re-check, then the last check an event during that re-check earns (it
    might have been someone's fix), LAST_RECHECK later: not checked for ever."""
    g = graph("  selfpoke: [{name: s}, {name: late, gate: late}]\n")
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert wait_for(lambda: names().count("s") == 3 and names().count("late") == 3, 5)
    assert engine.wait_idle(5), names()  # not checked again for ever
    assert sorted(names()) == ["late"] * 3 + ["s"] * 3
    runs = [t for n, _, t in LOG if n == "s"]
    assert runs[2] - runs[1] >= retry.LAST_RECHECK
    assert sorted(engine.failed()) == [("selfpoke", "late"), ("selfpoke", "s")]


def test_a_wake_from_outside_checks_a_failed_resource_again_even_just_after_its_recheck(
    engine_factory,
):
    """Its own event just after its last check is dropped (above); a wake is another
    resource's doing (a file's holder let go of the path: mgmt.resources.fileclaims)
    and was dropped too, leaving it failed for good."""
    g = graph("  selfpoke: [{name: s}]\n")
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert wait_for(lambda: names().count("s") == 3, 5)
    assert engine.wait_idle(5)
    vertex = engine._vertices[("selfpoke", "s")]
    engine.poke(vertex)  # as its own event would: within the window, dropped
    assert time.monotonic() - vertex.failed_at < retry.EVENT_RECHECK
    assert engine.wait_idle(0) and names().count("s") == 3
    engine.poke(vertex, fresh=True)
    assert wait_for(lambda: names().count("s") >= 4, 5)


def test_a_resource_removed_while_it_waits_for_a_retry_does_not_hold_convergence(
    engine_factory,
):
    g = graph("  probe:\n  - {name: bad, fail: 99, meta: {retry: 5, delay: 600000}}\n"
              "  - {name: n}\n")  # fmt: skip
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert wait_for(lambda: names().count("bad") == 1 and "n" in names())
    assert not engine.wait_idle(0.2)  # its retry is ten minutes away
    g = graph("  probe:\n  - {name: n}\n")
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)


def test_events_that_came_together_run_in_dependency_order(engine_factory):
    """One batch of inotify events (a folder moved away with its file): the child's
    event, though told first, waits for its parent's."""
    g = graph(
        "  probe:\n  - {name: parent, changes: false}\n  - {name: child, changes: false}\n"
        "edges:\n" + edge("parent", "child")
    )
    engine = engine_factory(workers=1)  # one worker: the order of the queue is the order run
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    LOG.clear()
    with engine.batched():
        engine.poke(engine._vertices[("probe", "child")])
        engine.poke(engine._vertices[("probe", "parent")])
    assert engine.wait_idle(5)
    assert names() == ["parent", "child"]


def test_noop_engine_and_noop_meta_never_apply(engine_factory):
    g = graph("  probe:\n  - {name: a}\n  - {name: b, meta: {noop: true}}\n")
    engine = engine_factory(noop=True)
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(5)
    assert sorted((n, apply) for n, apply, _ in LOG) == [("a", False), ("b", False)]


def test_a_change_refreshes_children_and_update_applies_only_the_difference(engine_factory):
    g1 = graph(
        "  probe:\n  - {name: a}\n  - {name: b, changes: false}\n  - {name: gone}\nedges:\n"
        + edge("a", "b")
    )
    engine = engine_factory()
    engine.update(g1.local(), g1.edges)
    assert engine.wait_idle(5)
    assert sorted(names()) == ["a", "b", "gone"]
    LOG.clear()
    g2 = graph(
        "  probe:\n  - {name: a}\n  - {name: b, changes: false}\n  - {name: new}\nedges:\n"
        + edge("a", "b")
    )
    diff = engine.update(g2.local(), g2.edges)
    assert (diff.added, diff.removed, diff.changed) == ([("probe", "new")], [("probe", "gone")], [])
    assert engine.wait_idle(5)
    assert names() == ["new"]


def test_converger_fires_after_idle_timeout_and_reports_each_change():
    states, fired = [], threading.Event()
    conv = Converger(0, states.append, fired.set)
    try:
        conv.engine_idle(False)
        assert wait_for(lambda: states == [False], 5)
        conv.engine_idle(True)
        assert fired.wait(5)
        assert wait_for(lambda: states == [False, True], 5)
    finally:
        conv.close()


def test_converger_reports_a_new_idle_period_even_if_it_never_saw_the_busy_one():
    """Each idle period may end with other resources failed: it is reported again."""
    states, release = [], threading.Event()

    def report(idle: bool) -> None:
        states.append(idle)
        if states == [False, True]:
            release.wait(5)  # busy, then idle again, while this report is written

    conv = Converger(-1, report)
    try:
        conv.engine_idle(False)
        assert wait_for(lambda: states == [False], 5)
        conv.engine_idle(True)
        assert wait_for(lambda: states == [False, True], 5)
        conv.engine_idle(False)
        conv.engine_idle(True)
        release.set()
        assert wait_for(lambda: states == [False, True, True], 5)
        conv.engine_idle(True)  # the same period, told again: nothing new to report
        conv.engine_idle(False)
        assert wait_for(lambda: states == [False, True, True, False], 5)
    finally:
        conv.close()


def test_removing_a_failed_resource_is_reported_though_nothing_runs(engine_factory):
    """The failures a world keeps must not name a resource an edit removed."""
    reports = []
    conv = Converger(-1, lambda idle: reports.append(engine.failures() if idle else None))
    engine = engine_factory(on_idle=conv.engine_idle, on_failures_changed=conv.failures_changed)
    try:
        g = graph("  probe:\n  - {name: bad, fail: 99}\n  - {name: good}\n")
        engine.update(g.local(), g.edges)
        assert wait_for(lambda: reports[-1:] == [[Failure("probe", "bad", "bad broke")]], 5)
        g = graph("  probe:\n  - {name: good}\n")  # the edit: bad is gone, good unchanged
        engine.update(g.local(), g.edges)
        assert wait_for(lambda: reports[-1:] == [[]], 5), reports
    finally:
        conv.close()


def test_converger_waits_for_quiet_time():
    fired = threading.Event()
    conv = Converger(1, None, fired.set)
    try:
        started = time.monotonic()
        conv.engine_idle(True)
        time.sleep(0.5)
        conv.activity()
        assert fired.wait(5)
        assert time.monotonic() - started >= 1.4
    finally:
        conv.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.integers(min_value=1, max_value=12),
    pairs=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=30),
)
def test_any_dag_runs_every_resource_once_after_its_parents(engine_factory, size, pairs):
    LOG.clear()
    edges = sorted({(a, b) for a, b in pairs if a < b < size})  # a < b keeps it acyclic
    text = "  probe:\n" + "".join(f"  - {{name: r{i}, changes: false}}\n" for i in range(size))
    if edges:
        text += "edges:\n" + "".join(edge(f"r{a}", f"r{b}") for a, b in edges)
    g = graph(text)
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert engine.wait_idle(10)
    engine.stop()
    order = names()
    assert sorted(order) == sorted(f"r{i}" for i in range(size))
    for a, b in edges:
        assert order.index(f"r{a}") < order.index(f"r{b}")


def test_a_check_that_ends_as_the_engine_stops_still_counts(engine_factory):
    """A ^C mid-apply reported the resources whose checks were under way as pending,
    though they had made their change."""
    GATES["g"] = threading.Event()
    g = graph("  probe: [{name: slow, gate: g}]\n")
    engine = engine_factory()
    engine.update(g.local(), g.edges)
    assert wait_for(lambda: names() == ["slow"], 5)  # its check runs, held at the gate
    stopping = threading.Thread(target=engine.stop)
    stopping.start()
    assert wait_for(lambda: engine._stopping, 5)
    GATES["g"].set()  # the check ends after the stop was asked
    stopping.join(10)
    [(_spec, outcome)] = engine.outcomes()
    assert outcome.result == "changed"


def test_a_long_cycle_of_an_update_is_named_by_its_ends(engine_factory):
    # A cycle only collected resources close (the graph alone has none): it was
    # named step by step, 10,000 resources making a 150 KB log and run-summary line.
    g = graph("  probe: [" + ", ".join(f"{{name: r{i}}}" for i in range(10_000)) + "]\n")
    ring = [Edge(("probe", f"r{i}"), ("probe", f"r{(i + 1) % 10_000}")) for i in range(10_000)]
    engine = engine_factory()
    with pytest.raises(GraphError) as caught:
        engine.update(g.local(), ring)
    message = caught.value.message
    assert message.startswith("dependency cycle: probe[r") and "more) -> " in message
    assert len(message) < 1000, len(message)
    assert engine.wait_idle(5)
    assert names() == []  # nothing ran: the update changed nothing
