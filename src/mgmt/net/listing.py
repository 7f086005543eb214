"""The HTML index the HTTP server answers for a folder without an index.html."""

import html
import os
import urllib.parse
from pathlib import Path

__all__ = ["html_listing"]


def _shown(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by surrogateescape) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _is_folder(entry: "os.DirEntry[str]") -> bool:
    """Whether to list an entry as a folder. One that cannot be told (a symlink loop,
    ELOOP; a target we may not search) is listed as a file: fetching it answers for
    itself (a 404, a 403), and one such entry must not take the whole listing down."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def html_listing(url_path: str, folder: Path) -> bytes:
    """An HTML index; any file name, even one that is not UTF-8, is escaped for the link
    (its own bytes, percent-encoded, so the link fetches it) and for the text."""
    names = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = entry.name + ("/" if _is_folder(entry) else "")
        href = urllib.parse.quote(os.fsencode(name))
        names.append(f'<a href="{href}">{html.escape(_shown(name))}</a>')
    title = html.escape(_shown(url_path))
    body = "<br>\n".join(names)
    return f"<!DOCTYPE html>\n<title>{title}</title>\n<h1>{title}</h1>\n{body}\n".encode()
