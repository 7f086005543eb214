"""Starting the agent on a host in one command: check the cache, make the run dir, run.

A warm start is one ``exec`` on the connection, nothing else: the :data:`START`
script makes the run dir (mktemp, 0700), checks that the cached bundle is there
(and its sha256, until shiv has unpacked it) and, if it is, says so and reads
two lines from its stdin, the graph (base64, so it never appears on a command
line) and the agent's settings as JSON, the run's etcd credentials among them.
Only a missing or damaged bundle costs more: the script says so and exits, the
session copies the bundle into place and starts the script again for the same
run dir. A graph too long for a line is copied beforehand, and its line is empty.

Once started, the script (a POSIX sh wrapper) gives the agent:

- every argument as a separate, quoted word (no interpolation);
- its settings as a line of JSON on stdin, the etcd credentials among them, never
  on a command line or in a file (and no argument parser to build);
- its own pid, reported to the initiator, so that stopping it means the wrapper
  signals that pid (SIGINT, then SIGKILL when asked 10 s later), never a
  ``killall`` by name; if the initiator disappears (stdin closes) the agent is
  stopped all the same;
- and, once it has ended, the removal of the run dir (graph, agent state, and
  with --no-caching the bundle), so the initiator needs no command to clean up.
"""

from __future__ import annotations

import base64
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict

import paramiko
from fabric import Connection

from mgmt.errors import RemoteError
from mgmt.remote.push import RemotePaths, sh

PID_MARK = "@@mgmt-remote pid "
# Each followed by three lines: the run dir, the bundle, the shiv root.
READY_MARK = "@@mgmt-remote ready"
NEED_BUNDLE_MARK = "@@mgmt-remote need-bundle"
# A graph longer than this is copied over SFTP instead of sent on a line (sh
# reads a line from a pipe a byte at a time).
INLINE_GRAPH_MAX = 64 * 1024
# Exit codes of the script before the agent runs.
EXIT_NEED_BUNDLE = 95
EXITS_BEFORE_AGENT = (90, 91, EXIT_NEED_BUNDLE, 96, 97)

# One Python process runs the agent (-S: nothing from the host's site-packages).
# It first writes the graph it is handed on stdin (atomically), then, when the
# host already unpacked this very bundle (keyed by shiv's build id) it imports
# the agent from there and skips shiv's bootstrap, which costs a start-up as
# much again (compiling itself from the zip, hashing, compileall); otherwise it
# runs the bundle, and shiv unpacks it. It restores SIGINT, which sh starts
# background jobs with ignored, and drops the working directory from the import
# path, as running the bundle would. Once the agent is done it exits at once
# (os._exit, after flushing): tearing down a whole interpreter's modules costs a
# fifth of a start-up, for nothing. The garbage collector is off while it starts:
# imports make many objects and free none, so its passes (a tenth of a start)
# find nothing; mgmt.engine.agent turns it back on once the agent runs.
#
# The cache keeps one bundle per version, so old versions are pruned: when a
# new one is unpacked, every other cached bundle unused for PRUNE_DAYS goes,
# with its unpacked copy. "Unused" is known from the bundle's mtime, touched at
# each start, and from a shared lock that every running agent holds on its
# bundle: one in use is never removed, however long it has run.
#
# The agent's settings are the next line of stdin, as JSON (see
# mgmt.cli.run_remote_agent), which shiv's bootstrap is told to call too.
# argv: site, bundle, graph, state dir.
PRUNE_DAYS = 30
LAUNCHER = """\
import gc;gc.disable()
import os,signal,sys
signal.signal(signal.SIGINT,signal.default_int_handler)
site,bundle,graph,state=sys.argv[1:5]
sys.argv=[bundle,graph,state]
del sys.path[0]
data=sys.stdin.readline().strip()
if data:
 import base64
 temp=os.path.join(os.path.dirname(graph),'.'+os.path.basename(graph)+'.new')
 with open(temp,'xb') as f:f.write(base64.b64decode(data))
 os.replace(temp,graph)
cache=os.path.dirname(bundle)
if os.path.basename(cache)=='bundles':
 import fcntl
 try:
  held=os.open(bundle,os.O_RDONLY)
  fcntl.flock(held,fcntl.LOCK_SH)
  if os.fstat(held).st_nlink==0:raise OSError('pruned')
  os.utime(held)
 except OSError:
  sys.stderr.write('mgmt-remote: a newer version just pruned this bundle; run again\\n')
  sys.stderr.flush();os._exit(NEED_BUNDLE)
if os.path.isdir(site):
 sys.path.insert(0,site)
 from mgmt.cli import run_remote_agent
 code=run_remote_agent()
 sys.stdout.flush();sys.stderr.flush();os._exit(code)
if os.path.basename(cache)=='bundles':
 import glob,shutil,time
 shiv=os.environ['SHIV_ROOT']
 for old in glob.glob(os.path.join(cache,'*.pyz')):
  try:
   if old==bundle or os.stat(old).st_mtime>time.time()-PRUNE_SECONDS:continue
   fd=os.open(old,os.O_RDONLY)
   try:
    fcntl.flock(fd,fcntl.LOCK_EX|fcntl.LOCK_NB)
    name=os.path.basename(old)
    for d in glob.glob(os.path.join(shiv,name+'_*')):shutil.rmtree(d,True)
    for f in glob.glob(os.path.join(shiv,'.'+name+'_*_lock')):os.unlink(f)
    os.unlink(old)
   finally:os.close(fd)
  except OSError:pass
import runpy
os.environ['SHIV_ENTRY_POINT']='mgmt.cli:run_remote_agent'
runpy.run_path(bundle,run_name='__main__')
""".replace("PRUNE_SECONDS", str(PRUNE_DAYS * 86400)).replace("NEED_BUNDLE", str(EXIT_NEED_BUNDLE))

# $1 sha256, $2 cache|nocache, $3 run dir ("" for a new one), $4 graph file
# name, $5 shiv build id ("" if unknown), $6 launcher.
START = r"""
set -u
sha=$1 mode=$2 run=$3 graph=$4 build=$5 launcher=$6
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
    exit 95
fi
cd "$run" || exit 96
printf '@@mgmt-remote ready\n%s\n%s\n%s\n' "$run" "$bundle" "$shiv"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec 3<&0
# Read here, a byte at a time, so that the agent reads nothing past them: the
# lines after them are "stop" and "kill" for the guard below.
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
(
    while IFS= read -r line <&3; do
        case $line in
            stop) kill -INT "$agent" ;;
            kill) kill -KILL "$agent" ;;
        esac
    done
    # stdin closed: the initiator is gone. Stop the agent all the same; short
    # sleeps so that nothing of ours lingers once it has gone.
    kill -INT "$agent" || exit 0
    i=0
    while [ $i -lt 100 ] && kill -0 "$agent"; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$agent"
) >/dev/null 2>&1 &
guard=$!
wait "$agent"
status=$?
kill "$guard" 2>/dev/null
# The run dir goes with the agent, also when the initiator is gone and cannot
# remove it (with --no-caching it holds the bundle too).
cd / && rm -rf -- "$run"
exit "$status"
"""


@dataclass
class Launch:
    """The START script running on a host, past its cache check."""

    channel: paramiko.Channel
    stdout: BinaryIO  # read on by the session: agent output follows
    paths: RemotePaths

    @property
    def need_bundle(self) -> bool:
        return not self.paths.bundle_cached


def start(
    conn: Connection,
    *,
    sha256: str,
    caching: bool,
    run_dir: str,
    graph: Path,
    build_id: str,
    timeout: float,
) -> paramiko.Channel:
    """Start START; :func:`ready` then waits for its cache check."""
    channel = conn.transport.open_session(timeout=timeout)
    mode = "cache" if caching else "nocache"
    channel.exec_command(sh(START, sha256, mode, run_dir, graph.name, build_id, LAUNCHER))
    return channel


def ready(channel: paramiko.Channel, host: str) -> Launch:
    """START past its cache check; RemoteError if it failed before that."""
    stdout = channel.makefile("rb")
    line = _line(stdout)
    for mark, cached in ((READY_MARK, True), (NEED_BUNDLE_MARK, False)):
        if line == mark:
            run, bundle, shiv = _line(stdout), _line(stdout), _line(stdout)
            return Launch(channel, stdout, RemotePaths(run, bundle, shiv, cached))
    error = channel.makefile_stderr("rb").read().decode(errors="replace").strip()
    status = channel.recv_exit_status()
    channel.close()
    raise RemoteError(
        host, f"cannot prepare the working dir (status {status}): {error or line or 'no output'}"
    )


def _line(stream: BinaryIO) -> str:
    return stream.readline().decode(errors="replace").rstrip("\n")


def stdin_lines(graph: bytes, settings: Dict[str, Any]) -> bytes:
    """START's two lines: the graph (b"" when it was copied apart) and the agent's
    settings (see mgmt.settings.settings_from_json), credentials included."""
    return base64.b64encode(graph) + b"\n" + json.dumps(settings).encode() + b"\n"


def command_line(paths: RemotePaths, graph: Path, settings: Dict[str, Any]) -> str:
    """The ``mgmt run`` command that runs the same agent by hand, for the log.

    The credentials are left out: ``--etcd-auth-stdin`` reads them from stdin.
    """
    argv = [paths.bundle, "run", "--hostname", settings["hostname"], "--no-server"]
    for seed in settings["seeds"]:
        argv += ["--seeds", seed]
    argv += ["--file", paths.graph(graph), "--prefix", paths.state_dir]
    argv += ["--depth", str(settings["depth"]), "--etcd-auth-stdin"]
    for name in ("converged_stdout", "noop", "no_watch"):
        if settings.get(name):
            argv.append("--" + name.replace("_", "-"))
    verbosity = settings.get("verbosity", 0)
    argv += ["-v"] * verbosity if verbosity > 0 else ["-q"] * -verbosity
    return shlex.join(argv)
