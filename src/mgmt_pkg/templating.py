"""One Jinja2 set-up for everything mgmt-pkg renders (specs, kickstarts).

The templates are plain text for rpm and anaconda, never HTML, so nothing is
autoescaped, a missing variable is an error rather than an empty string, and
the trailing newline is kept. Compiled templates are cached on disk: compiling
costs more than rendering (about 30 ms for the phony spec), and ``fake-rpm``
is measured against bare rpmbuild.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

if TYPE_CHECKING:
    import jinja2

__all__ = ["TEMPLATES", "environment"]

# templates/ at the top of the repository, linked as mgmt_pkg/templates so it ships in the wheel.
TEMPLATES = Path(__file__).resolve().parent / "templates"


def environment(search: Sequence[Union[str, Path]] = (TEMPLATES,)) -> jinja2.Environment:
    """A Jinja2 environment over ``search`` (imported here: jinja2 costs ~30 ms)."""
    import jinja2

    return jinja2.Environment(
        # A plain directory (mgmt_pkg is not zip-safe): PackageLoader costs more imports.
        loader=jinja2.FileSystemLoader([str(path) for path in search]),
        # A per-user directory under the system temp dir, made 0700 and checked by Jinja2.
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
