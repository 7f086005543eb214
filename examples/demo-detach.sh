#!/usr/bin/env bash
# Detached clusters (the write-up's Closure): the write-up's two graphs on two
# throw-away local hosts that reach each other (network namespaces on one
# bridge; the graphs' remote: set to the hosts' aliases, so any free addresses
# do), handed over with --detach; then,
# with the initiator gone, a managed file edited on host a is put back and an
# export changed on a reaches b; `mgmt status`; `mgmt stop`. Needs root;
# without it, says so and exits 3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$repo"

if [ "$(id -u)" != 0 ]; then
    echo "demo-detach: needs root to make network namespaces; skipping" >&2
    exit 3
fi
python="${PYTHON:-$repo/.venv/bin/python}"
export PATH="$repo/.venv/bin:$PATH"
bundle="$repo/dist/mgmt"
if [ ! -f "$bundle" ] || [ -n "$(find "$repo/src/mgmt" -name '*.py' -newer "$bundle" -print -quit)" ]; then
    mgmt-pkg bundle -o "$bundle"
fi
export MGMT_BUNDLE="$bundle"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed 's|^remote:.*|remote: a|' examples/remote2a.yaml > "$work/remote2a.yaml"
sed 's|^remote:.*|remote: b|' examples/remote2b.yaml > "$work/remote2b.yaml"
export DEMO_DIR="$work"
"$python" tests/support/hosts.py --names a,b --bridge -- bash -c '
    set -e
    cd "$DEMO_DIR"
    graphs="--remote remote2a.yaml --remote remote2b.yaml"
    on() { ssh -T -n -F ~/.ssh/config "$@"; }
    echo "\$ mgmt run $graphs --detach"
    mgmt run $graphs --detach
    echo
    echo "== the initiator has exited. On a: echo tampered > /tmp/file1a"
    on a "echo tampered > /tmp/file1a"
    for _ in $(seq 50); do [ "$(on a cat /tmp/file1a)" = "i am file1a" ] && break; sleep 0.1; done
    echo "a: /tmp/file1a is: $(on a cat /tmp/file1a)"
    [ "$(on a cat /tmp/file1a)" = "i am file1a" ] || { echo "demo-detach: not put back" >&2; exit 1; }
    echo
    echo "== a exports something new (its graph edited in place, on a)"
    # The graph the agent runs: in graphs/ of the cluster state (directly in it before).
    on a "cd ~/.local/state/mgmt/detached && g=graphs/remote2a.yaml && { [ -e \$g ] || g=remote2a.yaml; } && sed -i \"s/exported from host a/changed on a/\" \$g"
    for _ in $(seq 50); do on b cat /tmp/file2a | grep -q "changed on a" && break; sleep 0.1; done
    echo "b: /tmp/file2a is: $(on b cat /tmp/file2a)"
    on b cat /tmp/file2a | grep -q "changed on a" || { echo "demo-detach: b did not get it" >&2; exit 1; }
    echo
    echo "\$ mgmt status $graphs"
    mgmt status $graphs || true
    echo
    echo "\$ mgmt stop $graphs"
    mgmt stop $graphs
'
