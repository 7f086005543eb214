"""Importing etcd3gw without paying for the parts the agent never runs.

``import etcd3gw`` imports futurist at once (``etcd3gw.utils``), and futurist
imports debtcollector, wrapt and asyncio: about a third of etcd3gw's import
time, spent on every agent start, for thread pools that only etcd3gw's own
watch uses (we watch with :mod:`mgmt.world.watch`). So futurist is imported
lazily: a stand-in module takes its place until something reads one of its
attributes, and then the real futurist is imported and answers, so etcd3gw
behaves exactly as before, only its first watch pays the import.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from typing import Any

# Imported by etcd3gw at import time, used only by its watch.
DEFERRED = ("futurist",)

_lock = threading.Lock()


class _Deferred(types.ModuleType):
    """Stands in for a module until first use, then hands over to the real one."""

    def __getattr__(self, attr: str) -> Any:  # only for names not found otherwise
        if attr.startswith("__"):
            raise AttributeError(attr)  # import machinery probing: not a use
        return getattr(_load(self.__name__), attr)


def _load(name: str) -> types.ModuleType:
    with _lock:
        module = sys.modules.get(name)
        if isinstance(module, _Deferred):
            del sys.modules[name]
            module = None
        if module is None:
            module = importlib.import_module(name)
        return module


def import_etcd3gw() -> types.ModuleType:
    """``import etcd3gw``, with :data:`DEFERRED` imported on first use only."""
    with _lock:
        if "etcd3gw" not in sys.modules:
            for name in DEFERRED:
                sys.modules.setdefault(name, _Deferred(name))
    import etcd3gw

    return etcd3gw
