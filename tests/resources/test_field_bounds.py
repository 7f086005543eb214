"""Every numeric field of every kind, and meta's, has a range checked when a graph is read.

A value outside it once passed the parser and then killed a thread of the
running agent (a timer's OverflowError, a retry delay that hung the run).
"""

from __future__ import annotations

import threading
import time

import pytest

from mgmt.resources.base import META_FIELDS, Field, FieldError, fill_params, kind_class, known_kinds
from mgmt.resources.fields import MAX_SECONDS, describe, number_field


def _numeric(field: Field) -> bool:
    types = field.types if isinstance(field.types, tuple) else (field.types,)
    return types == (int,) or float in types


NUMERIC = [
    (kind, name, field)
    for kind in known_kinds()
    for name, field in kind_class(kind).fields.items()
    if _numeric(field)
] + [("meta", name, field) for name, field in META_FIELDS.items() if _numeric(field)]


def test_there_are_numeric_fields_to_check():
    names = {f"{kind}.{name}" for kind, name, _ in NUMERIC}
    wanted = {"timer.interval", "exec.timeout", "exec.pollint", "meta.retry", "meta.delay",
              "tftp:server.timeout", "tftp:server.retries", "http:server.max_ranges"}  # fmt: skip
    assert wanted <= names


NUMERIC_IDS = [f"{kind}.{name}" for kind, name, _ in NUMERIC]


@pytest.mark.parametrize(("kind", "name", "field"), NUMERIC, ids=NUMERIC_IDS)
def test_each_numeric_field_has_a_documented_range_that_the_engine_can_use(kind, name, field):
    assert field.bounds is not None, f"{kind}.{name} has no range"
    low, high = field.bounds
    assert f"({low} to {high})" in field.doc
    if field.default is not None:
        assert low <= field.default <= high
    # Every value in range is a wait threading and time can take (ms for delay).
    seconds = high / 1000 if name == "delay" else high
    assert seconds <= MAX_SECONDS < threading.TIMEOUT_MAX
    time.gmtime(time.time() + seconds)  # no "timestamp too large"
    for bad in (low - 1, high + 1, 10**22, -(10**22)):
        with pytest.raises(FieldError, match=r"is out of range"):
            field.check(name, bad)
    field.check(name, low)
    field.check(name, high)


def test_fill_params_refuses_out_of_range_values_as_collected_resources_are_checked():
    # exchange.py runs collected (exported by another host) resources through fill_params.
    cls = kind_class("timer")
    with pytest.raises(FieldError) as caught:
        fill_params(cls, {"interval": 10**10})
    assert caught.value.field == "interval"
    assert caught.value.message == "10000000000 is out of range (1 to 31536000)"
    assert fill_params(cls, {"interval": MAX_SECONDS})["interval"] == MAX_SECONDS


def test_number_field_checks_float_fields_and_refuses_nan():
    field = number_field(0.5, 2.0, 1.0, doc="seconds", types=(int, float))
    field.check("f", 1)
    field.check("f", 2.0)
    for bad in (float("nan"), float("inf"), 0.25):
        with pytest.raises(FieldError, match="out of range"):
            field.check("f", bad)
    with pytest.raises(FieldError, match="expected int or float, got bool true"):
        field.check("f", True)


DESCRIBED = [
    ([1], "a list"), ({"a": 1}, "a mapping"), (None, "null"), (True, "bool true"),
    (5, "int 5"), (10**5000, "an integer of more than 60 digits"), (b"\x00", "binary data"),
    ("x" * 100, "str '" + "x" * 59 + "..."),
]  # fmt: skip


# ids by hand: pytest's own would print 10**5000, which Python 3.11+ refuses to.
@pytest.mark.parametrize(("value", "words"), DESCRIBED, ids=[w for _, w in DESCRIBED])
def test_describe_uses_the_graphs_words(value, words):
    assert describe(value) == words


def test_located_values_are_described_as_yaml_types():
    from mgmt.graph.values import new_dict, new_list

    assert describe(new_list(3)) == "a list" and describe(new_dict(3)) == "a mapping"
