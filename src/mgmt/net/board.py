"""Where file resources publish what their server should hand out.

A graph declares a server (``http:server``) and, separately, the files it
serves (``http:server:file``), as mgmt does. The engine builds each resource on
its own and gives none of them a handle on the others, so the two meet here:
file resources publish (URL path, MAC, body) under their server's name, and a
running server is told whenever its set of files changes. Each agent holds one
board in its shared services (``init.services.get(Board)``), so two agents in
one process never see each other's files, and the board outlives graph
reloads.
"""

import threading
from typing import Callable, Dict, List, Optional, Tuple

from mgmt.net.content import MacSelector, OverlayEntry, Source

__all__ = ["Board", "Published"]

# (URL path, MAC or "", body) as one file resource published it.
Published = Tuple[str, str, Source]
_Server = Tuple[str, str]  # (protocol, server name)


class Board:
    """A thread-safe table: server -> file resource -> what it publishes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notifying = threading.Lock()
        self._files: Dict[_Server, Dict[str, Published]] = {}
        self._listeners: Dict[_Server, Callable[[Dict[str, OverlayEntry]], None]] = {}
        # File resources waiting to hear that their server went away (see on_detach).
        self._waiting: Dict[_Server, List[Callable[[], None]]] = {}

    def publish(self, protocol: str, server: str, owner: str, entry: Published) -> None:
        with self._lock:
            self._files.setdefault((protocol, server), {})[owner] = entry
        self._notify((protocol, server))

    def withdraw(self, protocol: str, server: str, owner: str) -> None:
        with self._lock:
            removed = self._files.get((protocol, server), {}).pop(owner, None)
        if removed is not None:
            self._notify((protocol, server))

    def published(self, protocol: str, server: str, owner: str) -> Optional[Published]:
        with self._lock:
            return self._files.get((protocol, server), {}).get(owner)

    def attach(
        self, protocol: str, server: str, listener: Callable[[Dict[str, OverlayEntry]], None]
    ) -> None:
        """A running server: called now and after every change with its overlay."""
        with self._lock:
            self._listeners[(protocol, server)] = listener
        self._notify((protocol, server))

    def detach(self, protocol: str, server: str, listener: Callable) -> None:
        with self._lock:
            # ==, not is: each ``server.set_overlay`` is a new bound method, equal to
            # the one attached but never the same object (with ``is`` the server
            # stayed attached for good, and its files looked served).
            if self._listeners.get((protocol, server)) != listener:
                return
            del self._listeners[(protocol, server)]
            waiting = list(self._waiting.get((protocol, server), ()))
        for callback in waiting:  # outside the lock: a callback may well ask the board
            callback()

    def on_detach(
        self, protocol: str, server: str, callback: Callable[[], None]
    ) -> Callable[[], None]:
        """Call ``callback`` whenever the running server of that name stops (removed,
        renamed or replaced by a graph edit); returns the function that cancels it.

        A file resource's files are kept on the board for a server that comes
        back, but the resource must check again: with no server it has failed.
        """
        with self._lock:
            self._waiting.setdefault((protocol, server), []).append(callback)

        def cancel() -> None:
            with self._lock:
                waiting = self._waiting.get((protocol, server), [])
                if callback in waiting:
                    waiting.remove(callback)
                if not waiting:
                    self._waiting.pop((protocol, server), None)

        return cancel

    def attached(self, protocol: str, server: str) -> bool:
        with self._lock:
            return (protocol, server) in self._listeners

    def overlay(self, protocol: str, server: str) -> Dict[str, OverlayEntry]:
        """URL path -> body; paths with MAC-specific entries become a MacSelector."""
        with self._lock:
            entries = sorted(self._files.get((protocol, server), {}).items())
        plain: Dict[str, Source] = {}
        by_mac: Dict[str, Dict[str, Source]] = {}
        for _owner, (path, mac, source) in entries:
            if mac:
                by_mac.setdefault(path, {})[mac] = source
            else:
                plain[path] = source
        overlay: Dict[str, OverlayEntry] = dict(plain)
        for path, table in by_mac.items():
            overlay[path] = MacSelector(table, plain.get(path))
        return overlay

    def _notify(self, key: _Server) -> None:
        # One notification at a time, each computing the overlay afresh: the
        # last call a listener gets always carries the newest set of files.
        with self._notifying:
            with self._lock:
                listener = self._listeners.get(key)
            if listener is not None:
                listener(self.overlay(*key))
