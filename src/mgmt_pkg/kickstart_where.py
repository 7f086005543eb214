"""Where a kickstart template failed, as the user knows its files.

Jinja2 rewrites the traceback of a failed render so that each template line
taking part is a frame named by the template's file; these read it back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

__all__ = ["endless", "failed_at", "shown_as"]

# The name Jinja2 gives, in a rewritten traceback, to the frame of a template's top level.
_JINJA_TOP_LEVEL = "top-level template code"


def endless(template: str, error: RecursionError) -> str:
    """Say which includes (or macros) called themselves without end, from the traceback.

    Jinja2 rewrites the traceback of a failed render so that each template's
    top level is one frame carrying its file and line: the includes from the
    first template to the first one seen twice make the cycle.
    """
    chain: List[str] = []
    files: List[str] = []
    trace = error.__traceback__
    while trace is not None:
        code = trace.tb_frame.f_code
        if code.co_name == _JINJA_TOP_LEVEL:
            chain.append(f"{Path(code.co_filename).name}:{trace.tb_lineno}")
            if code.co_filename in files:
                break
            files.append(code.co_filename)
        trace = trace.tb_next
    if len(chain) < 2:
        return f"{template}: rendering recurses without end (a macro that calls itself?)"
    chain[-1] = chain[-1].rsplit(":", 1)[0]  # where the cycle closes: the file is enough
    return f"{template}: the includes never end: {' -> '.join(chain)}"


def failed_at(template: str, search: List[str], error: BaseException) -> str:
    """``FILE:LINE`` of the template line where ``error`` was raised, or ``FILE``.

    Jinja2 rewrites the traceback of a failed render so that each template line
    taking part is a frame named by the template's file: the deepest one is where
    it failed (maybe in an included file, named then as it was included).
    """
    found = None
    trace = error.__traceback__
    while trace is not None:
        filename = trace.tb_frame.f_code.co_filename
        if not filename.endswith(".py"):
            shown = shown_as(template, search, filename)
            if shown is not None:
                found = f"{shown}:{trace.tb_lineno}"
        trace = trace.tb_next
    return found or template


def shown_as(template: str, search: List[str], filename: str) -> Optional[str]:
    """``filename`` as the user knows it: ``template`` as given, an included file
    as it was included; None if it is in none of the ``search`` folders."""
    if filename == str(Path(template).resolve()):
        return template
    for folder in search:
        if filename.startswith(folder.rstrip(os.sep) + os.sep):
            return os.path.relpath(filename, folder)
    return None
