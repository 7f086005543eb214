"""Helpers for the provisioning tests: raw HTTP requests and a strict multipart reader."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from support import require_tools
from support.polling import wait_for  # noqa: F401  (re-exported for the provisioning tests)

CASES = Path(__file__).parent / "cases"
RANGE_CASES = json.loads((CASES / "range_cases.json").read_text(encoding="utf-8"))
# An old mtime: Last-Modified is then a strong validator (RFC 9110 §8.8.2.2).
OLD_MTIME = 1_600_000_000

SRC = Path(__file__).resolve().parents[2] / "src"

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass
class Reply:
    status: int
    headers: Dict[str, str]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())


def request(
    address: Tuple[str, int],
    path: str,
    method: str = "GET",
    headers: Optional[Dict[str, str]] = None,
    conn: Optional[http.client.HTTPConnection] = None,
) -> Reply:
    """Send one request exactly as given (no path normalisation) and read the reply."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value.encode("latin-1"))
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        if own:
            conn.close()


def content_range(value: str) -> Tuple[int, int, int]:
    match = _CONTENT_RANGE.fullmatch(value)
    assert match, f"bad Content-Range {value!r}"
    first, last, size = (int(g) for g in match.groups())
    return first, last, size


def parse_multipart(content_type: str, body: bytes) -> List[Tuple[str, str, bytes]]:
    """(Content-Type, Content-Range, data) of each part; fails on any framing error.

    Walks the body by the lengths the Content-Range headers promise, so a part
    with one byte too many or too few breaks the parse.
    """
    match = re.fullmatch(r"multipart/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]+)", content_type)
    assert match, f"not multipart/byteranges: {content_type!r}"
    delimiter = b"--" + match.group(1).encode()
    parts = []
    position = 0
    while True:
        if parts:
            assert body[position : position + 2] == b"\r\n", "missing CRLF before delimiter"
            position += 2
        assert body[position:].startswith(delimiter), f"missing delimiter at {position}"
        position += len(delimiter)
        if body[position:] == b"--\r\n":
            return parts
        assert body[position : position + 2] == b"\r\n"
        end = body.index(b"\r\n\r\n", position)
        lines = body[position + 2 : end].decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        first, last, _size = content_range(headers["Content-Range"])
        data = body[end + 4 : end + 4 + last - first + 1]
        assert len(data) == last - first + 1, "part shorter than its Content-Range"
        parts.append((headers["Content-Type"], headers["Content-Range"], data))
        position = end + 4 + len(data)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bound_by_file_modes() -> List[str]:
    """A command prefix under which a file's mode binds the process even as root.

    Root reads any file through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH; the
    prefix drops both (bounding and inheritable sets, so the exec'd program
    cannot get them back), as a server run by a service user would be bound.
    Not root: the modes bind already.
    """
    if os.geteuid() != 0:
        return []
    require_tools("setpriv")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", "--bounding-set", caps, "--inh-caps", caps, "--"]


class ServeProcess:
    """``mgmt-pkg serve`` as a real process; the ready line gives the addresses."""

    def __init__(self, *args: str, prefix: Sequence[str] = ()):
        import subprocess
        import sys

        command = [*prefix, sys.executable, "-m", "mgmt_pkg", "serve", *args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()
        if not line.startswith("serving "):
            self.process.kill()
            raise AssertionError(f"serve did not start: {line!r} {self.process.stderr.read()}")
        urls = line.split(" at ", 1)[1].strip().split(" and ")
        self.urls = urls  # as the ready line gives them
        self.http = next((u.rstrip("/") for u in urls if u.startswith("http://")), None)
        self.tftp_port = next(
            (int(u.rstrip("/").rsplit(":", 1)[1]) for u in urls if u.startswith("tftp://")), None
        )

    def stop(self) -> str:
        """SIGTERM, wait, and return what the server wrote to stderr."""
        self.process.terminate()
        _out, err = self.process.communicate(timeout=10)
        assert self.process.returncode == 0, err
        return err

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


class AgentRun:
    """`mgmt run --file GRAPH --no-server --tmp-prefix` as a real process, log in a file."""

    def __init__(self, graph: Path, log: Path):
        import subprocess
        import sys

        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--no-server",
             "--tmp-prefix", "-v"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        finally:
            self._log.close()

    def __enter__(self) -> AgentRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@contextlib.contextmanager
def script_process(
    script: str, *args: str, log: Path, python: str = sys.executable
) -> Iterator[subprocess.Popen]:
    """Run a server script with this checkout's src on the path, stderr into ``log``.

    The script is driven through its stdin and stdout; closing stdin asks it to
    stop. It is killed if the test failed before that.
    """
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [python, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            env=dict(os.environ, PYTHONPATH=str(SRC)),
        )
    try:
        yield process
        process.stdin.close()
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
