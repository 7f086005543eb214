"""What --noop shows for file content: a unified diff, bounded, binary files named as such."""

import os
from typing import Any, Optional

MAX_COMPARED = 1 << 20  # larger files are summarised by size, not diffed
MAX_LINES = 200  # of diff output; the rest is counted


def _text(data: bytes) -> Optional[str]:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# What splitlines() ends a line at besides "\n" (a "\r\n" ends in "\n": its "\r" is escaped).
_OTHER_BREAKS = ("\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _escaped(text: str) -> str:
    """``text`` with what a terminal would act on (ESC sequences, a carriage return
    overwriting the line) or hide (bidi overrides) escaped: content is the graph's
    or the host's, and the diff goes to the terminal and the log."""
    if text.replace("\t", " ").isprintable():
        return text
    import unicodedata

    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if char != "\t" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs")
        else char
        for char in text
    )


def _one_line(line: str) -> str:
    """A diff line as one terminal line: its break, when not "\n", shown escaped."""
    if line.endswith("\n"):
        return _escaped(line[:-1]) + "\n"
    if line.endswith(_OTHER_BREAKS):
        return _escaped(line) + "\n"
    return _escaped(line) + "\n\\ No newline at end of file\n"


def content_diff(path: str, old: bytes, new: bytes, old_size: Optional[int] = None) -> str:
    """A unified diff from ``old`` to ``new`` (``diff -u`` style, at most MAX_LINES lines),
    or one line saying why there is none (binary, too large). ``old_size``: the
    file's real size, when ``old`` is only its start (read up to MAX_COMPARED + 1)."""
    if len(old) > MAX_COMPARED or len(new) > MAX_COMPARED:
        size = len(old) if old_size is None else old_size
        return f"{path}: {size} bytes -> {len(new)} bytes (too large to diff)"
    before, after = _text(old), _text(new)
    if before is None or after is None:
        return f"Binary files {path} and {path} (new) differ"
    import difflib  # only noop runs pay for it

    lines = list(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=path,
            tofile=f"{path} (new)",
        )
    )
    out = [_one_line(line) for line in lines]
    if len(out) > MAX_LINES:
        out = [*out[:MAX_LINES], f"... {len(out) - MAX_LINES} more lines\n"]
    return "".join(out)


def note_content(res: Any, fd: int, st: os.stat_result, data: bytes, apply: bool) -> None:
    """Note that the file ``res`` manages (open as ``fd``) holds other content than
    ``data``: under noop with a diff (read back, bounded) also in the log, else by size."""
    if apply:
        res.note("content", f"{len(data)} bytes", f"{st.st_size} bytes")
        return
    old = os.pread(fd, MAX_COMPARED + 1, 0)  # enough to tell it is too large
    diff = content_diff(res.path, old, data, st.st_size)
    res.note("content", f"{len(data)} bytes", f"{st.st_size} bytes", diff)
    res.init.log.info("content would change:\n%s", diff.rstrip("\n"))
