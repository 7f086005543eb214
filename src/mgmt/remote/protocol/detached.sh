# The hosts' side of a detached cluster, started: run by the initiator as
# `sh -c <this file> mgmt-remote PROGRAM PYTHON ARGS...` (mgmt.remote.orchestration.detach).
# PROGRAM is detached.py's text; PYTHON the graph's python: ("" to find one, in
# START's order: findpython.sh). detached.py starts the agent and its supervisors with
# the same interpreter (sys.executable), so the choice made here holds for all of them.
p=$1 py=$2; shift 2
if [ -n "$py" ]; then
    case $py in "~/"*) py="$HOME/${py#\~/}" ;; esac
    # Without one, read the request all the same: closed at once, stdin would fail the send.
    command -v "$py" >/dev/null 2>&1 || {
        echo "no Python at $py (python: / --python)" >&2; cat >/dev/null; exit 93; }
else
    find_python  # the interpreter an attached run takes (findpython.sh, as START)
    [ -n "$py" ] || {
        echo "no Python 3.6+ found; install python3 (dnf install python3) or give --python" >&2
        cat >/dev/null; exit 93; }
fi
exec "$py" -S -c "$p" "$@"
