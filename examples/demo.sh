#!/usr/bin/env bash
# `make demo`: the write-up's main job on this machine.
#
# As root, the remote example runs on two throw-away local hosts (network
# namespaces with their own sshd). Without root, namespaces cannot be made, so
# the RPM demo runs instead: the write-up's phony vagrant-libvirt, built and
# installed with dnf into a throw-away installroot.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ "$(id -u)" = 0 ]; then
    bash "$here/demo-remote.sh"
    echo
    bash "$here/demo-rpm.sh"
else
    echo "demo: the remote example needs root (network namespaces); running the RPM demo instead"
    bash "$here/demo-rpm.sh"
fi
