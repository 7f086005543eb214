# START: run on the host by the initiator as `sh -c <this file> mgmt-remote ARGS`.
# Makes the run dir, checks the cached bundle, takes the bundle on stdin if it is
# missing, then starts the agent (the launcher) and guards it. Every line it
# prints and reads is described in mgmt/remote/protocol/__init__.py.
#
# $1 sha256, $2 cache|nocache, $3 run dir ("" for a new one), $4 graph file
# name, $5 shiv build id ("" if unknown), $6 launcher, $7 the bundle's size.
set -u
sha=$1 mode=$2 run=$3 graph=$4 build=$5 launcher=$6 size=$7
umask 077
if [ -z "$run" ]; then
    run=$(mktemp -d "${TMPDIR:-/tmp}/mgmt-XXXXXXXXXX") || exit 90
fi
if [ "$mode" = cache ]; then
    cache="$HOME/.cache/mgmt"
    # Made once (0700); a warm start forks nothing for it.
    if ! [ -d "$cache/bundles" ] || ! [ -d "$cache/shiv" ]; then
        mkdir -p "$cache/bundles" "$cache/shiv" && chmod 700 "$cache" "$cache/bundles" || exit 91
    fi
    bundle="$cache/bundles/$sha.pyz"
    shiv="$cache/shiv"
else
    mkdir -p "$run/shiv" || exit 91
    bundle="$run/mgmt.pyz"
    shiv="$run/shiv"
fi
site=
[ -n "$build" ] && site="$shiv/${bundle##*/}_$build/site-packages"
# Once shiv has unpacked the bundle (at a start that checked its sha256) the
# agent runs from that copy: hashing the zip at every start would check a file
# that is no longer read (about 5 ms of CPU per start, measured here).
if ! [ -f "$bundle" ] || { ! [ -d "$site" ] &&
    [ "$(sha256sum < "$bundle" 2>/dev/null | cut -d' ' -f1)" != "$sha" ]; }; then
    printf '@@mgmt-remote need-bundle\n%s\n%s\n%s\n' "$run" "$bundle" "$shiv"
    # The bundle follows on stdin, $size bytes. The guard: whatever ends this
    # session (the copy done, ^C on the initiator, the connection lost), a
    # partial copy and the run dir do not stay behind.
    part="${bundle%/*}/.${bundle##*/}.$$"
    trap 'rm -f -- "$part"; cd / && rm -rf -- "$run"' EXIT
    trap 'exit 98' HUP INT TERM PIPE
    head -c "$size" > "$part" || exit 98
    if [ "$(sha256sum < "$part" | cut -d' ' -f1)" != "$sha" ]; then
        echo "mgmt-remote: the bundle copied does not match its sha256 (interrupted?)" >&2
        exit 98
    fi
    chmod 700 "$part" && mv -f -- "$part" "$bundle" || exit 98
    trap - EXIT HUP INT TERM PIPE
fi
cd "$run" || exit 96
printf '@@mgmt-remote ready\n%s\n%s\n%s\n' "$run" "$bundle" "$shiv"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec 3<&0
# Read here, a byte at a time, so that the agent reads nothing past them: the
# lines after them are for the guard below.
{ IFS= read -r data <&3 && IFS= read -r settings <&3; } || {
    echo "mgmt-remote: no graph and settings on stdin" >&2
    cd / && rm -rf -- "$run"
    exit 97
}
printf '%s\n%s\n' "$data" "$settings" |
    SHIV_ROOT="$shiv" PYTHONUNBUFFERED=1 "$py" -S -c "$launcher" \
    "$site" "$bundle" "$run/$graph" "$run/state" 3<&- &
agent=$!
data= settings=
echo "@@mgmt-remote pid $agent"
# The guard: "stop" and "kill" signal the agent, "graph <line>" replaces the
# graph (written beside it, then renamed: the agent reloads a whole file), and
# when stdin closes (the initiator is gone) the agent is stopped all the same.
(
    while IFS= read -r line <&3; do
        case $line in
            stop) kill -INT "$agent" ;;
            kill) kill -KILL "$agent" ;;
            "graph "*)
                printf '%s\n' "${line#graph }" > "$run/.$graph.new" &&
                    mv -f -- "$run/.$graph.new" "$run/$graph" ;;
        esac
    done
    kill -INT "$agent" || exit 0
    i=0
    while [ $i -lt 100 ] && kill -0 "$agent"; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$agent"
) >/dev/null 2>&1 &
guard=$!
wait "$agent"
status=$?
kill "$guard" 2>/dev/null
# A secondary (mgmt.remote.hierarchy) leads a process group of its own, its ssh
# clients in it: however it ended, none of them outlives it. (An agent leads
# none: nothing to do.)
kill -TERM "-$agent" 2>/dev/null
# The run dir goes with the agent, also when the initiator is gone and cannot
# remove it (with --no-caching it holds the bundle too).
cd / && rm -rf -- "$run"
exit "$status"
