"""A throw-away host with a real systemd as PID 1, kept from touching the machine.

systemd booted against the shared file system would empty /tmp (tmpfiles),
start the machine's own units (etcd, nginx, postgresql, ssh) and take over its
cgroups. So this host gets:

- its own PID, mount, network, UTS and cgroup namespaces (``unshare``);
- private tmpfs on /tmp (the test's dir moved back in), /var/tmp, /run and
  /etc/systemd/system, which holds only the test's units and drop-ins;
- with ``layered``, an overlayfs over those directories (/etc for hostnamed):
  the machine's files show through, writes land in the test's dir;
- ``--unit=mgmt-test.target``, a target without default dependencies that
  wants only what the test lists, so nothing of sysinit/basic/multi-user runs;
- / read-only, so a unit or an agent gone wrong cannot write anywhere else;
- a cgroup of its own (a child of the root, by the holder's pid, removed at
  the end) that the cgroup namespace makes its root.

Booting takes well under a second here (systemd 252). Hosts of concurrent
test runs share nothing (cgroup names carry the holder's pid, the network is
private), so no lock is needed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

from private_host import overlay_lines

from support import require_root, require_tools
from support.polling import wait_for, wait_until

SRC = Path(__file__).resolve().parents[2] / "src"
SYSTEMD = next(
    (p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if os.path.exists(p)), ""
)
TARGET = "mgmt-test.target"

OUTER = """\
set -e
id=mgmt-svc-$$
if [ -d /sys/fs/cgroup/unified ]; then
  for h in systemd unified; do
    mkdir -p /sys/fs/cgroup/$h/$id
    echo $$ > /sys/fs/cgroup/$h/$id/cgroup.procs
  done
else
  mkdir -p /sys/fs/cgroup/$id
  echo $$ > /sys/fs/cgroup/$id/cgroup.procs
fi
echo $id > {cgfile}
exec unshare --pid --mount --net --uts --cgroup --fork --mount-proc sh -c {inner}
"""

INNER = """\
set -e
mount --make-rprivate /
mount --bind {tmp} /mnt
mount -t tmpfs tmpfs /tmp
mkdir -p {tmp}
mount --move /mnt {tmp}
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/tmp
{layered}
{unit_mount}
if [ -d /sys/fs/cgroup/unified ]; then
  mount -t tmpfs tmpfs /sys/fs/cgroup
  mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
  mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
  mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
else
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
fi
mount -o remount,bind,ro /
ip link set lo up
hostname mgmt-test
export container=mgmt-test
exec {systemd} --unit={target} --log-target=kmsg --show-status=no
"""


class SystemdHost:
    """systemd as PID 1 with only ``units`` besides its target.

    ``units`` maps a path under /etc/systemd/system (a unit, or a drop-in such
    as ``x.service.d/test.conf``) to its text; ``layered`` directories get a
    writable overlay. With ``lasting``, /etc/systemd/system is the test's
    TMP/units itself, not a copy, and is default.target: what is enabled there
    (WantedBy=default.target) outlives this host, and a SystemdHost made again on
    the same TMP boots with it, as the machine would after a reboot.
    """

    def __init__(
        self,
        tmp: Path,
        units: Dict[str, str],
        wants: Sequence[str] = (),
        layered: Sequence[str] = (),
        lasting: bool = False,
    ):
        require_root()
        require_tools("unshare", "nsenter", "systemctl")
        if not SYSTEMD:
            raise RuntimeError("systemd not found in /lib/systemd or /usr/lib/systemd")
        self.tmp = tmp
        unit_dir = tmp / "units"
        unit_dir.mkdir(exist_ok=lasting)
        if lasting and not (unit_dir / "default.target").is_symlink():
            (unit_dir / "default.target").symlink_to(TARGET)
        target = "[Unit]\nDescription=mgmt test host\nDefaultDependencies=no\n"
        if wants:
            target += "Wants=" + " ".join(wants) + "\nAfter=" + " ".join(wants) + "\n"
        (unit_dir / TARGET).write_text(target)
        for name, text in units.items():
            (unit_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (unit_dir / name).write_text(text)
        cgfile = tmp / "cgroup.name"
        inner = INNER.format(
            tmp=shlex.quote(str(tmp)),
            unit_mount=(
                f"mount --bind {shlex.quote(str(unit_dir))} /etc/systemd/system"
                if lasting
                else "mount -t tmpfs tmpfs /etc/systemd/system\n"
                f"cp -R {shlex.quote(str(unit_dir))}/. /etc/systemd/system/"
            ),
            layered="\n".join(overlay_lines(tmp, d) for d in layered),
            systemd=SYSTEMD,
            target="default.target" if lasting else TARGET,
        )
        outer = OUTER.format(cgfile=shlex.quote(str(cgfile)), inner=shlex.quote(inner))
        self._holder = subprocess.Popen(
            ["sh", "-c", outer], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.pid = 0

        def booted() -> bool:
            if self._holder.poll() is not None:
                raise RuntimeError(f"systemd host failed: {self._holder.stderr.read()}")
            children = Path(f"/proc/{self._holder.pid}/task/{self._holder.pid}/children")
            pids = children.read_text().split()
            if not pids:
                return False
            self.pid = int(pids[0])
            state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
            return state in ("running", "degraded")

        try:
            wait_until(booted, timeout=30, what="systemd to boot in its namespace")
        except BaseException:
            self.close()
            raise
        self.cgroup = cgfile.read_text().strip()

    def argv(self, command: List[str]) -> List[str]:
        return ["nsenter", "-t", str(self.pid), "-m", "-p", "-n", "-u", "-C", "--", *command]

    def run(self, command: List[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.argv(command), check=check, **kwargs)

    def prop(self, unit: str, name: str) -> str:
        out = self.run(["systemctl", "show", "-p", name, "--value", "--", unit], check=False)
        return out.stdout.strip()

    def agent(self, args: List[str], log: Path, **kwargs) -> subprocess.Popen:
        """``mgmt run ARGS`` inside the host, stderr to ``log``; stdout is a pipe.
        Its signals (terminate, send_signal) reach the agent (see EnteredProcess)."""
        # faulthandler: a SIGABRT prints every thread's stack (an agent that hangs).
        env = dict(os.environ, PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        handle = open(log, "wb")  # noqa: SIM115 - the child holds it
        return EnteredProcess(
            self.argv([sys.executable, "-m", "mgmt", "run", *args]),
            stdout=kwargs.pop("stdout", subprocess.PIPE),
            stderr=handle,
            stdin=subprocess.DEVNULL,
            env=env,
            **kwargs,
        )

    def close(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)  # the PID namespace ends with its init
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()
        cgroup = getattr(self, "cgroup", "")
        if cgroup:
            for root in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
                wait_for(lambda r=root: _remove_cgroup(Path(r) / cgroup), timeout=10)


class EnteredProcess(subprocess.Popen):
    """A program started through ``nsenter -p``, which forks it into the PID
    namespace, waits for it and forwards no signal: a terminate() of nsenter
    alone left the agent running on, to fight the next one. A signal goes to
    nsenter's child, the program; waiting still waits for nsenter, which ends
    with the program's status."""

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        # nsenter forks at once; until it has, there is no program to signal.
        wait_until(lambda: children.read_text().split() or self.poll() is not None,
                   what="nsenter to start the program")  # fmt: skip
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for pid in children.read_text().split():
                os.kill(int(pid), sig)


def _remove_cgroup(path: Path) -> bool:
    """Remove a cgroup tree bottom-up once its processes are gone; True when it is gone."""
    if not path.is_dir() or path == path.parent:
        return True
    for folder, dirs, _files in os.walk(path, topdown=False):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(folder, name))
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
