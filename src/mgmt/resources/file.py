"""The file kind: a file's existence, content and mode, kept right as events arrive.

Writes are atomic (see mgmt.resources.atomic), so a crash or a SIGKILL at any
moment leaves either the old file or the new one, never half of one. Content is
compared byte for byte, which stops at the first difference and spares every
agent start the import of hashlib (OpenSSL). A path ending in "/" is a directory.
"""

import contextlib
import os
import stat
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from mgmt.log import one_line

# atomic_write stays importable from here too (bench/engine.py, older tests).
from mgmt.resources.atomic import atomic_write
from mgmt.resources.base import Field, FieldError, Resource, ResourceError
from mgmt.resources.fields import shown
from mgmt.resources.fileattrs import Attrs
from mgmt.resources.fileclaims import FileClaims
from mgmt.resources.filediff import content_diff, note_content
from mgmt.resources.filefragments import check_fragments, clean_fragments, read_fragments
from mgmt.resources.filepath import (
    check_file_fields,
    check_one_line,
    clean_path,
    collected_under,
    folders_above,
    parse_mode,
    resolve_path,
)
from mgmt.resources.fileremove import refuse_protected, remove_tree
from mgmt.resources.filesafe import (
    Opened,
    holds,
    is_device,
    lstat_or_none,
    read_source,
    read_xattrs,
    write_xattrs,
)
from mgmt.resources.filetree import (
    copy_problem,
    real_copy_problem,
    source_problem,
    sync_tree,
    tree_cover,
    tree_fights,
)

DEFAULT_MODE = 0o644
BLOCK = 1 << 20  # compared a block at a time, so a large file is never read whole
# What the watch callback compares to tell our own writes from someone else's:
# everything the kind manages (a chown by someone else is drift too).
Signature = Optional[Tuple[int, int, int, int, int, int]]


def _signature(st: Optional[os.stat_result]) -> Signature:
    if st is None:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid)


class FileRes(Attrs, Resource):
    kind = "file"
    fields = {
        "path": Field(str, doc="absolute path; defaults to the name; ends in / for a directory"),
        "dirname": Field(str, doc="replaces the directory part of path"),
        "basename": Field(str, doc="replaces the last part of path"),
        "content": Field(str, doc="exact content; omitted = content not managed"),
        "source": Field(str, doc="copy content from this file (or tree, with recurse)"),
        "fragments": Field(list, doc="files joined in order as the content (a folder/: its files)"),
        "state": Field(str, default="exists", choices=("exists", "absent")),
        # (str, int): a number gets parse_mode's message, which says to give text.
        "mode": Field((str, int), doc="octal mode, e.g. '0644' (a plain 0644 is read as text)"),
        "recurse": Field(bool, default=False, doc="allow directory trees (copy or remove)"),
        "force": Field(
            bool,
            default=False,
            doc="allow replacing a directory by a file (a system one: with recurse too)",
        ),
        "owner": Field((str, int), doc="user name or uid; applied without following links"),
        "group": Field((str, int), doc="group name or gid; applied without following links"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        check_file_fields(params)
        check_fragments(params)

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        path = os.path.normpath(resolve_path(name, params))
        needs = ["file:" + folder for folder in folders_above(path)]
        # A fragment (or fragment folder) another resource makes is made first, as
        # mgmt orders them; files a folder gains later are seen by the watch.
        needs += ["file:" + os.path.normpath(f) for f in params.get("fragments") or ()]
        if params.get("source"):  # so is a source (file or tree) another resource makes
            needs.append("file:" + os.path.normpath(clean_path(params["source"])))
        return ["file:" + path], needs

    @classmethod
    def covers(cls, name: str, params: Mapping[str, Any]) -> Optional[str]:
        return tree_cover(resolve_path(name, params), params)

    @classmethod
    def fights(
        cls, cover: str, params: Mapping[str, Any], ident: str, other: Mapping[str, Any], here: bool
    ) -> bool:
        return tree_fights(cover, params, ident, other, here)

    @classmethod
    def check_collect_pattern(cls, pattern: str) -> None:
        check_one_line("pattern", pattern)
        if pattern and (not pattern.startswith("/") or ".." in pattern.split("/")):
            raise FieldError(
                "pattern", f"{shown(pattern)} is not an absolute directory without '..' segments"
            )

    @classmethod
    def collected_params(cls, name: str, params: Mapping[str, Any], pattern: str) -> Dict[str, Any]:
        return collected_under(name, params, pattern)

    @classmethod
    def check_here(cls, name: str, params: Mapping[str, Any]) -> None:
        problem = source_problem(resolve_path(name, params), params)
        if problem:
            raise FieldError("source", problem)

    def __init__(self, name: str, params: Mapping[str, Any], meta=None):
        super().__init__(name, params, meta)
        self.path = resolve_path(name, self.params)
        if not self.path.startswith("/"):
            raise FieldError("path", f"{shown(self.path)} must be an absolute path")
        self.is_dir = self.path.endswith("/")
        if self.is_dir and self.params.get("content") is not None:  # was dropped in silence
            raise FieldError("content", f"{self.path} is a directory (it ends in /): no content")
        self.path = os.path.normpath(self.path)
        # Every way this resource could remove a tree, checked where the path is known.
        refused = refuse_protected(self.path, self.params, self.is_dir)
        if refused:
            raise FieldError(*refused)
        source = self.params.get("source")
        if source:  # compared with the path below and watched: one leading slash
            source = self.params["source"] = clean_path(source)
        if source and (self.is_dir or self.params["recurse"]):
            problem = copy_problem(self.path, source, self.params["force"])
            if problem:
                raise FieldError("source", problem)
        if self.params["state"] == "absent" and self.path == "/":
            raise FieldError("path", "refusing to remove /")
        self.mode_spec = parse_mode(self.params.get("mode"))
        self.fragments = clean_fragments(
            clean_path(self.path), self.is_dir, self.params.get("fragments")
        )
        content = self.params.get("content")
        self.data: Optional[bytes] = None if content is None else content.encode("utf-8")
        self.known: Signature = None
        self.cancels: List[Callable[[], None]] = []

    def watch(self) -> None:
        source = self.params.get("source")
        watcher = self.init.watcher
        if source and (self.is_dir or self.params["recurse"]):
            # A copied tree: a change anywhere in either tree is ours to see.
            self.cancels.append(watcher.watch_tree(self.path, self._changed))
            self.cancels.append(watcher.watch_tree(source, self.init.event))
            return
        self.cancels.append(watcher.watch_path(self.path, self._on_event))
        # Not a device (refused as a source): /dev/null changes all the time, and
        # each change was one more failing check, so the run never converged.
        if source and not is_device(source):  # read through a link: watched where it leads
            self.cancels.append(watcher.watch_target(source, self.init.event))
        for fragment in self.fragments or ():  # a folder's: what it holds, too
            watch = watcher.watch_tree if fragment.endswith("/") else watcher.watch_target
            self.cancels.append(watch(fragment.rstrip("/") or "/", self.init.event))

    def _on_event(self) -> None:
        # Our own writes arrive here too; a stat tells them apart cheaply. One that
        # fails (a symlink loop made on the way) is a change: the check says why.
        try:
            ours = self.known is not None and _signature(lstat_or_none(self.path)) == self.known
        except OSError:
            ours = False
        if not ours:
            self.init.log.debug("event: %s changed on disk", self.path)
            self._changed()

    def _changed(self) -> None:
        self.init.services.get(FileClaims).forget(self.path)  # a link there may have changed
        self.init.event()

    def close(self) -> None:
        for cancel in self.cancels:
            cancel()
        self.cancels.clear()
        self.init.services.get(FileClaims).release(self)

    def say(self, apply: bool, done: str, would: str) -> None:
        """One line for a change: ``would ...`` under noop, else ``done``. Called
        once the change has succeeded, never before: a change that fails is logged
        as the failure alone, not as made and then failed."""
        # A graph's paths hold no control character (refused at load), but the names
        # in a copied tree, or met on the way, are anyone's: a newline there split a
        # log line (and could forge one). Shown escaped, a line about a path stays one.
        self.init.log.info(one_line(done if apply else f"would {would} (noop)"))

    def check_apply(self, apply: bool) -> bool:
        self.known = None
        self.init.services.get(FileClaims).claim(self, self.path)
        try:
            if self.params["state"] == "absent":
                return self._absent(apply)
            # Looked up first, under noop too: an owner this host lacks fails the
            # noop run as it would the real one, whatever else is to change.
            self._owners()
            if self.is_dir or (self.params.get("source") and self.params["recurse"]):
                return self._directory(apply)
            return self._file(apply)
        except OSError as err:
            where = err.filename or self.path
            message = f"{err.strerror or err}: {where}"
            raise ResourceError(repr(self), one_line(message)) from None
        except ResourceError as err:
            raise ResourceError(err.resource, one_line(err.message)) from None

    def _write(
        self,
        data: bytes,
        mode: int,
        owner: Tuple[Optional[int], Optional[int]] = (None, None),
        xattrs: Optional[Dict[str, bytes]] = None,
    ) -> None:
        """Atomically put ``data`` at the path, with its owner and the kept xattrs
        set on the new file before it takes the name (a link there is replaced,
        never written through)."""

        def remember(st: os.stat_result) -> None:
            self.known = _signature(st)

        def prepare(fd: int) -> None:
            uid, gid = owner
            st = os.fstat(fd)
            if (uid is not None and uid != st.st_uid) or (gid is not None and gid != st.st_gid):
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            refused = write_xattrs(fd, xattrs or {})
            if refused:
                self.init.log.warning("%s: could not keep %s", self.path, ", ".join(refused))

        atomic_write(self.path, data, mode, remember, prepare)

    def _absent(self, apply: bool) -> bool:
        st = lstat_or_none(self.path)
        if st is None:
            return True
        self.note("state", "absent", "exists")
        if stat.S_ISDIR(st.st_mode) and not self.params["recurse"]:
            message = f"{self.path} is a directory; set recurse: true to remove it"
            raise ResourceError(repr(self), message)
        if apply:
            # remove_tree checks where the path leads now and never follows a
            # link; unlink removes a link itself, never its target.
            if stat.S_ISDIR(st.st_mode):
                remove_tree(self, self.path)
            else:
                os.unlink(self.path)
        self.say(apply, f"removed {self.path}", f"remove {self.path}")
        return False

    def _wanted(self) -> Optional[bytes]:
        """The content to hold: ``content``, the source file's, or None (not managed)."""
        source = self.params.get("source")
        if source is None and self.fragments is None:
            return self.data
        try:
            return read_source(source) if source else read_fragments(self.fragments or [])
        except ValueError as err:
            raise ResourceError(repr(self), str(err)) from None

    def _file(self, apply: bool) -> bool:
        data = self._wanted()
        with Opened(self.path) as there:
            st = there.st
            if st is not None and stat.S_ISDIR(st.st_mode):
                if not self.params["force"]:
                    message = f"{self.path} is a directory; set force: true to replace it"
                    raise ResourceError(repr(self), message)
                self.note("type", "file", "directory")
                if apply:
                    there.close()
                    remove_tree(self, self.path)  # guarded: / and system trees refused
                self.say(apply, f"replaced directory {self.path}", f"replace directory {self.path}")
                if not apply:
                    return False
                st = None
            if st is None:
                self.note("state", "exists", "absent")
                if not apply and data:  # what it would hold, as a diff from nothing
                    diff = content_diff(self.path, b"", data, 0)
                    self.note("content", f"{len(data)} bytes", None, diff)
                    self.init.log.info("content would be:\n%s", diff.rstrip("\n"))
                if apply:
                    if not os.path.isdir(os.path.dirname(self.path)):
                        os.makedirs(os.path.dirname(self.path), exist_ok=True)
                    mode = self._mode(None, self._copied_mode(DEFAULT_MODE))
                    self._write(data or b"", mode, self._owners())
                self.say(apply, f"created {self.path}", f"create {self.path}")
                return False
            if there.fd is None:
                return self._replace_special(there, data, apply)
            return self._regular(there.fd, st, data, apply)

    def _replace_special(self, there: Opened, data: Optional[bytes], apply: bool) -> bool:
        """A link (or a FIFO, socket, device) at the path: replaced when content is
        managed, else refused; never followed."""
        what = "a symbolic link" if there.is_link else "not a regular file"
        self.note("type", "file", "symlink" if there.is_link else "special")
        if data is None:
            message = f"{self.path} is {what}; the file kind never acts through it (set content)"
            raise ResourceError(repr(self), message)
        if apply:
            self._write(data, self._mode(None, self._copied_mode(DEFAULT_MODE)), self._owners())
        self.say(apply, f"replaced {what} at {self.path}", f"replace {what} at {self.path}")
        return False

    def _regular(self, fd: int, st: os.stat_result, data: Optional[bytes], apply: bool) -> bool:
        """Check (and fix) the regular file open as ``fd``: what was checked is what changes."""
        ok = True
        if data is not None and (st.st_size != len(data) or not holds(fd, data)):
            note_content(self, fd, st, data, apply)
            if apply:  # the new file gets the wanted owner and mode with it
                uid, gid = self._owners()
                # A rewrite keeps the file's mode, as `cp` onto a file does: a copy
                # made before with another mode does not change without a word.
                have = stat.S_IMODE(st.st_mode)
                mode = self._mode(have, have)
                keep = (st.st_uid if uid is None else uid, st.st_gid if gid is None else gid)
                self._write(data, mode, keep, read_xattrs(fd))
            self.say(apply, f"wrote content of {self.path}", f"rewrite content of {self.path}")
            if apply:
                return False
            ok = False  # noop: the owner and mode are reported too
        ok = self._attrs(fd, st, apply) and ok
        if not ok:
            if apply:
                self.known = _signature(os.fstat(fd))
            return False
        after = lstat_or_none(self.path)
        # Remember what we checked, unless it moved under our feet while we read.
        self.known = _signature(st) if _signature(after) == _signature(st) else None
        return True

    def _directory(self, apply: bool) -> bool:
        source = self.params.get("source")
        if source and not os.path.isdir(source):
            # Before anything is made or replaced: a copy that cannot start must
            # not leave an empty folder where there was none (or a file was).
            raise ResourceError(repr(self), f"source {source} is not a directory (missing?)")
        problem = source and real_copy_problem(self.path, source, self.params["force"])
        if problem:  # a link made since the graph was read: before anything is made
            raise ResourceError(repr(self), problem)
        ok = True
        st = lstat_or_none(self.path)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            if not self.params["force"]:
                message = f"{self.path} is not a directory; set force: true to replace it"
                raise ResourceError(repr(self), message)
            ok = False
            self.note("type", "directory", "file")
            if apply:
                os.unlink(self.path)  # a link goes, never its target
            self.say(apply, f"replaced {self.path} by a directory", f"replace {self.path}")
            st = None
        if st is None:
            ok = False
            self.note("state", "exists", "absent")
            if apply:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                # Made no wider than asked (umask may narrow it; fixed just below): a
                # 0700 folder is never 0755 for a moment, with files going in.
                with contextlib.suppress(FileExistsError):
                    os.mkdir(self.path, self._mode(None, 0o777) & 0o777)
            self.say(apply, f"created directory {self.path}", f"create directory {self.path}")
        with Opened(self.path) as there:
            if there.fd is not None and there.st is not None and stat.S_ISDIR(there.st.st_mode):
                ok = self._attrs(there.fd, there.st, apply) and ok
            elif there.st is not None:  # a link swapped in since: never act through it
                raise ResourceError(repr(self), f"{self.path} changed to a link or a file")
        if source:  # under noop too where the folder is yet to make: each entry is said
            ok = sync_tree(self, source, apply) and ok
        return ok
