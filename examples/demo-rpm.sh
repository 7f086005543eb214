#!/usr/bin/env bash
# The RPM part of `make demo`: the write-up's phony vagrant-libvirt, built with
# its SRPM, put in a repository beside a phony vagrant 2.0, served on loopback
# and installed by dnf into a throw-away installroot, dependency resolved.
# Runs alone too: .venv/bin goes first on PATH, as the Makefile and the other demos do.
set -euo pipefail
repo="$(dirname "$(cd "$(dirname "$0")" && pwd)")"
export PATH="$repo/.venv/bin:$PATH"

work="$(mktemp -d "${TMPDIR:-/tmp}/mgmt-pkg-demo.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "1. the write-up's one-liner, done right: spec + SRPM + noarch RPM"
echo "\$ mgmt-pkg fake-rpm -n vagrant-libvirt -v 0.0.24 --iteration noop -d 'vagrant >= 1.6.5' \\
    --license AGPL-3.0-or-later -o $work/repo"
mgmt-pkg fake-rpm -n vagrant-libvirt -v 0.0.24 --iteration noop -d 'vagrant >= 1.6.5' \
    --license AGPL-3.0-or-later -o "$work/repo"

step "2. what it contains, read back from the RPM header"
mgmt-pkg inspect "$work/repo/vagrant-libvirt-0.0.24-noop.noarch.rpm"

step "3. a phony vagrant 2.0 to satisfy the dependency"
mgmt-pkg fake-rpm -n vagrant -v 2.0 -o "$work/repo"

step "4. a dnf repository of both (createrepo_c)"
mgmt-pkg repo "$work/repo"

step "5. serve it on loopback with mgmt-pkg serve (HTTP with full Range support)"
serve_log="$work/serve.log"
mgmt-pkg serve --bind 127.0.0.1 --port 0 "$work/repo" > "$serve_log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 100); do
    url="$(sed -n 's|^serving .* at \(http://[^ ]*\)$|\1|p' "$serve_log")"
    [ -n "$url" ] && break
    sleep 0.05
done
[ -n "$url" ] || { echo "demo: mgmt-pkg serve did not start:" >&2; cat "$serve_log" >&2; exit 1; }
echo "serving $work/repo at $url"

step "6. dnf installs vagrant-libvirt into a throw-away installroot"
# dnf insists on root even for an installroot; a user namespace is enough.
as_root=()
[ "$(id -u)" = 0 ] || as_root=(unshare --map-root-user)
mkdir -p "$work/repos.d"
printf '[main]\ngpgcheck=0\ninstall_weak_deps=0\n' > "$work/dnf.conf"
"${as_root[@]}" dnf --assumeyes --config="$work/dnf.conf" --installroot="$work/root" --releasever=1 \
    --setopt=reposdir="$work/repos.d" --setopt=cachedir="$work/cache" \
    --repofrompath="phony,$url" --setopt=phony.gpgcheck=0 --nodocs \
    install vagrant-libvirt

step "7. installed in $work/root"
rpm --root "$work/root" -qa --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n' | sort
rpm --root "$work/root" -q vagrant-libvirt vagrant >/dev/null
echo "demo-rpm: ok"
