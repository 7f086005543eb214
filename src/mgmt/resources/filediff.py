"""What --noop shows for file content: a unified diff, bounded, binary files named as such."""

from typing import Optional

MAX_COMPARED = 1 << 20  # larger files are summarised by size, not diffed
MAX_LINES = 200  # of diff output; the rest is counted


def _text(data: bytes) -> Optional[str]:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


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
    out = [
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    ]
    if len(out) > MAX_LINES:
        out = [*out[:MAX_LINES], f"... {len(out) - MAX_LINES} more lines\n"]
    return "".join(out)
