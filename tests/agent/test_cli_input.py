"""`mgmt run` refuses bad flags up front: exit 2, one line naming the flag and
its value, and nothing started or written (no state dir, no etcd) before."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from helpers import _pythonpath, run_mgmt

GRAPH = "graph: t\nresources: {}\n"


def refused(result: subprocess.CompletedProcess, said: str) -> None:
    """Exit 2 and one line that starts as expected; no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"mgmt: error: {said}"), result.stderr


@pytest.fixture()
def graph(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(GRAPH)
    return path


def _run_with_prefix(tmp_path, graph, *flags: str) -> subprocess.CompletedProcess:
    """A run that, given the chance, would make --prefix and start etcd in it
    (its data dir is <prefix>/etcd: no prefix, no etcd). Not a look at the etcd
    processes: other tests start theirs at the same time."""
    prefix = tmp_path / "prefix"
    result = run_mgmt(["--file", str(graph), "--prefix", str(prefix), *flags])
    assert not prefix.exists(), "the state dir was made before the flags were checked"
    assert "etcd serving" not in result.stderr
    return result


@pytest.mark.parametrize(
    ("seed", "said"),
    [
        ("http://[::1", "--seeds: bad etcd URL 'http://[::1': Invalid IPv6 URL"),
        ("http://", "--seeds: bad etcd URL 'http://': no host name"),
        ("http://127.0.0.1:1/path?q=1", "--seeds: bad etcd URL 'http://127.0.0.1:1/path?q=1'"),
        ("http://127.0.0.1:0", "--seeds: bad etcd URL 'http://127.0.0.1:0': port 0"),
        ("http://a b:1", "--seeds: bad etcd URL 'http://a b:1': not a host name"),
        (",", "--seeds: no URL given"),
        (" ", "--seeds: no URL given"),
    ],
)
def test_bad_seeds_are_refused_before_anything_starts(tmp_path, graph, seed, said):
    refused(_run_with_prefix(tmp_path, graph, "--seeds", seed), said)


def test_a_password_in_a_seed_is_not_printed(tmp_path, graph):
    result = _run_with_prefix(tmp_path, graph, "--seeds", "http://user:hunter2@127.0.0.1:1")
    refused(result, "--seeds: bad etcd URL 'http://user:***@127.0.0.1:1'")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    "flags",
    [
        ["--converged-timeout", "10000000000"],  # the converger died of an OverflowError
        ["--converged-timeout", "-2"],
        ["--lost-timeout", "99999999999", "--remote"],
        ["--lost-timeout", "0", "--remote"],
        ["--cconns", "-1", "--remote"],
        ["--cconns", "10000000000000000000000", "--remote"],
        ["--cluster-size", "-1", "--remote"],
    ],
)
def test_numbers_out_of_bounds_are_refused(tmp_path, graph, flags):
    if flags[-1] == "--remote":  # a remote-only flag: with a (never contacted) remote
        remote = tmp_path / "r.yaml"
        remote.write_text("remote: nohost.invalid\n" + GRAPH)
        args = [*flags, str(remote), "--prefix", str(tmp_path / "prefix")]
    else:
        args = ["--file", str(graph), "--prefix", str(tmp_path / "prefix"), *flags]
    result = run_mgmt(args, timeout=20)
    refused(result, f"{flags[0]} {flags[1]}: must be between ")
    assert not (tmp_path / "prefix").exists()


def test_the_longest_converged_timeout_is_accepted(tmp_path, graph):
    from mgmt.flag_rules import check_settings
    from mgmt.settings import MAX_SECONDS, Settings

    check_settings(Settings(file=str(graph), converged_timeout=MAX_SECONDS, tmp_prefix=True))


def test_a_python_path_with_a_space_is_accepted_as_in_a_graph(tmp_path):
    from mgmt.flag_rules import check_settings
    from mgmt.settings import Settings

    remote = tmp_path / "r.yaml"
    remote.write_text("remote: nohost.invalid\n" + GRAPH)
    python = "/opt/my python/bin/python3"  # START quotes it, as a graph's python: key
    check_settings(Settings(remotes=(remote,), python=python), {"remotes", "python"})


def test_a_fifo_as_the_graph_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = _run_with_prefix(tmp_path, fifo)  # run_mgmt's timeout: a hang fails the test
    refused(result, f"--file {fifo}: not a regular file")


@pytest.mark.parametrize(
    ("path", "said"),
    [("", "--file: empty path"), (".", "--file .: a directory"), ("nope", "--file nope: the")],
)
def test_a_graph_path_that_is_no_graph_file_names_the_flag(tmp_path, path, said):
    refused(_run_with_prefix(tmp_path, path), said)


@pytest.mark.parametrize("command", ["run", "status", "stop"])
def test_an_empty_remote_is_an_empty_path_not_the_current_folder(tmp_path, graph, command):
    # Read as a Path, "" was ".": "--remote .: a directory; expected a graph file".
    refused(_cluster(command, "--remote", str(graph), "--remote", ""), "--remote: empty path")


def test_a_second_file_is_refused_not_ignored(tmp_path, graph):
    other = tmp_path / "other.yaml"
    other.write_text(GRAPH)
    result = _run_with_prefix(tmp_path, graph, "--file", str(other))
    refused(result, f"--file given more than once ('{graph}', '{other}')")


@pytest.mark.parametrize(
    "flags",
    [
        ["--detach"], ["--attach"], ["--cconns", "5"], ["--cconns", "0"], ["--sudo"],
        ["--python", "x"], ["--cluster-size", "3"], ["--sudo-user", "u"],
        ["--cluster-address", "garbage"], ["--lost-timeout", "30"], ["--no-caching"],
        ["--ssh-identity", "k"], ["--ssh-accept-new"], ["--allow-interactive"],
        ["--ask-sudo-password"],
    ],
)  # fmt: skip
def test_remote_only_flags_without_remote_are_refused(tmp_path, graph, flags):
    refused(_run_with_prefix(tmp_path, graph, *flags), f"{flags[0]} needs --remote")


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--detach", "--cluster-address", "garbage"], "--cluster-address 'garbage': expected"),
        (["--detach", "--cluster-address", "h=-oX"], "--cluster-address: expected a name or path"),
        # Without --detach they were not even looked at.
        (["--cluster-address", "h=10.0.0.1"], "--cluster-address needs --detach"),
        (["--cluster-size", "3"], "--cluster-size needs --detach"),
        # --attach ignored them: a cluster it pushed graphs to applied them under --noop.
        (["--attach", "--noop"], "--noop cannot be used with --attach: the cluster's agents"),
        (["--attach", "--detach", "--noop"], "--noop cannot be used with --attach"),
        (["--attach", "--converged-timeout", "5"], "--converged-timeout cannot be used with"),
        (["--attach", "--cluster-size", "3"], "--cluster-size cannot be used with --attach"),
        (["--attach", "--detach", "--cluster-address", "h=10.0.0.1"], "--cluster-address cannot"),
        # Taken and ignored: the cluster's agents run from the cached bundle.
        (["--detach", "--no-caching"], "--no-caching cannot be used with --detach"),
        (["--attach", "--detach", "--no-caching"], "--no-caching cannot be used with --detach"),
        # It said "--detach cannot be used with --seeds".
        (["--attach", "--seeds", "http://127.0.0.1:1"], "--seeds cannot be used with --attach"),
        # The hand-over has no run document: --json printed nothing and said so nowhere.
        (["--detach", "--json"], "--json cannot be used with --detach"),
        (["--attach", "--json"], "--json cannot be used with --attach"),
        (["--python=-x"], "--python: expected a name or path, got '-x'"),
        (["--python", " "], "--python: expected a name or path"),
        (["--python", "./python3"], "--python './python3' is a relative path: give a name"),
        (["--sudo-user=-s"], "--sudo-user: expected a name or path"),
        # Empty, they quietly meant their defaults: find a Python, no sudo at all.
        (["--python="], "--python: empty; give a name or path"),
        (["--sudo-user="], "--sudo-user: empty; give a user"),
        # 0 quietly meant the default size.
        (["--detach", "--cluster-size", "0"], "--cluster-size 0: at least 1"),
        # A missing key was every host's "cannot connect: No such file or directory".
        (["--ssh-identity", "/no/such/key"], "--ssh-identity /no/such/key: No such file"),
        (["--ssh-identity", "/"], "--ssh-identity /: Is a directory"),
        (["--ssh-identity", "FIFO"], "--ssh-identity FIFO: not a regular file"),  # hung
        # Ignored in silence: each agent of a remote run is named by its graph's remote:.
        (["--hostname", "web1"], "--hostname cannot be used with --remote: each host"),
        # Exit 1 once the bundle was found and the state dir made: the tunnels carry http.
        (["--seeds", "https://127.0.0.1:2379"], "--seeds 'https://127.0.0.1:2379': a remote"),
    ],
)
def test_remote_flag_values_are_checked_before_any_host_is_contacted(tmp_path, flags, said):
    remote = tmp_path / "r.yaml"
    remote.write_text("remote: nohost.invalid\n" + GRAPH)
    if "FIFO" in flags:
        os.mkfifo(tmp_path / "fifo")
        flags = [str(tmp_path / "fifo") if f == "FIFO" else f for f in flags]
        said = said.replace("FIFO", str(tmp_path / "fifo"))
    result = run_mgmt(["--remote", str(remote), "--prefix", str(tmp_path / "p"), *flags], 20)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr.strip().splitlines()[-1], result.stderr
    assert "nohost.invalid" not in result.stderr and not (tmp_path / "p").exists()


def test_a_seed_written_host_port_leads_a_remote_run_to_that_etcd(tmp_path):
    """``--seeds 127.0.0.1:2379``, as a --file run takes it, was refused by a remote
    run (exit 1, "is not an http:// URL") once its bundle was found."""
    from mgmt.world.server import EmbeddedEtcd

    remote = tmp_path / "r.yaml"
    remote.write_text("remote: nohost.invalid\n" + GRAPH)
    with EmbeddedEtcd(tmp_path / "etcd") as cluster:
        seed = cluster.client_url.partition("://")[2]
        result = run_mgmt(["--remote", str(remote), "--tmp-prefix", "--seeds", seed], 60)
    assert "is not an http:// URL" not in result.stderr, result.stderr
    # Past the cluster's check, on to the host: the one failure is the host's own.
    assert result.returncode == 1, result.stderr
    assert "nohost.invalid: failed: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["a/b\nc", "../..", " ", "a\x7fb", "a\u2028b", "a\x85b"])
@pytest.mark.parametrize("server", [[], ["--no-server"]])
def test_a_bad_hostname_is_refused_up_front_in_every_mode(tmp_path, graph, name, server):
    result = _run_with_prefix(tmp_path, graph, "--hostname", name, *server)
    refused(result, "--hostname: ")
    assert repr(name) in result.stderr


def test_a_long_bad_hostname_is_cut_in_its_error(tmp_path, graph):
    result = _run_with_prefix(tmp_path, graph, "--hostname", "a/" + "b" * 100_000)
    refused(result, "--hostname: not a host name: 'a/bbbb")
    assert len(result.stderr) < 300, result.stderr[:300]


@pytest.mark.parametrize("kind", ["file", "empty", "under a file"])
def test_a_prefix_that_cannot_be_a_directory_is_bad_input(tmp_path, graph, kind):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    prefix = {"file": str(a_file), "empty": "", "under a file": f"{a_file}/state"}[kind]
    result = run_mgmt(["--file", str(graph), "--prefix", prefix, "--no-server"])
    refused(result, f"--prefix {prefix}: not a directory" if prefix else "--prefix: empty path")
    assert a_file.read_text() == ""


def test_an_empty_hostname_is_refused_not_the_systems_taken(tmp_path, graph):
    refused(_run_with_prefix(tmp_path, graph, "--hostname="), "--hostname: empty; give a name")


def test_etcd_auth_without_seeds_is_refused(tmp_path, graph):
    """The embedded etcd has no users: the run failed as etcd refused to authenticate."""
    refused(
        _run_with_prefix(tmp_path, graph, "--etcd-auth-stdin"), "--etcd-auth-stdin needs --seeds"
    )


def test_verbose_and_quiet_together_are_refused(tmp_path, graph):
    """They cancelled out in silence: neither was what the user got."""
    refused(_run_with_prefix(tmp_path, graph, "-v", "-q"), "-v and -q: give one or the other")


@pytest.mark.parametrize(
    "flags",
    [
        ["--converged-timeout", "0", "--converged-timeout", "1"],
        ["--hostname", "a", "--hostname", "b"],
    ],
)
def test_a_value_given_twice_is_refused_not_the_last_taken(tmp_path, graph, flags):
    refused(_run_with_prefix(tmp_path, graph, *flags), f"{flags[0]} given more than once")


def _cluster(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt", command, *args], capture_output=True, text=True,
        timeout=20, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["status", "stop"])
def test_status_and_stop_check_their_flags_as_run_does(tmp_path, command):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(_cluster(command, "--remote", str(fifo)), f"--remote {fifo}: not a regular file")
    remote = tmp_path / "r.yaml"
    remote.write_text("remote: nohost.invalid\n" + GRAPH)
    refused(_cluster(command, "--remote", str(remote), "--lost-timeout", "-5"),
            "--lost-timeout -5: must be between")  # fmt: skip
    refused(_cluster(command, "--remote", str(remote), "--lost-timeout", "5", "--lost-timeout",
                     "6"), "--lost-timeout given more than once")  # fmt: skip


@pytest.mark.parametrize("case", ["graph", "flag", "remote graph"])
def test_json_gets_a_document_for_bad_input_too(tmp_path, case):
    """A script reading --json's stdout got nothing to parse when the run was refused."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("graph: t\nresources:\n  file:\n  - name: f\n    path: /x\n    mode: 99z\n")
    remote = tmp_path / "r.yaml"
    remote.write_text("remote: nohost.invalid\n" + bad.read_text())
    args, said = {
        "graph": (["--file", str(bad), "--noop"], f"{bad}:6: file[f]: mode: '99z' is not"),
        "flag": (["--file", str(bad), "--hostname", "a", "--hostname", "b"], "--hostname given"),
        "remote graph": (["--remote", str(remote)], f"{remote}:7: file[f]: mode: '99z'"),
    }[case]
    result = run_mgmt([*args, "--json", "--prefix", str(tmp_path / "p")], timeout=20)
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"mgmt: error: {said}"), result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "p").exists()
    doc = json.loads(result.stdout)  # the whole of stdout is the one document
    assert (doc["version"], doc["status"]) == (1, "failed")
    assert doc["errors"] == [error[len("mgmt: error: ") :]]
    if case == "remote graph":
        assert doc["hosts"] == []
    else:
        assert (doc["resources"], doc["converged"], doc["noop"]) == ([], False, case == "graph")
        assert doc["summary"] == dict.fromkeys(doc["summary"], 0)
        assert doc["host"] == ("b" if case == "flag" else socket.gethostname())


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--converged-timeout", "abc"], "argument --converged-timeout: invalid int value: 'abc'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_json_gets_a_document_for_flags_argparse_refuses(tmp_path, flags, said):
    """argparse's own errors (a bad value, an unknown flag) printed its usage and no
    document."""
    result = run_mgmt(["--no-server", *flags, "--json"], timeout=20)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: mgmt")
    assert result.stderr.strip().splitlines()[-1].endswith(f": error: {said}")
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["errors"], doc["resources"]) == ("failed", [said], [])
    plain = run_mgmt(["--no-server", *flags], timeout=20)  # without --json: no document
    assert (plain.returncode, plain.stdout) == (2, "")


@pytest.mark.parametrize("flag", ["--file", "--remote"])
@pytest.mark.parametrize("exists", [True, False], ids=["bad graph", "missing"])
def test_a_graph_path_with_a_newline_or_an_escape_is_said_on_one_line(tmp_path, flag, exists):
    """The path went out as written: a two-line error, or a terminal told to
    turn red by the name of a file."""
    path = tmp_path / "a\nb\x1b[31m.yaml"
    if exists:
        path.write_text("graph: g\nbogus: 1\n")
    result = run_mgmt([flag, str(path), "--prefix", str(tmp_path / "p")])
    shown = str(path).replace("\n", "\\n").replace("\x1b", "\\x1b")
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and shown in errors[0], result.stderr
    assert "\x1b" not in result.stderr and not (tmp_path / "p").exists()


def _with_stdin(args, stdin, closed: int = 0) -> subprocess.CompletedProcess:
    """`mgmt run ARGS` with stdin as given: bytes, or None for none at all (closed,
    or ``closed`` another of the three)."""
    return subprocess.run(
        [sys.executable, "-m", "mgmt", "run", *args],
        input=stdin, capture_output=True, timeout=30,
        preexec_fn=(lambda: os.close(closed)) if stdin is None else None,
        env=dict(os.environ, PYTHONPATH=_pythonpath()),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("stdin", "said"),
    [
        # sys.stdin is None: it was "internal error: AttributeError: 'NoneType' object
        # has no attribute 'readline'", exit 1.
        (None, "--etcd-auth-stdin expects one line 'username:password' on stdin"),
        # Taken as surrogates, sent to etcd as a user no one has.
        (b"\xff:pw\n", "--etcd-auth-stdin: the line on stdin is not UTF-8 text"),
    ],
    ids=["closed", "not UTF-8"],
)
@pytest.mark.parametrize("mode", ["file", "remote"])
def test_etcd_credentials_stdin_that_cannot_be_read_is_bad_input(
    tmp_path, graph, stdin, said, mode
):
    remote = tmp_path / "r.yaml"
    remote.write_text("remote: nohost.invalid\n" + GRAPH)
    where = ["--file", str(graph)] if mode == "file" else ["--remote", str(remote)]
    prefix = tmp_path / "p"
    flags = [*where, "--seeds", "http://127.0.0.1:9", "--etcd-auth-stdin", "--prefix", str(prefix)]
    result = _with_stdin(flags, stdin)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mgmt: error: {said}"), stderr
    assert not prefix.exists()


def test_bad_input_with_json_and_stdout_closed_is_still_exit_2_in_one_line(tmp_path):
    """``>&-``: the --json document for bad input went to a None sys.stdout, a
    traceback from inside the error's handling."""
    result = _with_stdin(["--file", str(tmp_path / "none.yaml"), "--json"], None, closed=1)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.strip().splitlines() == [
        f"mgmt: error: --file {tmp_path}/none.yaml: the graph file does not exist"
    ]


def test_a_sudo_password_asked_of_a_closed_stdin_is_none_given(tmp_path):
    """``<&-``: getpass read a None sys.stdin, an internal error (exit 1)."""
    remote = tmp_path / "r.yaml"
    remote.write_text("remote: nohost.invalid\n" + GRAPH)
    flags = ["--remote", str(remote), "--sudo", "--ask-sudo-password", "--tmp-prefix"]
    result = subprocess.run(  # a session of its own: no terminal for getpass to open
        [sys.executable, "-m", "mgmt", "run", *flags], capture_output=True, timeout=30,
        preexec_fn=lambda: os.close(0), start_new_session=True,
        env=dict(os.environ, PYTHONPATH=_pythonpath()),
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.rstrip().endswith("mgmt: error: --ask-sudo-password: no password given")
    assert "nohost.invalid" not in stderr


@pytest.mark.parametrize("first", ["--remote", "--file", "--file=g.yaml", "--noop"])
def test_a_run_flag_given_before_run_is_said_so(tmp_path, first):
    """`mgmt --remote a.yaml`: argparse took the graph for a command ("invalid
    choice: 'a.yaml'")."""
    argv = [first, "g.yaml"] if "=" not in first else [first]
    result = subprocess.run(
        [sys.executable, "-m", "mgmt", *argv], capture_output=True, text=True, timeout=30,
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=_pythonpath()), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    flag = first.partition("=")[0]
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"mgmt: error: {flag} is a flag of `mgmt run`: mgmt run {flag} ..."
    )
