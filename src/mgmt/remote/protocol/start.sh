# START: run on the host by the initiator as `sh -c <this file> mgmt-remote ARGS`.
# Makes the run dir, checks the cached bundle, takes the bundle on stdin if it is
# missing, then starts the agent (the launcher) and guards it. Every line it
# prints and reads is described in mgmt/remote/protocol/__init__.py.
#
# $1 sha256, $2 cache|nocache, $3 run dir ("" for a new one), $4 graph file
# name, $5 shiv build id ("" if unknown), $6 launcher, $7 the bundle's size,
# $8 the Python to run it with ("" to find one), $9 the agent's kind for its lock
# ("attached"; "" for a secondary: see the launcher).
set -u
sha=$1 mode=$2 run=$3 graph=$4 build=$5 launcher=$6 size=$7 py=${8-} kind=${9-}
# No umask of its own: the agent applies the graph with the login's, as `mgmt run`
# does on the host itself (a folder a file resource makes is 0755, not 0700).
# What START makes private is so by its mode: the run dir (mktemp), the cache and
# its folders (made under umask 077, chmod 700), the bundle (chmod 700 before it
# is put in place); the launcher gives its unpacked copy modes of its own.
# The interpreter first: a host without one gets no bundle (find_python is
# findpython.sh's, put in this text by programs.with_find_python).
if [ -n "$py" ]; then
    case $py in "~/"*) py="$HOME/${py#\~/}" ;; esac
    command -v "$py" >/dev/null 2>&1 || { echo "mgmt-remote: no Python at $py" >&2; exit 93; }
else
    find_python
    [ -n "$py" ] || { echo "mgmt-remote: no Python 3.6 or later found" >&2; exit 93; }
fi
if [ "$mode" = cache ]; then
    cache="$HOME/.cache/mgmt"
    # Made once (0700), before the run dir: failing here leaves nothing behind.
    # A warm start forks nothing for it.
    if ! [ -d "$cache/bundles" ] || ! [ -d "$cache/shiv" ]; then
        # A user without a home of its own (sudo: nobody, a service user) gets
        # one line saying what to do, after mkdir's own.
        (umask 077 && mkdir -p "$cache/bundles" "$cache/shiv") &&
            chmod 700 "$cache" "$cache/bundles" "$cache/shiv" || {
            echo "mgmt-remote: no cache in $cache for $(id -un); give --no-caching" >&2
            exit 91
        }
    fi
    bundle="$cache/bundles/$sha.pyz"
    shiv="$cache/shiv"
fi
if [ -z "$run" ]; then
    # The run dirs of STARTs killed (SIGKILL: no trap ran) go at the next start
    # here: each names its START's pid in .start; one of ours (-O) whose START is
    # gone, or a zombie (where nothing reaps it), is removed. Asked of /proc, not
    # kill -0, which fails for another user's live process too. Builtins only.
    for old in "${TMPDIR:-/tmp}"/mgmt-??????????; do
        [ -O "$old" ] && [ -f "$old/.start" ] && IFS= read -r writer <"$old/.start" || continue
        case $writer in '' | *[!0-9]*) continue ;; esac
        stat=
        IFS= read -r stat 2>/dev/null <"/proc/$writer/stat"
        stat=${stat##*) }
        [ -n "$stat" ] && [ "${stat%% *}" != Z ] && continue
        rm -rf -- "$old"
    done
    run=$(mktemp -d "${TMPDIR:-/tmp}/mgmt-XXXXXXXXXX") || exit 90
    # A full disk still has room for the folder, not for a file in it: said here,
    # not as sh's "echo: I/O error" before the next write failed too.
    { echo $$ >"$run/.start"; } 2>/dev/null || {
        rm -rf -- "$run"
        echo "mgmt-remote: cannot write in ${TMPDIR:-/tmp} (no room?)" >&2
        exit 90
    }
fi
if [ "$mode" != cache ]; then
    mkdir -p "$run/shiv" || { rm -rf -- "$run"; exit 91; }
    bundle="$run/mgmt.pyz"
    shiv="$run/shiv"
fi
site=
[ -n "$build" ] && site="$shiv/${bundle##*/}_$build/site-packages"
# Once shiv has unpacked the bundle (at a start that checked its sha256) the
# agent runs from that copy: hashing the zip at every start would check a file
# that is no longer read (about 5 ms of CPU per start, measured here). One the
# login cannot read (its mode changed, a copy restored as root) is copied again:
# the launcher must open it, and mv replaces it in a folder of ours.
if ! [ -f "$bundle" ] || ! [ -r "$bundle" ] || { ! [ -d "$site" ] &&
    [ "$(sha256sum < "$bundle" 2>/dev/null | cut -d' ' -f1)" != "$sha" ]; }; then
    printf '@@mgmt-remote need-bundle\n%s\n%s\n%s\n' "$run" "$bundle" "$shiv"
    # The bundle follows on stdin, $size bytes. The guard: whatever ends this
    # session (the copy done, ^C on the initiator, the connection lost), a
    # partial copy and the run dir do not stay behind.
    part="${bundle%/*}/.${bundle##*/}.$$"
    # A copy whose START was killed (SIGKILL: no trap ran) left its partial file:
    # the next copy here removes it, once its writer (the pid it ends with) is gone
    # and it has not grown for a minute (a home shared over NFS may hold another
    # host's copy under way, its writer's pid unknown here).
    if [ "$mode" = cache ]; then
        find "${bundle%/*}" -maxdepth 1 -name '.*.pyz.*' -mmin +1 2>/dev/null |
            while IFS= read -r old; do
                writer=${old##*.}
                case $writer in '' | *[!0-9]*) continue ;; esac
                # Alive: not a zombie (a killed START whose parent went too may
                # stay one, where nothing reaps it).
                kill -0 "$writer" 2>/dev/null &&
                    [ "$(cut -d' ' -f3 "/proc/$writer/stat" 2>/dev/null)" != Z ] && continue
                rm -f -- "$old"
            done
    fi
    # A signal during the clean-up (sudo passes on the hangup it got, then
    # its own pty's; head may end first, at the hangup) must not cut it short.
    # Quiet: in a folder the login cannot search (another user's), the copy that
    # was never made is "cannot remove ...: Permission denied", noise in the row.
    trap 'trap "" HUP INT TERM PIPE; rm -f -- "$part" 2>/dev/null; cd / && rm -rf -- "$run"' EXIT
    trap 'trap "" HUP INT TERM PIPE; exit 98' HUP INT TERM PIPE
    # Nonzero only when it cannot write (an initiator gone early is a short copy).
    head -c "$size" > "$part" || {
        [ "$mode" = cache ] && echo "mgmt-remote: cannot write the bundle in ${bundle%/*}; give --no-caching" >&2
        exit 98
    }
    if [ "$(sha256sum < "$part" | cut -d' ' -f1)" != "$sha" ]; then
        echo "mgmt-remote: the bundle copied does not match its sha256 (interrupted?)" >&2
        exit 98
    fi
    chmod 700 "$part" && mv -f -- "$part" "$bundle" || exit 98
fi
# Until the agent runs, whatever ends START (a hangup, under a pty) takes the
# run dir with it.
trap 'trap "" HUP INT TERM PIPE; cd / && rm -rf -- "$run"' EXIT
trap 'trap "" HUP INT TERM PIPE; exit 97' HUP INT TERM PIPE
cd "$run" || exit 96
printf '@@mgmt-remote ready\n%s\n%s\n%s\n' "$run" "$bundle" "$shiv"
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
    "$site" "$bundle" "$run/$graph" "$run/state" "$kind" 3<&- &
agent=$!
# From here the end below cleans up. Under a pty (sudo with requiretty) the
# initiator going away is a hangup: the agent may die of it, but START and its
# guard stay to stop it and clean up. Nor may a write to the initiator gone end
# it: sh reports a job killed by SIGKILL ("Killed") on stderr, and SIGPIPE
# killed START there, before the run dir was removed.
trap - EXIT INT TERM
trap '' HUP PIPE
data= settings=
echo "@@mgmt-remote pid $agent"
# The guard: "stop" and "kill" signal the agent (a kill its children too: what a
# python: wrapper started, holding the output open), "graph <line>" replaces the
# graph, and when stdin closes (the initiator is gone) the agent is stopped all
# the same. The graph is written in place, not renamed into place: mv is a
# process per edit, which cost as much CPU as the agent's whole reload; the
# agent reads the file once the write is closed (inotify's CLOSE_WRITE).
(
    while IFS= read -r line <&3; do
        case $line in
            stop) kill -INT "$agent" ;;
            kill) pkill -KILL -P "$agent"; kill -KILL "$agent" ;;
            "graph "*) printf '%s\n' "${line#graph }" > "$run/$graph" ;;
        esac
    done
    kill -INT "$agent" || exit 0
    i=0
    while [ $i -lt 100 ] && kill -0 "$agent"; do sleep 0.1; i=$((i + 1)); done
    pkill -KILL -P "$agent"
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
