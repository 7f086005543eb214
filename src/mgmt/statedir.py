"""Where a run keeps its state: --prefix DIR, or a private temp dir with --tmp-prefix.

One helper for the agent (``mgmt run --file``) and the initiator of
``--remote`` (which keeps its etcd under ``<prefix>/initiator``).
"""

import contextlib
import os
from typing import Iterator

from mgmt.errors import MgmtError
from mgmt.settings import Settings


@contextlib.contextmanager
def state_dir(settings: Settings, sub: str = "") -> Iterator[str]:
    """A private temporary directory (mode 0700, removed at exit), or ``--prefix``/``sub``."""
    if settings.tmp_prefix:
        # Imported here: a remote agent, given --prefix, starts without them.
        import shutil
        import tempfile

        try:
            path = tempfile.mkdtemp(prefix="mgmt-")  # mode 0700
        except OSError as err:  # none of TMPDIR, /tmp, /var/tmp, /usr/tmp, . is writable
            raise MgmtError(
                f"--tmp-prefix: no temporary directory to use ({err}); "
                "set TMPDIR, or pick one with --prefix DIR"
            ) from None
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
        return
    path = os.path.join(settings.prefix, sub) if sub else os.fspath(settings.prefix)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as err:
        raise MgmtError(
            f"cannot use state directory {path}: {err.strerror}; "
            "pick one with --prefix DIR or use --tmp-prefix"
        ) from None
    yield path
