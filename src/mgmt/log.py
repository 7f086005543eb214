"""Logging in the write-up's format: ``HH:MM:SS component: message``.

Components get their own logger (``mgmt.<component>``) so ``-v``/``-q`` and tests
can tune them; the format is set once by :func:`setup`.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional, TextIO

ROOT = "mgmt"


class _ComponentFormatter(logging.Formatter):
    """Prints the logger's last name segment as the component."""

    def format(self, record: logging.LogRecord) -> str:
        record.component = record.name.rsplit(".", 1)[-1] if record.name != ROOT else "main"
        return super().format(record)


def get_logger(component: str) -> logging.Logger:
    """The logger for one component, e.g. ``get_logger("engine")``."""
    return logging.getLogger(f"{ROOT}.{component}")


def setup(verbosity: int = 0, stream: Optional[TextIO] = None) -> None:
    """Configure the ``mgmt`` loggers: -1 quiet (warnings), 0 info, 1+ debug."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_ComponentFormatter("%(asctime)s %(component)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger(ROOT)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
