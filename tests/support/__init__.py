"""Shared test helpers: what a test needs from the machine, and how to get it.

Integration tests use the real tools (rpmbuild, etcd, sshd, dnf). Outside CI a
missing tool skips the test with the package to install; in CI (CI=true) it
fails the test, because CI must never pass by skipping what it was meant to run.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# tool -> Debian package that provides it
PACKAGES = {
    "rpmbuild": "rpm",
    "rpmlint": "rpmlint",
    "createrepo_c": "createrepo-c",
    "dnf": "dnf",
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
    "unshare": "util-linux",
    "curl": "curl",
    "tftp": "tftp-hpa",
    "atftp": "atftp",
    "nginx": "nginx-light",
    "nsenter": "util-linux",
    "scp": "openssh-client",
    "script": "bsdutils",
    "dbus-daemon": "dbus-daemon",
    "hostnamectl": "systemd",
    "sudo": "sudo",
    "visudo": "sudo",
    "useradd": "passwd",
}

_SBIN = ("/usr/sbin", "/sbin")


def which(tool: str):
    """shutil.which that also looks in sbin, where sshd lives on Debian."""
    found = shutil.which(tool)
    if found:
        return found
    for folder in _SBIN:
        candidate = os.path.join(folder, tool)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def unavailable(reason: str) -> None:
    """Skip outside CI; fail in CI."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tools(*tools: str) -> None:
    """Make sure every named tool is on this machine (see :func:`unavailable`)."""
    for tool in tools:
        if which(tool) is None:
            package = PACKAGES.get(tool, tool)
            unavailable(f"{tool} not found (install {package}, or run `make deps`)")


def require_root() -> None:
    """Network namespaces and mount namespaces need root."""
    if os.geteuid() != 0:
        unavailable("needs root (network and mount namespaces)")
