# find_python: the Python a host runs mgmt with when none is given (python: in the
# graph, --python), written once for START and the detached runner, which each get
# this text after their leading comments (programs.with_find_python). Sets py, "" if none.
# RHEL 8's platform-python counts; /usr/local/bin by its full path too: sudo's
# secure_path leaves it out (RHEL's is /sbin:/bin:/usr/sbin:/usr/bin), where a
# Python built from source lives. `command -v` is built into sh: looking costs no
# process; the launcher checks the version.
find_python() {
    l=/usr/local/bin
    for py in python3 /usr/libexec/platform-python python3.13 python3.12 python3.11 \
        python3.10 python3.9 python3.8 python3.7 python3.6 $l/python3 $l/python3.13 \
        $l/python3.12 $l/python3.11 $l/python3.10 $l/python3.9 $l/python3.8 $l/python3.7 \
        $l/python3.6; do
        command -v "$py" >/dev/null 2>&1 && return 0
    done
    py=
}
