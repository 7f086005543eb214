"""Fixtures for the agent tests: a file watcher and an engine wired like the agent's."""

from __future__ import annotations

import pytest

from mgmt.engine.scheduler import Engine
from mgmt.engine.watcher import FileWatcher
from mgmt.resources.base import Init, Services


@pytest.fixture
def watcher():
    w = FileWatcher()
    yield w
    w.close()


@pytest.fixture
def engine_factory(watcher, tmp_path):
    """Engines built like the agent builds them; all stopped at the end."""
    engines = []

    def build(
        noop: bool = False, on_idle=None, world=None, workers=None, on_failures_changed=None
    ) -> Engine:
        services = Services()  # one per engine, as the agent holds one

        def init(spec, logger, event):
            state_dir = tmp_path / "state" / spec.name
            return Init("test", logger, state_dir, watcher, event, world, services=services)

        engine = Engine(
            init, noop=noop, on_idle=on_idle, workers=workers,
            on_failures_changed=on_failures_changed,
        )  # fmt: skip
        engines.append((engine, services))
        return engine

    yield build
    for engine, services in engines:
        engine.stop()
        services.close()
