"""Helpers for the RPM tests: run the real CLI in-process, lint, serve a repo."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Iterator, List, Tuple

from support.pkgcli import Result, run_cli  # noqa: F401 - the RPM tests' runner

EXAMPLE = ["-n", "vagrant-libvirt", "-v", "0.0.24", "--iteration", "noop", "-d", "vagrant >= 1.6.5"]


_LINT = re.compile(r"^(?P<package>\S+): (?P<level>[EW]): (?P<check>\S+)", re.MULTILINE)


def rpmlint(*paths: Path) -> Tuple[List[str], List[str]]:
    """(errors, warnings) of rpmlint with the machine's default configuration."""
    done = subprocess.run(
        ["rpmlint", *map(str, paths)], capture_output=True, text=True, check=False
    )
    found = [(m["level"], f"{m['package']}: {m['check']}") for m in _LINT.finditer(done.stdout)]
    return [c for level, c in found if level == "E"], [c for level, c in found if level == "W"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dnf(repo_url: str, root: Path, *args: str) -> subprocess.CompletedProcess:
    """dnf ARGS into a throw-away installroot, seeing only the repository at repo_url."""
    config = root.parent / "dnf.conf"
    config.write_text("[main]\ngpgcheck=0\ninstall_weak_deps=0\n")
    empty = root.parent / "repos.d"
    empty.mkdir(exist_ok=True)
    # dnf insists on root even for an installroot; a user namespace is enough.
    as_root = [] if os.geteuid() == 0 else ["unshare", "--map-root-user"]
    command = [
        *as_root, "dnf", "--assumeyes", "--quiet", f"--config={config}", f"--installroot={root}",
        "--releasever=1", f"--setopt=reposdir={empty}",
        f"--setopt=cachedir={root.parent / 'cache'}", "--setopt=metadata_expire=0",
        f"--repofrompath=phony,{repo_url}", "--setopt=phony.gpgcheck=0", "--nodocs", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
