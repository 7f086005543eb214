"""The file kind's owner, group and mode: looked up by name on this host, checked and
fixed on what is open (fchown/fchmod), never by name; a part of FileRes.

A mixin: it uses the resource's ``params``, ``path``, ``mode``, ``note`` and ``say``.
"""

import os
import stat
from typing import Any, Dict, Optional, Tuple

from mgmt.resources.base import ResourceError
from mgmt.resources.filepath import ModeSpec, wanted_mode
from mgmt.resources.filesafe import parse_owner, shown_owner


class Attrs:
    """Owner, group and mode handling for FileRes (see the module docstring)."""

    params: Dict[str, Any]
    path: str
    mode_spec: Optional[ModeSpec]

    def _mode(self, current: Optional[int], default: int) -> int:
        """The mode to give a file whose mode is ``current`` (None: one being made):
        the graph's, else ``default``. A symbolic one keeps the bits of subjects it
        does not name: of a file being made, its default's, as mgmt's chmod after
        the file is made does ('go=r' made a new file 0044, its owner locked out)."""
        wanted = wanted_mode(self.mode_spec, default if current is None else current)
        return default if wanted is None else wanted

    def _copied_mode(self, default: int) -> int:
        """A source file's mode for a file made from it, as a tree copy's and mgmt's
        copy do (a copied script stays executable); ``default`` without one."""
        source = self.params.get("source")
        try:
            return stat.S_IMODE(os.stat(source).st_mode) if source else default
        except OSError:  # gone since it was read: the content was, keep what is known
            return default

    def _owners(self) -> Tuple[Optional[int], Optional[int]]:
        """The wanted (uid, gid), looked up now (None where not managed)."""
        try:
            return (
                parse_owner("owner", self.params.get("owner")),
                parse_owner("group", self.params.get("group")),
            )
        except KeyError as err:
            raise ResourceError(repr(self), err.args[0]) from None

    def _attrs(self, fd: int, st: os.stat_result, apply: bool) -> bool:
        """Check (and fix) owner, group and mode of what is open as ``fd`` (a file or a
        directory opened without following links): fchown/fchmod, never by name."""
        ok = True
        uid, gid = self._owners()
        if (uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid):
            ok = False
            self._note_owner(st, uid, gid)
            if apply:
                # chown clears set-id bits: the mode is checked afterwards.
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
                st = os.fstat(fd)
            self.say(apply, f"set owner of {self.path}", f"set owner of {self.path}")
        have = stat.S_IMODE(st.st_mode)
        want = wanted_mode(self.mode_spec, have)
        if want is not None and have != want:
            ok = False
            self.note("mode", f"{want:04o}", f"{have:04o}")
            if apply:
                os.fchmod(fd, want)
            change = f"set mode {want:04o} on {self.path}"
            self.say(apply, change, change)
        return ok

    def _note_owner(self, st: os.stat_result, uid: Optional[int], gid: Optional[int]) -> None:
        for field, want, have in (("owner", uid, st.st_uid), ("group", gid, st.st_gid)):
            if want is not None and have != want:  # in the graph's words: a name if it gave one
                self.note(field, *shown_owner(field, self.params[field], have))
