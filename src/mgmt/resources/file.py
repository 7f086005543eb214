"""The file kind: a file's existence, content and mode, kept right as events arrive.

Writes are atomic (see mgmt.resources.atomic), so a crash or a SIGKILL at any
moment leaves either the old file or the new one, never half of one. Content is
compared byte for byte, which stops at the first difference and spares every
agent start the import of hashlib (OpenSSL). A path ending in "/" is a directory.
"""

from __future__ import annotations

import os
import stat
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

# atomic_write stays importable from here too (bench/engine.py, older tests).
from mgmt.resources.atomic import atomic_write
from mgmt.resources.base import Field, FieldError, Resource, ResourceError

DEFAULT_MODE = 0o644
BLOCK = 1 << 20  # compared a block at a time, so a large file is never read whole
# What the watch callback compares to tell our own writes from someone else's.
Signature = Optional[Tuple[int, int, int, int]]


def _rmtree(path: str) -> None:
    import shutil  # rarely needed: not worth every agent's start-up

    shutil.rmtree(path)


def parse_mode(value: Any) -> Optional[int]:
    """ "0644" / "644" / 420 -> 0o644; None stays None."""
    if value is None:
        return None
    if isinstance(value, int):
        mode = value
    else:
        try:
            mode = int(value, 8)
        except ValueError:
            raise FieldError("mode", f"{value!r} is not an octal mode like '0644'") from None
    if not 0 <= mode <= 0o7777:
        raise FieldError("mode", f"{value!r} is out of range")
    return mode


def resolve_path(name: str, params: Mapping[str, Any]) -> str:
    """mgmt's rule: ``dirname`` replaces the directory of ``path``, ``basename`` its last part."""
    path = params.get("path") or name
    dirname, basename = params.get("dirname") or "", params.get("basename") or ""
    if not dirname and not basename:
        return path
    head, tail = os.path.split(path)
    head = head + "/" if head and not head.endswith("/") else head
    if not dirname:
        dirname = head
    if not dirname.endswith("/"):
        dirname += "/"
    return dirname + (basename or tail)


def _check_basename(basename: Optional[str]) -> None:
    """A basename is one name: no '/', and never '.' or '..' (which would climb out)."""
    if basename and ("/" in basename or basename in (".", "..")):
        raise FieldError("basename", f"{basename!r} must be a single name, without '/'")


def _signature(st: Optional[os.stat_result]) -> Signature:
    if st is None:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)


def _lstat(path: str) -> Optional[os.stat_result]:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _holds(path: str, data: bytes) -> bool:
    """Whether the file at ``path`` holds exactly ``data``."""
    with open(path, "rb") as handle:
        view = memoryview(data)
        offset = 0
        for block in iter(lambda: handle.read(BLOCK), b""):
            if view[offset : offset + len(block)] != block:
                return False
            offset += len(block)
    return offset == len(data)


def _same_files(first: str, second: str) -> bool:
    with open(first, "rb") as one, open(second, "rb") as other:
        if os.fstat(one.fileno()).st_size != os.fstat(other.fileno()).st_size:
            return False
        for block in iter(lambda: one.read(BLOCK), b""):
            if other.read(len(block)) != block:
                return False
    return True


class FileRes(Resource):
    kind = "file"
    fields = {
        "path": Field(str, doc="absolute path; defaults to the name; ends in / for a directory"),
        "dirname": Field(str, doc="replaces the directory part of path"),
        "basename": Field(str, doc="replaces the last part of path"),
        "content": Field(str, doc="exact content; omitted = content not managed"),
        "source": Field(str, doc="copy content from this file (or tree, with recurse)"),
        "state": Field(str, default="exists", choices=("exists", "absent")),
        "mode": Field((str, int), doc="octal mode, e.g. '0644'"),
        "recurse": Field(bool, default=False, doc="allow directory trees (copy or remove)"),
        "force": Field(bool, default=False, doc="allow replacing a directory by a file"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        parse_mode(params.get("mode"))
        if params.get("content") is not None and params.get("source") is not None:
            raise FieldError("source", "give content or source, not both")
        for key in ("path", "source"):
            value = params.get(key)
            if value is not None and not value.startswith("/"):
                raise FieldError(key, f"{value!r} must be an absolute path")
        dirname = params.get("dirname")
        if dirname is not None and not dirname.startswith("/"):
            raise FieldError("dirname", f"{dirname!r} must be an absolute path")
        _check_basename(params.get("basename"))

    @classmethod
    def autoedges(cls, name: str, params: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
        path = os.path.normpath(resolve_path(name, params))
        needs = []
        parent = os.path.dirname(path)
        while parent and parent != "/":
            needs.append("file:" + parent)
            parent = os.path.dirname(parent)
        return ["file:" + path], needs

    @classmethod
    def collected_params(cls, name: str, params: Mapping[str, Any], pattern: str) -> Dict[str, Any]:
        """The pattern directory plus the last part of the exporter's path, nothing else.

        What arrives was written by another host: its basename and path must not
        lead out of the pattern (``../../etc/cron.d/x``) or onto the pattern
        directory itself (``path: /x/``, which state: absent would remove).
        """
        out = dict(params)
        if not pattern:
            return out
        _check_basename(params.get("basename"))
        exported = resolve_path(name, params)
        last = os.path.basename(os.path.normpath(exported))
        directory = os.path.normpath(pattern)
        path = os.path.join(directory, last)
        if last in ("", ".", "..") or os.path.dirname(os.path.normpath(path)) != directory:
            raise FieldError("path", f"{exported!r} does not fit under the pattern {pattern!r}")
        out.pop("dirname", None)
        out.pop("basename", None)
        out["path"] = path + "/" if exported.endswith("/") else path
        return out

    def __init__(self, name: str, params: Mapping[str, Any], meta=None):
        super().__init__(name, params, meta)
        self.path = resolve_path(name, self.params)
        if not self.path.startswith("/"):
            raise FieldError("path", f"{self.path!r} must be an absolute path")
        self.is_dir = self.path.endswith("/")
        self.path = os.path.normpath(self.path)
        if self.params["state"] == "absent" and os.path.realpath(self.path) == "/":
            raise FieldError("path", "refusing to remove /")
        self.mode = parse_mode(self.params.get("mode"))
        content = self.params.get("content")
        self.data: Optional[bytes] = None if content is None else content.encode("utf-8")
        self.known: Signature = None
        self.cancels: List[Callable[[], None]] = []

    def watch(self) -> None:
        source = self.params.get("source")
        watcher = self.init.watcher
        if source and (self.is_dir or self.params["recurse"]):
            # A copied tree: a change anywhere in either tree is ours to see.
            self.cancels.append(watcher.watch_tree(self.path, self.init.event))
            self.cancels.append(watcher.watch_tree(source, self.init.event))
            return
        self.cancels.append(watcher.watch_path(self.path, self._on_event))
        if source:
            self.cancels.append(watcher.watch_path(source, self.init.event))

    def _on_event(self) -> None:
        # Our own writes arrive here too; a stat tells them apart cheaply.
        if _signature(_lstat(self.path)) != self.known or self.known is None:
            self.init.log.debug("event: %s changed on disk", self.path)
            self.init.event()

    def close(self) -> None:
        for cancel in self.cancels:
            cancel()
        self.cancels.clear()

    def say(self, apply: bool, done: str, would: str) -> None:
        self.init.log.info(done if apply else f"would {would} (noop)")

    def check_apply(self, apply: bool) -> bool:
        self.known = None
        try:
            if self.params["state"] == "absent":
                return self._absent(apply)
            if self.is_dir or (self.params.get("source") and self.params["recurse"]):
                return self._directory(apply)
            return self._file(apply)
        except OSError as err:
            where = err.filename or self.path
            raise ResourceError(repr(self), f"{err.strerror or err}: {where}") from None

    def _write(self, data: bytes, mode: int) -> None:
        def remember(st: os.stat_result) -> None:
            self.known = _signature(st)

        atomic_write(self.path, data, mode, remember)

    def _absent(self, apply: bool) -> bool:
        if os.path.realpath(self.path) == "/":
            raise ResourceError(repr(self), "refusing to remove /")
        st = _lstat(self.path)
        if st is None:
            return True
        if stat.S_ISDIR(st.st_mode) and not self.params["recurse"]:
            message = f"{self.path} is a directory; set recurse: true to remove it"
            raise ResourceError(repr(self), message)
        self.say(apply, f"removed {self.path}", f"remove {self.path}")
        if apply:
            if stat.S_ISDIR(st.st_mode):
                _rmtree(self.path)
            else:
                os.unlink(self.path)
        return False

    def _wanted(self) -> Optional[bytes]:
        """The content to hold: ``content``, the source file's, or None (not managed)."""
        source = self.params.get("source")
        if source is None:
            return self.data
        with open(source, "rb") as handle:
            return handle.read()

    def _file(self, apply: bool) -> bool:
        data = self._wanted()
        before = _lstat(self.path)
        if before is not None and stat.S_ISDIR(before.st_mode):
            if not self.params["force"]:
                message = f"{self.path} is a directory; set force: true to replace it"
                raise ResourceError(repr(self), message)
            self.say(apply, f"replaced directory {self.path}", f"replace directory {self.path}")
            if not apply:
                return False
            _rmtree(self.path)
            before = None
        if before is None:
            self.say(apply, f"created {self.path}", f"create {self.path}")
            if apply:
                if not os.path.isdir(os.path.dirname(self.path)):
                    os.makedirs(os.path.dirname(self.path), exist_ok=True)
                mode = self.mode if self.mode is not None else DEFAULT_MODE
                self._write(data or b"", mode)
            return False
        ok = True
        size = len(data or b"")
        if data is not None and (before.st_size != size or not _holds(self.path, data)):
            ok = False
            self.say(apply, f"wrote content of {self.path}", f"rewrite content of {self.path}")
            if apply:
                mode = self.mode if self.mode is not None else stat.S_IMODE(before.st_mode)
                self._write(data or b"", mode)
                return False
        if self.mode is not None and stat.S_IMODE(before.st_mode) != self.mode:
            ok = False
            self.say(apply, f"set mode {self.mode:04o} on {self.path}", f"set mode {self.mode:04o}")
            if apply:
                os.chmod(self.path, self.mode)
                self.known = _signature(_lstat(self.path))
                return False
        after = _lstat(self.path)
        # Remember what we checked, unless it moved under our feet while we read.
        self.known = _signature(before) if _signature(after) == _signature(before) else None
        return ok

    def _directory(self, apply: bool) -> bool:
        ok = True
        st = _lstat(self.path)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            if not self.params["force"]:
                message = f"{self.path} is not a directory; set force: true to replace it"
                raise ResourceError(repr(self), message)
            ok = False
            self.say(apply, f"replaced {self.path} by a directory", f"replace {self.path}")
            if apply:
                os.unlink(self.path)
            st = None
        if st is None:
            ok = False
            self.say(apply, f"created directory {self.path}", f"create directory {self.path}")
            if apply:
                os.makedirs(self.path, exist_ok=True)
        current = _lstat(self.path)
        if (
            self.mode is not None
            and current is not None
            and stat.S_IMODE(current.st_mode) != self.mode
        ):
            ok = False
            self.say(apply, f"set mode {self.mode:04o}", f"set mode {self.mode:04o}")
            if apply:
                os.chmod(self.path, self.mode)
        source = self.params.get("source")
        if source and (apply or st is not None):
            ok = self._sync_tree(source, apply) and ok
        return ok

    def _sync_tree(self, source: str, apply: bool) -> bool:
        """Make the tree at path hold what source holds (extra files go only with force)."""
        ok = True
        for folder, dirs, files in os.walk(source):
            rel = os.path.relpath(folder, source)
            target_dir = os.path.normpath(os.path.join(self.path, rel))
            if not os.path.isdir(target_dir):
                ok = False
                if not apply:
                    continue
                os.makedirs(target_dir, exist_ok=True)
            for name in files:
                src, dst = os.path.join(folder, name), os.path.join(target_dir, name)
                st = _lstat(dst)
                if st is not None and _same_files(src, dst):
                    continue
                ok = False
                self.say(apply, f"copied {dst}", f"copy {dst}")
                if apply:
                    with open(src, "rb") as handle:
                        atomic_write(dst, handle.read(), stat.S_IMODE(os.stat(src).st_mode))
            if self.params["force"] and os.path.isdir(target_dir):
                wanted = set(dirs) | set(files)
                for extra in sorted(set(os.listdir(target_dir)) - wanted):
                    ok = False
                    gone = os.path.join(target_dir, extra)
                    self.say(apply, f"removed {gone}", f"remove {gone}")
                    if apply:
                        _rmtree(gone) if os.path.isdir(gone) else os.unlink(gone)
        return ok
