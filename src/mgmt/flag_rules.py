"""The rules of ``mgmt run``'s flags, checked before anything is started or
written: each broken rule is an InputError (exit 2) naming the flag and its
value.

The options themselves, their types, defaults and bounds, are the field table
of :mod:`mgmt.settings`; this module is what the command line adds to it (which
flags go together, what a value must look like, that the files named are
files). Only the local command line imports it: a remote agent gets settings
already checked, as JSON (mgmt.settings.settings_from_json).
"""

import os
import stat
import sys
from typing import Iterable, List, Optional, Tuple

from mgmt.errors import InputError
from mgmt.graph.model import RELATIVE_PYTHON, relative_path
from mgmt.settings import (
    FIELD_BY_NAME,
    FIELDS,
    REMOTE,
    EtcdCredentials,
    Field,
    Settings,
    check_hostname,
    check_one_line,
)

FIELD_BY_FLAG = {field.flag: field for field in FIELDS if field.flag}

__all__ = [
    "check_bounds",
    "check_graph_file",
    "check_paths",
    "check_prefix",
    "check_settings",
    "credentials_from_stdin",
    "misplaced_run_flag",
    "remote_only",
]


def remote_only(field: Field) -> bool:
    """A flag that only a remote run (--remote) reads."""
    return field.group == REMOTE and field.name != "remotes"


def check_settings(settings: Settings, given: Iterable[str] = ()) -> Settings:
    """The rules of ``mgmt run``'s flags, all checked before anything is started
    or written: an InputError (exit 2) naming the flag and its value. The files
    they name are looked at by :func:`check_paths`. Returns the settings with
    --seeds written out in full (``host:port`` as ``http://host:port``), and a remote
    run's state in a private temp dir unless --prefix was given.

    ``given``: the fields set on the command line. A remote-only flag given
    without --remote is refused even at its default value: the user asked for
    something this run would not do.
    """
    given = set(given)
    check_bounds(settings)
    if settings.remotes:
        if settings.no_server:
            raise InputError("--no-server cannot be used with --remote: the initiator runs etcd")
        if settings.file is not None:  # not ignored in silence: a remote run applies no graph here
            raise InputError(
                "--file cannot be used with --remote: each graph of a remote run names its host"
                " (give this machine's graph a remote: of its own, e.g. ssh://root@localhost)"
            )
        if "prefix" not in given:  # as fab deploy's: the run's state is its own
            # In /var/lib/mgmt a normal user's run failed, and two runs at once, to other
            # hosts, found each other's etcd there (one failed, its hosts' exports lost).
            settings = settings._replace(tmp_prefix=True)
        if "hostname" in given:  # not ignored in silence: each agent is named for its host
            raise InputError(
                "--hostname cannot be used with --remote: each host of a remote run is"
                " named by its graph's remote:"
            )
        if settings.attach:
            _check_attach(given)
        if settings.detach and "no_caching" in given:  # ignored: the agents run from it
            raise InputError(
                "--no-caching cannot be used with --detach: the cluster's agents run from the"
                " cached bundle (`mgmt stop --no-caching` removes it with the cluster)"
            )
        if not settings.detach:  # --attach takes the cluster as it was made
            for flag in ("--cluster-size", "--cluster-address"):
                if FIELD_BY_FLAG[flag].name in given:
                    raise InputError(f"{flag} needs --detach: only a detached cluster uses it")
    else:
        for field in FIELDS:
            if remote_only(field) and field.name in given:
                raise InputError(f"{field.flag} needs --remote: only a remote run uses it")
        if settings.file is None:
            raise InputError("mgmt run needs --file GRAPH.yaml (or --remote FILE)")
    if settings.hostname:  # "": the system's, which mgmt.cli fills in (and so checks)
        _flag_value(check_hostname, "--hostname", settings.hostname)
    settings = settings._replace(
        seeds=_check_seeds(settings.seeds, "seeds" in given, bool(settings.remotes))
    )
    # Given empty, these would quietly mean their defaults (find a Python, no sudo).
    if "python" in given and not settings.python:
        raise InputError("--python: empty; give a name or path (leave the flag out to find one)")
    if "sudo_user" in given and not settings.sudo_user:
        raise InputError("--sudo-user: empty; give a user (--sudo alone is root)")
    if "cluster_size" in given and not settings.cluster_size:
        raise InputError(
            "--cluster-size 0: at least 1 (leave the flag out for the default: 1 member"
            " for one or two hosts, 3 from three)"
        )
    if settings.python:
        _flag_value(_path, "--python", settings.python)
    if settings.sudo_user:
        _flag_value(_word, "--sudo-user", settings.sudo_user)
    for value in settings.cluster_address:
        host, sep, address = value.partition("=")
        if not (sep and host and address) or any(c.isspace() for c in value):
            raise InputError(f"--cluster-address {value!r}: expected HOST=ADDRESS")
        _flag_value(_word, "--cluster-address", address)
    return settings


# What --attach would ignore: it pushes graphs to a cluster that runs as --detach made it.
ATTACH_IGNORES = {
    "noop": "the cluster's agents apply every graph it pushes, as --detach started them",
    "converged_timeout": "it runs until ^C",
    "seeds": "the cluster runs its own etcd",
    "cluster_size": "the cluster keeps the members it was made with",
    "cluster_address": "the cluster keeps the members it was made with",
}


def _check_attach(given: Iterable[str]) -> None:
    for name, why in ATTACH_IGNORES.items():
        if name in given:
            raise InputError(f"{FIELD_BY_NAME[name].flag} cannot be used with --attach: {why}")


def misplaced_run_flag(argv: List[str]) -> Optional[str]:
    """What to say of a command line that starts with a flag of ``mgmt run``, or None:
    argparse took the graph of ``mgmt --remote a.yaml`` for a command ("invalid
    choice: 'a.yaml'")."""
    flag = argv[0].partition("=")[0] if argv else ""
    if flag in set(FIELD_BY_FLAG) | {"--etcd-auth-stdin", "-q"}:
        return f"{flag} is a flag of `mgmt run`: mgmt run {flag} ..."
    return None


def check_bounds(settings: Settings) -> None:
    """Every number within its field's bounds."""
    for field in FIELDS:
        value = getattr(settings, field.name)
        if field.bounds is not None and not field.bounds[0] <= value <= field.bounds[1]:
            low, high = field.bounds
            raise InputError(f"{field.flag} {value}: must be between {low} and {high}")


def check_paths(settings: Settings) -> Settings:
    """What check_settings cannot tell from the values alone: that the graph
    files are files, and that --prefix is or can be a directory (stat() only)."""
    if settings.file is not None:
        check_graph_file("--file", settings.file)
    for path in settings.remotes:
        check_graph_file("--remote", os.fspath(path))
    if settings.ssh_identity is not None:
        check_identity(settings.ssh_identity)
    if not settings.tmp_prefix:
        check_prefix(settings.prefix)
    return settings


def check_identity(path: str) -> None:
    """--ssh-identity names a readable file: said before any host is tried, not
    as every host's connection failure."""
    try:
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode):  # opened only then: a FIFO would wait for a writer
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as err:
        raise InputError(f"--ssh-identity {path}: {err.strerror or err}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"--ssh-identity {path}: Is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"--ssh-identity {path}: not a regular file")


def _flag_value(check, flag: str, value: str) -> None:
    try:
        check(flag, value)
    except ValueError as err:
        raise InputError(str(err)) from None


def _path(name: str, value: str) -> None:
    """An interpreter's path: START quotes it, so spaces are fine, but a leading
    '-' would read as an option of whatever is given it."""
    check_one_line(name, value)
    if value.startswith("-") or not value.strip():
        raise ValueError(f"{name}: expected a name or path, got {value!r}")
    if relative_path(value):
        raise ValueError(f"{name} {value!r} {RELATIVE_PYTHON}")


def _word(name: str, value: str) -> None:
    """A command, user or address put on a remote command line: one word that
    no program could read as an option."""
    check_one_line(name, value)
    if value.startswith("-") or any(c.isspace() for c in value):
        raise ValueError(f"{name}: expected a name or path, got {value!r}")


def _check_seeds(seeds: Tuple[str, ...], given: bool, remote: bool) -> Tuple[str, ...]:
    """The seeds, each as ``scheme://host:port``. A remote run's initiator hands
    its tunnels the first one's host and port as they are written (a bare
    ``host:port`` was "not an http:// URL" there, after the bundle was found),
    and its hosts speak plain http through those tunnels."""
    if given and not seeds:  # `--seeds ,` would start an embedded etcd instead
        raise InputError("--seeds: no URL given")
    if not seeds:
        return seeds
    from mgmt.world.client import normalize_url, shown_url  # urllib.parse: not at agent start

    full = []
    for url in seeds:
        try:
            full.append(normalize_url(url))
        except InputError as err:
            raise InputError(f"--seeds: {err}") from None
        if remote and not full[-1].startswith("http://"):
            raise InputError(
                f"--seeds {shown_url(url)!r}: a remote run's hosts reach etcd through their"
                " SSH tunnels, which carry http:// only; give the cluster's http:// URL"
            )
    return tuple(full)


def check_graph_file(flag: str, path: str) -> None:
    """A graph file that exists and is a regular file, found with stat() only:
    opening a FIFO (or a tape) to read it would block for ever."""
    if not path:
        raise InputError(f"{flag}: empty path")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{flag} {path}: the graph file does not exist") from None
    except (OSError, ValueError) as err:
        raise InputError(f"{flag} {path}: {getattr(err, 'strerror', None) or err}") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise InputError(f"{flag} {path}: {kind}; expected a graph file")


def check_prefix(path: str) -> None:
    """--prefix: a directory, or one that can be made (its nearest existing
    ancestor is a directory); what makedirs would fail on for lack of rights
    is left to it (an operation that failed, exit 1)."""
    if not path:
        raise InputError("--prefix: empty path")
    probe = os.path.abspath(path)
    while True:
        try:
            mode = os.stat(probe).st_mode
        except (FileNotFoundError, NotADirectoryError):
            probe = os.path.dirname(probe)  # the root exists: this ends
            continue
        except (OSError, ValueError) as err:
            raise InputError(f"--prefix {path}: {getattr(err, 'strerror', None) or err}") from None
        if stat.S_ISDIR(mode):
            return
        where = "" if probe == os.path.abspath(path) else f" ({probe} is not one)"
        raise InputError(f"--prefix {path}: not a directory{where}")


def credentials_from_stdin() -> EtcdCredentials:
    """--etcd-auth-stdin: ``username:password`` on stdin's first line (never on the
    command line)."""
    try:
        line = sys.stdin.readline()
    except (OSError, ValueError) as err:  # a stdin that cannot be read, or not decoded
        raise InputError(f"--etcd-auth-stdin: cannot read stdin: {err}") from None
    username, sep, password = line.rstrip("\r\n").partition(":")
    if not sep or not username:
        raise InputError("--etcd-auth-stdin expects one line 'username:password' on stdin")
    try:  # stdin's bytes that are no UTF-8 come as surrogates: etcd's JSON holds none
        line.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("--etcd-auth-stdin: the line on stdin is not UTF-8 text") from None
    return EtcdCredentials(username, password)
