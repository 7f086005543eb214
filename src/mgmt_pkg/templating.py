"""One Jinja2 set-up for everything mgmt-pkg renders (specs, kickstarts).

The templates are plain text for rpm and anaconda, never HTML, so nothing is
autoescaped, a missing variable is an error rather than an empty string, and
the trailing newline is kept. Compiled templates are cached on disk: compiling
costs more than rendering (about 30 ms for the phony spec), and ``fake-rpm``
is measured against bare rpmbuild. A template file that cannot be read (not
UTF-8, no permission) is bad input naming the file, wherever it is included.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.paths import not_utf8

if TYPE_CHECKING:
    import jinja2

__all__ = ["TEMPLATES", "TemplateUnreadable", "environment"]

# templates/ at the top of the repository, linked as mgmt_pkg/templates so it ships in the wheel.
TEMPLATES = Path(__file__).resolve().parent / "templates"


class TemplateUnreadable(InvalidInput):
    """A template, maybe one another includes, is missing or cannot be read.

    Raised from inside the including template's render: its traceback says
    which template and line asked for it.
    """


def environment(search: Sequence[Union[str, Path]] = (TEMPLATES,)) -> jinja2.Environment:
    """A Jinja2 environment over ``search`` (imported here: jinja2 costs ~30 ms)."""
    import jinja2

    class CheckedLoader(jinja2.FileSystemLoader):
        """Jinja2's loader lets UnicodeDecodeError and OSError out without the file's name."""

        def get_source(self, environment: jinja2.Environment, template: str) -> Any:
            try:
                return super().get_source(environment, template)
            except UnicodeDecodeError as error:  # Jinja2 decodes the whole file
                bad = not_utf8(f"template {self._file(template)}", error)
                raise TemplateUnreadable(str(bad)) from None
            except jinja2.TemplateNotFound:  # an OSError too, but saying no more than the name
                folders = ", ".join(self.searchpath)
                raise TemplateUnreadable(f"template {template}: not found in {folders}") from None
            except OSError as error:
                where = self._file(template)
                reason = error.strerror or str(error)
                raise TemplateUnreadable(f"template {where}: cannot read: {reason}") from None

        def _file(self, template: str) -> str:
            """The file Jinja2 found for ``template`` (first in the search path)."""
            for folder in self.searchpath:
                candidate = os.path.join(folder, *template.split("/"))
                if os.path.isfile(candidate):
                    return candidate
            return template

    return jinja2.Environment(
        # A plain directory (mgmt_pkg is not zip-safe): PackageLoader costs more imports.
        loader=CheckedLoader([str(path) for path in search]),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _bytecode_cache() -> Optional[jinja2.BytecodeCache]:
    """Jinja2's cache in a per-user directory under the system temp dir, made
    0700 and checked by Jinja2; None (compile every time) where it cannot be.

    The cache only saves time: a name in the temp dir that another user took
    first (Jinja2 refuses it as unsafe, with a RuntimeError), or a temp dir
    that is full, must not stop a render.
    """
    import jinja2

    class BestEffortCache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):  # not kept: compiled again next time
                super().dump_bytecode(bucket)

    try:
        return BestEffortCache()
    except (RuntimeError, OSError):
        return None
