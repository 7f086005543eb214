"""The host's package tools as the pkg kind uses them: rpm to look, dnf to change.

No PackageKit (unmaintained, mgmt #471, and wrong whenever its view differed
from dnf's): the host's own ``dnf`` (dnf5 where /usr/bin/dnf is dnf5, else
dnf4) runs as a subprocess, exactly as an administrator would run it, and the
rpm database is read with ``rpm -q``. The agent carries no bindings: libdnf's
Python modules exist for one Python per host, the agent runs on any.

One :class:`Dnf` per agent (through ``init.services``) owns a lock, so the
agent's pkg resources never run two dnf transactions at once (dnf would wait
on its own lock anyway, but then a second transaction would be planned against
a database the first is changing).
"""

import fcntl
import os
import re
import subprocess
import threading
import time
from typing import Dict, List, Optional, Sequence, Set, Tuple

from mgmt.log import get_logger
from mgmt.resources.hosttool import last_lines, run_tool

log = get_logger("dnf")

# How much of dnf's output an error carries: the end, where dnf says why.
MESSAGE_LINES = 6

# Passed to rpm -q after each query to mark where its answer ends (see _query), and
# how rpm says it matches nothing (-q, --whatprovides, --whatobsoletes).
_END = "mgmt end of answer"
_END_LINES = (f"package {_END} is not installed", f"provides {_END}", f"obsoletes {_END}")

# How rpm under dnf4 (with the lock file's path) and dnf5 say that another process
# holds rpm's transaction lock, and how long a transaction waits for it at most.
_RPM_LOCK = re.compile(
    r"can't create transaction lock on (/\S+)|Failed to obtain rpm transaction lock"
)
LOCK_WAIT = 600.0

# dnf4's and dnf5's option for a removal that leaves the removed packages' dependencies.
KEEP_DEPENDENCIES = "--setopt=clean_requirements_on_remove=False"

# How dnf4 and dnf5 say that an argument names no package they know, and that a
# package needs what no repository has (its NAME-[EPOCH:]VERSION-RELEASE.ARCH last).
NO_MATCH = "No match for argument:"
_NOTHING_PROVIDES = re.compile(r"nothing provides .+ needed by (\S+)")
_REQUIRES = re.compile(
    r"package (\S+)(?: from \S+)? requires .+, but none of the providers can be installed"
)  # dnf5 names the repository: "package X from REPO requires ..."
# How dnf4 ("Operation aborted.") and dnf5 ("... by the user.") say they resolved the
# transaction and were told no at the prompt (--assumeno): all else went well.
ABORTED = "Operation aborted"
# A problem that holds one of these is a conflict between packages, not one's alone.
_CONFLICT = ("conflicts with", "cannot install both", "obsoletes")
# How dnf4 (Package X is ...) and dnf5 (Package "X" is ...) say there is nothing to do.
_ALREADY = re.compile(r'Package "?(\S+?)"? is already installed')
_PROGRESS = re.compile(r"[0-9.]+\s*[kMG]?B/s\s*\|")
# How dnf4 ("Error in PREIN scriptlet in rpm package NAME") and rpm itself (under
# dnf5: "%prein(NAME-VERSION-RELEASE.ARCH) scriptlet failed, exit status 1") say
# that a package's scriptlet failed.
_SCRIPTLET = re.compile(
    r"(Error in \S+ scriptlet in rpm package (\S+))|(%\w+\((\S+)\) scriptlet failed.*)"
)


class DnfError(Exception):
    """A dnf or rpm command failed: ``message`` holds the tool's own words;
    ``unmatched`` and ``uninstallable`` are what dnf said of single packages in
    ``output`` (see those functions)."""

    def __init__(self, command: str, message: str, output: str = ""):
        self.command, self.message = command, message
        self.unmatched = unmatched(output)
        self.uninstallable = uninstallable(output)
        self.scriptlets = scriptlets_failed(output)
        super().__init__(f"{command}: {message}")


class Transaction:
    """What one dnf run does: packages (specs) to install, upgrade and remove."""

    def __init__(self) -> None:
        self.install: List[str] = []
        self.upgrade: List[str] = []
        self.remove: List[str] = []
        self.nogpgcheck = False

    def __bool__(self) -> bool:
        return bool(self.install or self.upgrade or self.remove)

    def actions(self) -> List[Tuple[str, List[str]]]:
        return [(a, specs) for a, specs in self.describe() if specs]

    def describe(self) -> List[Tuple[str, List[str]]]:
        return [("install", self.install), ("upgrade", self.upgrade), ("remove", self.remove)]


def _tail(text: str) -> str:
    # dnf's download progress ("mgmt test  66 kB/s | 1.7 kB  00:00") says nothing about why.
    lines = [line for line in text.splitlines() if not _PROGRESS.search(line)]
    return last_lines("\n".join(lines), MESSAGE_LINES)


def said_by_dnf(text: str) -> str:
    """What dnf said of a transaction, in one line for an error: its "Problem"
    and the lines listed under it (why it skipped packages), else its last lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    problems: List[str] = []
    under_problem = False
    for line in lines:
        if line.startswith("Problem"):
            under_problem = True
        elif not line.startswith("- "):
            under_problem = False
            continue
        if under_problem and line not in problems:
            problems.append(line)
    return "; ".join(problems) or "; ".join(_tail(text).splitlines())


def uninstallable(text: str) -> Dict[str, str]:
    """The name of each package dnf (4 and 5 alike) says needs what no repository
    has, itself or through what it requires -> its words. Such a package cannot be
    installed whatever else its transaction holds, unlike one that conflicts with
    another of its requests: a problem counts only where dnf says "nothing
    provides" in it."""
    found: Dict[str, str] = {}
    for problem in _problems(text):
        missing = [m for m in map(_NOTHING_PROVIDES.search, problem) if m]
        if not missing or any(word in line for line in problem for word in _CONFLICT):
            continue  # a conflict between requests: not one package's alone
        for line in problem:
            match = _NOTHING_PROVIDES.search(line) or _REQUIRES.search(line)
            if match:
                found.setdefault(_nevra_name(match.group(1)), missing[0].group(0))
    return found


def _problems(text: str) -> List[List[str]]:
    """dnf's "Problem" blocks: each its first line and the "- " lines under it."""
    problems: List[List[str]] = []
    for line in (line.strip() for line in text.splitlines()):
        if line.startswith("Problem"):
            problems.append([line])
        elif line.startswith("- ") and problems:
            problems[-1].append(line)
    return problems


def scriptlets_failed(text: str) -> Dict[str, str]:
    """The name of each package whose scriptlet dnf (or rpm under it) says failed
    -> that line: a %pre that fails keeps its package out, while the others of
    the transaction may be installed all the same."""
    found: Dict[str, str] = {}
    for line in text.splitlines():
        match = _SCRIPTLET.search(line)
        if match and match.group(2):
            found.setdefault(match.group(2), match.group(1))
        elif match:
            found.setdefault(_nevra_name(match.group(4)), match.group(3).strip())
    return found


def already_installed(text: str) -> Set[str]:
    """The names of the packages dnf (4 and 5 alike) says are installed already; for
    an argument that names another package (one providing or obsoleting it), that one."""
    return {_nevra_name(match.group(1)) for match in _ALREADY.finditer(text)}


def _nevra_name(nevra: str) -> str:
    """``mgmt-test-h-1.0-1.noarch`` (or with an epoch, ``2:1.0``) -> ``mgmt-test-h``."""
    return nevra.rpartition(".")[0].rsplit("-", 2)[0]


def unmatched(text: str) -> Dict[str, str]:
    """Each argument dnf (4 and 5 alike) says it has no package for -> that line."""
    found: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(NO_MATCH):
            found[line[len(NO_MATCH) :].strip()] = line
    return found


class Dnf:
    """This host's dnf and rpm, one transaction at a time."""

    def __init__(self) -> None:
        # Reentrant: a pkg resource holds it across its transaction and the looks
        # before and after (mgmt.resources.pkgwants), the transaction takes it too.
        self.lock = threading.RLock()
        self._dnf: Optional[str] = None
        self._dbpath: Optional[str] = None

    # -- the tools --------------------------------------------------------------

    @property
    def dnf(self) -> str:
        if self._dnf is None:
            found = _which("dnf5") or _which("dnf")
            if found is None:
                raise DnfError("dnf", "neither dnf5 nor dnf is installed on this host")
            self._dnf = found
        return self._dnf

    @property
    def is_dnf5(self) -> bool:
        return os.path.basename(os.path.realpath(self.dnf)).startswith("dnf5")

    def dbpath(self) -> str:
        """Where this host's rpm database lives (``%_dbpath``), for the watch."""
        if self._dbpath is None:
            out = _run(["rpm", "--eval", "%{_dbpath}"]).stdout.strip()
            self._dbpath = out if out.startswith("/") else "/var/lib/rpm"
        return self._dbpath

    def lockpath(self) -> str:
        """rpm's transaction lock file (``%_rpmlock_path``), which dnf5 does not name."""
        out = _run(["rpm", "--eval", "%{_rpmlock_path}"], check=False).stdout.strip()
        return out if out.startswith("/") else os.path.join(self.dbpath(), ".rpm.lock")

    # -- looking ----------------------------------------------------------------

    def installed(self, queries: Sequence[str]) -> Dict[str, str]:
        """For each query (``name``, ``name.arch`` or ``name-version[-release]``)
        that rpm finds installed, the query -> ``version-release`` of what is installed."""
        return {query: evr for query, (_name, evr, _when) in self._query("", queries).items()}

    def standing_in(self, names: Sequence[str]) -> Dict[str, Tuple[str, str, int]]:
        """For each of ``names`` (names no installed package has), an installed
        package that provides it (``yum-utils`` is a name dnf-plugins-core
        provides) or obsoletes it (a package renamed): name -> (its name,
        ``version-release``, when it was installed: seconds since the epoch)."""
        found = self._query("--whatprovides", names)
        rest = [name for name in names if name not in found]
        if rest:
            found.update(self._query("--whatobsoletes", rest))
        return found

    def _query(self, how: str, queries: Sequence[str]) -> Dict[str, Tuple[str, str, int]]:
        """``rpm -q [how] QUERY...``: each query that matches an installed package
        -> (that package's name, its ``epoch:version-release``, its install time)."""
        if not queries:
            return {}
        fmt = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{INSTALLTIME}\\n"
        # One rpm run for all: rpm -q answers each argument in order, with one
        # line per installed match (a name installed for two architectures or
        # in two versions has several) or a line saying there is none. Two
        # queries may match one package (``a`` and ``a.noarch``), so where one
        # answer ends cannot be told from the lines: a query that never matches
        # (no package name holds a space) follows each, and its "none" line
        # closes the answer before it.
        argv = ["rpm", "-q", *([how] if how else []), "--qf", fmt, "--"]
        for query in queries:
            argv += [query, _END]
        proc = _run(argv, check=False)
        answers: List[List[str]] = [[]]
        for line in proc.stdout.splitlines():
            if line.endswith(_END_LINES):
                answers.append([])
            else:
                answers[-1].append(line)
        if len(answers) != len(queries) + 1:  # rpm stopped early: no answer to trust
            raise DnfError("rpm -q", _tail(proc.stderr or proc.stdout))
        found: Dict[str, Tuple[str, str, int]] = {}
        for query, lines in zip(queries, answers):
            matches = [line.split("\t") for line in lines if line.count("\t") == 2]
            if matches:
                name, evr, when = matches[0]
                found[query] = (name, evr, int(when) if when.isdigit() else 0)
        return found

    def upgradable(self, names: Sequence[str], nogpgcheck: bool = False) -> List[str]:
        """Which installed ``names`` have a newer version in the enabled repositories."""
        if not names:
            return []
        argv = [self.dnf, "-q", "check-update", *_gpg(nogpgcheck), "--", *names]
        proc = _run(argv, check=False)
        if proc.returncode not in (0, 100):  # 100: updates available
            raise DnfError("dnf check-update", _tail(proc.stderr or proc.stdout))
        wanted = set(names)
        found = []
        for line in proc.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 3 and "." in fields[0]:
                # NAME.ARCH: asked for as NAME.ARCH, or as NAME (every architecture).
                for name in (fields[0], fields[0].rsplit(".", 1)[0]):
                    if name in wanted and name not in found:
                        found.append(name)
        return found

    # -- changing ---------------------------------------------------------------

    def run(self, transaction: Transaction, dry: bool = False) -> str:
        """Apply ``transaction`` as one dnf transaction; dnf's output, or DnfError.

        ``dry`` (--noop): dnf resolves it as it would (fetching metadata as it
        would) and is told no at its prompt (see mgmt.resources.pkgnoop)."""
        actions = transaction.actions()
        if not actions:
            return ""
        argv = [self.dnf, "--assumeno" if dry else "-y", *_gpg(transaction.nogpgcheck)]
        if transaction.remove:
            # A removal takes the packages that need the one removed, not also the
            # dependencies dnf once installed for it alone (its default): another
            # resource may want one of those installed, and nothing says so to dnf.
            # mgmt's PackageKit removal asks no autoremove either.
            argv.append(KEEP_DEPENDENCIES)
        script: Optional[str] = None
        if len(actions) == 1:
            action, specs = actions[0]
            argv += [action, "--", *specs]
        elif self.is_dnf5:
            argv.append("do")
            for action, specs in actions:
                argv += [f"--action={action}", *specs]
        else:
            # dnf4 mixes actions in one transaction through its shell.
            script = "".join(f"{a} {' '.join(specs)}\n" for a, specs in actions) + "run\n"
            argv += ["shell", "/dev/stdin"]
        deadline = time.monotonic() + LOCK_WAIT
        with self.lock:
            while True:
                proc = _run(argv, check=False, stdin=script)
                # rpm's lock taken by another process (rpm, PackageKit, another dnf):
                # dnf4 fails at once (its shell even exits 0). Wait for it, as dnf
                # waits for its own lock, and run the same transaction again.
                held = _RPM_LOCK.search(proc.stdout + proc.stderr)
                if held is None or not _wait_unlocked(held.group(1) or self.lockpath(), deadline):
                    break
        output = proc.stdout + "\n" + proc.stderr
        if proc.returncode != 0 and not (dry and ABORTED in output):
            words = " ".join(a for a, _ in actions)
            raise DnfError(f"dnf {words}", _tail(output), output)
        return output  # dnf4's shell says what it skipped on stderr


def _wait_unlocked(path: str, deadline: float) -> bool:
    """Wait until no process holds rpm's transaction lock at ``path`` (rpm takes
    it as an fcntl write lock); False when it is still held at ``deadline``.

    rpm says nothing when its lock is let go, and fcntl's own wait cannot be
    given a time limit or be ended: its holder is asked, ever less often."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True  # gone: try again at once
    log.info("another process holds rpm's transaction lock (%s): waiting for it", path)
    pause = 0.05
    try:
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                if time.monotonic() + pause > deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            fcntl.lockf(fd, fcntl.LOCK_UN)
            return True
    finally:
        os.close(fd)


def _which(name: str) -> Optional[str]:
    """``name`` on PATH, as shutil.which finds it: importing shutil (with the
    bz2 and lzma modules it loads) costs 6 ms of every pkg agent's start."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _gpg(nogpgcheck: bool) -> List[str]:
    return ["--nogpgcheck"] if nogpgcheck else []


def _run(
    argv: List[str], check: bool = True, stdin: Optional[str] = None
) -> "subprocess.CompletedProcess[str]":
    try:
        proc = run_tool(argv, stdin)
    except OSError as err:
        raise DnfError(argv[0], f"cannot run: {err.strerror or err}") from None
    if check and proc.returncode != 0:
        raise DnfError(" ".join(argv[:2]), _tail(proc.stderr or proc.stdout))
    return proc
