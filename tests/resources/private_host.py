"""A throw-away host in a mount + network namespace, for resources that change the system.

The agent under test runs as root and installs packages, so it must not reach
the machine's own files even when the code is wrong. The namespace sees the
machine's file system read-only, except:

- the test's temp dir (bound back at its own path, so it stays writable),
  and a private tmpfs on /tmp (commands also get TMPDIR in the test's dir);
- a tmpfs over each directory named in ``private`` (the rpm database,
  /usr/share/doc where phony packages put their files, ...): the host starts
  with them empty and they vanish with it;
- an overlayfs over each directory in ``layered`` (/etc for the hostname
  kind): the machine's files show through, writes land in the temp dir;
- with ``uts``, a host name of its own;
- files bound over system files (``overlays``: the test's dnf.conf over
  /etc/dnf/dnf.conf, so dnf keeps its cache, logs and repositories in the
  temp dir).

Its network namespace has only loopback, so the agent's HTTP server is the
only repository dnf can reach. A ``sleep`` holds the namespaces open; every
command (the agent, an outsider's ``dnf remove``, a check) enters them with
nsenter, so they all see the same private world. Nothing needs a lock: each
host is private to one test.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from support import require_root, require_tools
from support.polling import wait_until

SRC = Path(__file__).resolve().parents[2] / "src"

PRIVATE_NAME = "mgmt-private"  # a host with its own UTS namespace starts with this name

SETUP = """\
set -e
mount --make-rprivate /
# A private tmpfs on /tmp (libdnf writes /tmp/tmpdir.* whatever TMPDIR says),
# with the test's dir moved into it when it lives under /tmp.
mount --bind {tmp} /mnt
mount -t tmpfs tmpfs /tmp
mkdir -p {tmp}
mount --move /mnt {tmp}
mount -o remount,bind,ro /
{private}
{overlays}
{layered}
{uts}
ip link set lo up
echo $$ > {pidfile}
exec sleep 86400
"""


class PrivateHost:
    """Namespaces held open by one process; run commands inside with :meth:`run`."""

    def __init__(
        self,
        tmp: Path,
        private: Sequence[str] = (),
        overlays: Optional[Dict[str, Path]] = None,
        layered: Sequence[str] = (),
        uts: bool = False,
    ):
        require_root()
        require_tools("unshare", "nsenter", "ip")
        self.tmp = tmp
        self.tmpdir = tmp / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        pidfile = tmp / "host.pid"
        script = SETUP.format(
            tmp=shlex.quote(str(tmp)),
            private="\n".join(f"mount -t tmpfs tmpfs {shlex.quote(p)}" for p in private),
            overlays="\n".join(
                f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}"
                for dst, src in (overlays or {}).items()
            ),
            layered="\n".join(overlay_lines(tmp, d) for d in layered),
            uts=f"hostname {PRIVATE_NAME}" if uts else "",
            pidfile=shlex.quote(str(pidfile)),
        )
        # Entered as they were made, and no other: entering the PID namespace too
        # (nsenter -a) would make nsenter fork, and a signal meant for the agent
        # would stop nsenter alone and leave the agent running.
        self._namespaces = ["--mount", "--net", *(["--uts"] if uts else [])]
        self._holder = subprocess.Popen(
            [
                "unshare",
                *self._namespaces,
                "--fork",
                "sh",
                "-c",
                script,
            ],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

        def ready() -> bool:
            if self._holder.poll() is not None:
                raise RuntimeError(f"private host failed: {self._holder.stderr.read()}")
            return pidfile.exists() and pidfile.read_text().strip().isdigit()

        wait_until(ready, what="the private host's namespaces")
        self.pid = int(pidfile.read_text())
        # close() kills what runs in this namespace: it must not be ours.
        self._mnt = os.readlink(f"/proc/{self.pid}/ns/mnt")
        if self._mnt == os.readlink("/proc/self/ns/mnt"):
            self._holder.kill()
            self._holder.wait()
            raise RuntimeError("the private host has no mount namespace of its own")

    def env(self) -> Dict[str, str]:
        """The environment of commands on the host: its only writable temp dir is ours."""
        return dict(os.environ, TMPDIR=str(self.tmpdir))

    def argv(self, command: List[str]) -> List[str]:
        # Every namespace the holder has, from the one list that made them, so no
        # command can land in the machine's own by omission.
        return ["nsenter", "-t", str(self.pid), *self._namespaces, "--", *command]

    def run(self, command: List[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 120)
        kwargs.setdefault("env", self.env())
        return subprocess.run(self.argv(command), check=check, **kwargs)

    def agent(self, args: List[str], log: Path, **kwargs) -> subprocess.Popen:
        """``mgmt run ARGS`` inside the host, stderr to ``log``; stdout is a pipe."""
        env = dict(self.env(), PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1")
        handle = open(log, "wb")  # noqa: SIM115 - the child holds it; closed by the OS
        command = [sys.executable, "-m", "mgmt", "run", *args]
        return subprocess.Popen(
            self.argv(command),
            stdout=kwargs.pop("stdout", subprocess.PIPE),
            stderr=handle,
            stdin=subprocess.DEVNULL,
            env=env,
            **kwargs,
        )

    def close(self) -> None:
        # What still runs inside (an agent a failing test left) goes with the
        # host, then the holder (unshare, and the sleep it forked). Only while
        # unshare lives: until it reaps the sleep, that pid cannot be reused.
        if self._holder.poll() is None:
            for _ in range(10):  # again, for what forked meanwhile
                inside = self._inside()
                if not inside:
                    break
                for pid in inside:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._holder.kill()
        self._holder.wait()

    def _inside(self) -> List[int]:
        """The processes in this host's mount namespace but its holders."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in (self.pid, self._holder.pid):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/ns/mnt") == self._mnt:
                        found.append(int(entry))
        return found


def overlay_lines(tmp: Path, directory: str) -> str:
    """Shell lines putting a writable overlay (upper layer in ``tmp``) over ``directory``."""
    base = tmp / ("layer" + directory.replace("/", "_"))
    upper, work = shlex.quote(str(base / "upper")), shlex.quote(str(base / "work"))
    target = shlex.quote(directory)
    return (
        f"mkdir -p {upper} {work}\n"
        f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},workdir={work} {target}"
    )
