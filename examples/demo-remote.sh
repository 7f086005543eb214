#!/usr/bin/env bash
# The remote part of `make demo`: the write-up's example, as written, on two
# throw-away local hosts (network namespaces with their own sshd at the
# addresses examples/remote2a.yaml and remote2b.yaml name), then the files
# found on each host. Needs root; without it, says so and exits 3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cd "$repo"

if [ "$(id -u)" != 0 ]; then
    echo "demo-remote: needs root to make network namespaces; skipping the remote example" >&2
    exit 3
fi
python="${PYTHON:-$repo/.venv/bin/python}"
export PATH="$repo/.venv/bin:$PATH"

# The agent bundle that gets pushed: built once, rebuilt when the sources change.
bundle="$repo/dist/mgmt"
if [ ! -f "$bundle" ] || [ -n "$(find "$repo/src/mgmt" -name '*.py' -newer "$bundle" -print -quit)" ]; then
    mgmt-pkg bundle -o "$bundle"
fi
export MGMT_BUNDLE="$bundle"

addresses=$(sed -n 's|^remote: *"*ssh://[^@]*@\([0-9.]*\).*|\1|p' \
    examples/remote2a.yaml examples/remote2b.yaml | paste -sd, -)
echo "== two throw-away hosts at $addresses; the write-up's command, ending after 5 idle seconds:"
echo "\$ mgmt run --remote examples/remote2a.yaml --remote examples/remote2b.yaml --tmp-prefix --converged-timeout=5"
"$python" tests/support/hosts.py --names a,b --addresses "$addresses" -- bash -c '
    set -e
    mgmt run --remote examples/remote2a.yaml --remote examples/remote2b.yaml \
        --tmp-prefix --converged-timeout=5
    for pair in $MGMT_TEST_HOSTS; do
        alias=${pair%%=*}
        echo
        echo "== on host $alias (${pair#*=}):"
        ssh -T -n -F ~/.ssh/config "$alias" "echo \"# ls -d /tmp/file* /tmp/mgmt*\"; ls -d /tmp/file* /tmp/mgmt* 2>/dev/null; echo \"# cat /tmp/file*\"; cat /tmp/file*"
    done
'
