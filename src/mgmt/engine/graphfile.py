"""The agent's graph file, watched by its name and, when that name is a symlink, by
the file it points to.

Editors (vim, sed -i, most others) save by writing a new file and renaming it over
the old one, in the old one's folder. For a graph given as a symlink that folder is
the target's, which the link's own folder never hears of: the link's name alone
would miss every such save. A new target (the link itself changed) is followed.
"""

import os
import threading
from typing import Any, Callable, Optional

from mgmt.resources.filepath import real_folder


class GraphFileWatch:
    """Calls ``changed`` (or ``saved``, for a finished write) on any change to the
    graph at ``path``, through its symlink too; :meth:`close` ends it."""

    def __init__(
        self,
        watcher: Any,
        path: str,
        changed: Callable[[], None],
        saved: Callable[[], None],
    ):
        # As the watcher names it (its folder's real path): a graph that is no link
        # is then its own target, and watched once.
        self._path = real_folder(path)
        self._watcher, self._changed, self._saved = watcher, changed, saved
        self._lock = threading.Lock()
        self._closed = False
        self._target: Optional[str] = None
        self._cancel_target: Optional[Callable[[], None]] = None
        self._cancel_name = watcher.watch_path(
            self._path, self._on_name_changed, saved=self._on_name_saved
        )
        self._follow()

    # A link made anew may point elsewhere: followed at each change of the name.
    def _on_name_changed(self) -> None:
        self._follow()
        self._changed()

    def _on_name_saved(self) -> None:
        self._follow()
        self._saved()

    def _follow(self) -> None:
        target = os.path.realpath(self._path)
        with self._lock:
            if self._closed or target == self._target:
                return
            if self._cancel_target is not None:
                self._cancel_target()
                self._cancel_target = None
            self._target = target
            if target != self._path:
                self._cancel_target = self._watcher.watch_path(
                    target, self._changed, saved=self._saved
                )

    def close(self) -> None:
        self._cancel_name()
        with self._lock:
            self._closed = True  # a change under way must not watch the target again
            if self._cancel_target is not None:
                self._cancel_target()
                self._cancel_target = None
