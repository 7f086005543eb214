"""The agent's shared services: one object per class and agent, closed with the agent."""

from __future__ import annotations

import threading

from mgmt.resources.base import Services


class _Closable:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class _Plain:
    pass


def test_one_object_per_class_and_registry():
    one, other = Services(), Services()
    assert one.get(_Closable) is one.get(_Closable)
    assert one.get(_Plain) is one.get(_Plain)
    assert one.get(_Closable) is not other.get(_Closable)


def test_close_closes_what_can_be_closed_once_and_forgets_it():
    services = Services()
    closable = services.get(_Closable)
    services.get(_Plain)  # no close(): skipped, not an error
    services.close()
    services.close()
    assert closable.closed == 1
    assert services.get(_Closable) is not closable


def test_threads_racing_for_a_service_get_the_same_one():
    services, seen, start = Services(), [], threading.Barrier(8)

    def take() -> None:
        start.wait()
        seen.append(services.get(_Plain))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and all(item is seen[0] for item in seen)


class _Broken:
    def close(self) -> None:
        raise OSError("port still busy")


def test_a_close_that_fails_does_not_keep_the_others_open(capsys):
    services = Services()
    services.get(_Broken)
    closable = services.get(_Closable)  # after the broken one: closed all the same
    services.close()
    assert closable.closed == 1
    assert "closing _Broken failed: port still busy" in capsys.readouterr().err
