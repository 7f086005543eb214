"""Upload progress: a click progress bar fed by requests-toolbelt's multipart monitor."""

from __future__ import annotations

import sys
import time
from typing import IO, Optional

import click

__all__ = ["UploadProgress"]


class UploadProgress:
    """A ``progress_callback`` for copr's build_proxy: called with the monitor as bytes go out.

    The bar is made on the first call, when the encoder knows the body's length.
    On a terminal it redraws in place; elsewhere click prints the label once.
    """

    def __init__(self, label: str, file: Optional[IO[str]] = None):
        self.label = label
        self.file = file or sys.stderr
        self.sent = 0
        self.total = 0
        self.moved = time.monotonic()  # when the last bytes went out
        self._bar = None
        self._closed = False

    def moved_at(self) -> float:
        return self.moved

    def __call__(self, monitor) -> None:
        if self._closed:  # an upload given up on, still running in its thread
            return
        if self._bar is None:
            self.total = int(monitor.len)
            self._bar = click.progressbar(
                length=self.total, label=self.label, file=self.file, show_pos=False
            )
            self._bar.__enter__()
        step = int(monitor.bytes_read) - self.sent
        if step > 0:
            self._bar.update(step)
            self.sent += step
            self.moved = time.monotonic()

    def close(self) -> None:
        self._closed = True
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
