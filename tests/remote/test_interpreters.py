"""Which Python runs the agent on a host: discovery, python:, and hosts with none.

Discovery order (START): python3, /usr/libexec/platform-python, python3.13 ..
python3.6, then those in /usr/local/bin by path (sudo's secure_path may leave it
out), unless the graph's ``python:`` key or ``--python`` names one. The
hosts are real throw-away hosts; what they have is changed inside their own
mount namespace only: every python3/python3.N on PATH hidden under an empty,
non-executable file, and RHEL 8's /usr/libexec/platform-python made by an
overlay on /usr/libexec (upper layer in the host's private /tmp) holding a copy
of this machine's interpreter (its stdlib is found from /usr, as on RHEL).
pyenv's interpreters (3.6, 3.9, 3.12, 3.13) are bind-mounted into a host's
private /root (a link), where ``python: ~/.pyenv/...`` finds them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from remote_helpers import (
    HIDE_PYTHONS,
    MGMT,
    assert_clean,
    file_graph,
    graph_for,
    mgmt_run,
    need_hosts,
    summary,
)

from mgmt.remote.orchestration.agentstart import NO_PYTHON
from support import require_tools
from support.hosts import ssh_hosts
from support.polling import wait_until
from support.users import sudo_users

PYENV = Path.home() / ".pyenv" / "versions"
PYENV_VERSIONS = ("3.6", "3.9", "3.12", "3.13")
FILES = {
    "file1a": "i am file1a\n",
    "file1b": "i am file1b\n",
    "file2a": "i am file2a, exported from host a\n",
    "file2b": "i am file2b, exported from host b\n",
}

# A Python built from source: in /usr/local/bin alone (copied there before the
# others are hidden; the copy finds its stdlib under /usr all the same).
LOCAL_BIN_PYTHON = (
    'mkdir -p /tmp/.local-bin && cp "$(readlink -f /usr/bin/python3)" /tmp/.local-bin/python3\n'
    + HIDE_PYTHONS.replace("exit 0\n", "")
    + "mount --bind /tmp/.local-bin /usr/local/bin\n"
)

PLATFORM_PYTHON = r"""
real=$(readlink -f /usr/bin/python3)
mkdir -p /tmp/.libexec/upper /tmp/.libexec/work
mount -t overlay overlay \
    -o lowerdir=/usr/libexec,upperdir=/tmp/.libexec/upper,workdir=/tmp/.libexec/work /usr/libexec
cp "$real" /usr/libexec/platform-python
"""


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["a", "b", "plat", "none", "local"]) as hosts:
        hosts["plat"].run(PLATFORM_PYTHON)
        hosts["local"].run(LOCAL_BIN_PYTHON)
        for name in ("plat", "none"):
            hosts[name].run(HIDE_PYTHONS)
        # pyenv's interpreters, seen at ~/.pyenv inside a and b (their /root is a private
        # tmpfs: a link through this process's root reaches this machine's, as root).
        for name in ("a", "b"):
            mine = f"/proc/{os.getpid()}/root{PYENV.parent}"
            hosts[name].run(["ln", "-s", mine, "/root/.pyenv"])
        yield hosts


def test_the_hidden_pythons_are_hidden(pool):
    """What the discovery tests rely on: only platform-python (or nothing) is left."""
    for name in ("plat", "none"):
        found = pool[name].run(
            "for p in python3 python3.11 python3.13; do command -v $p; done; exit 0"
        )
        assert found.stdout == "", found.stdout
    assert pool["plat"].exists("/usr/libexec/platform-python")
    assert not pool["none"].exists("/usr/libexec/platform-python")


def test_platform_python_is_found_and_a_host_with_none_gets_one_line(pool, bundle, tmp_path):
    graphs = [file_graph(n, n, tmp_path) for n in ("plat", "none")]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert done.returncode == 1, done.stdout + done.stderr
    rows = summary(done.stdout)
    assert rows["plat"][0] == "converged"
    assert pool["plat"].read_file("/tmp/only-plat") == "i am plat"
    assert re.search(
        r"plat: Running \(Python 3\.\d+, /usr/libexec/platform-python\): ", done.stderr
    )
    errors = [line for line in done.stderr.splitlines() if "none: failed:" in line]
    assert len(errors) == 1 and errors[0].endswith("none: failed: " + NO_PYTHON), done.stderr
    assert rows["none"][0] == "failed"
    assert "Traceback" not in done.stderr
    for name in ("plat", "none"):
        assert_clean(pool[name])
    # Nothing was copied to a host that cannot run it.
    assert pool["none"].listdir("/root/.cache/mgmt/bundles") == []


def test_a_python_in_usr_local_bin_alone_is_found_through_sudos_secure_path(pool, bundle, tmp_path):
    """RHEL's secure_path has no /usr/local/bin: through sudo, a host whose only
    Python was built from source there was "no Python 3.6+ found; install
    python3", while the login found it."""
    require_tools("sudo", "useradd", "visudo")
    host = pool["local"]
    assert host.run("ls /usr/local/bin").stdout.split() == ["python3"]
    with sudo_users(["securepath"], Path(str(pool.identity) + ".pub")) as users:
        user = users["securepath"]
        graph = file_graph("local", f"{user.name}@{host.address}", tmp_path)
        done = mgmt_run(pool, bundle, [graph], "--sudo", "--converged-timeout=1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(
            rf"{host.address}: Running \(Python 3\.\d+, /usr/local/bin/python3\): sudo -H -u root ",
            done.stderr,
        ), done.stderr
        owner = host.run(["stat", "-c", "%U", "/tmp/only-local"]).stdout.strip()
        assert (owner, host.read_file("/tmp/only-local")) == ("root", "i am local")
        assert_clean(host)
    host.run("rm -f /tmp/only-local")


def test_a_detached_cluster_takes_the_python_an_attached_run_finds(pool, bundle, tmp_path):
    """detached.sh took /usr/bin/python3 or python3 and nothing else: on a host whose
    only Python is RHEL 8's platform-python, --detach failed "no Python at python3"
    where the attached run found one."""
    plat = pool["plat"]
    graph = file_graph("plat", "plat", tmp_path)
    try:
        done = mgmt_run(pool, bundle, [graph], "--detach", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(
            r"^plat \| running on Python 3\.\d+\.\d+ \(/usr/libexec/platform-python\)",
            done.stdout,
            re.M,
        ), done.stdout
        assert plat.read_file("/tmp/only-plat") == "i am plat"
    finally:
        stop = mgmt_stop(pool, bundle, graph)
    assert stop.returncode == 0 and "plat: stopped agent, etcd" in stop.stdout, stop.stdout
    assert not plat.exists("/root/.local/state/mgmt")
    plat.run("rm -f /tmp/only-plat")
    # A host with none is told what to install, as in an attached run.
    done = mgmt_run(pool, bundle, [file_graph("none", "none", tmp_path)], "--detach")
    assert done.returncode != 0, done.stdout + done.stderr
    assert NO_PYTHON in done.stderr and "Traceback" not in done.stderr, done.stderr


def mgmt_stop(pool, bundle, graph: Path) -> subprocess.CompletedProcess:
    argv = [*MGMT, "stop", "--remote", str(graph)]
    env = pool.env(MGMT_BUNDLE=str(bundle))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_python_flag_naming_a_missing_interpreter_is_one_line(pool, bundle, tmp_path):
    graph = file_graph("a", "a", tmp_path)
    done = mgmt_run(pool, bundle, [graph], "--python", "/opt/no/python3", "--converged-timeout=1")
    assert done.returncode == 1
    assert "a: failed: no Python at /opt/no/python3" in done.stderr, done.stderr
    assert_clean(pool["a"])


def test_a_relative_python_is_refused_before_any_host_is_contacted(pool, bundle, tmp_path):
    """START looked a relative path up from the login's home, copied the bundle,
    then ran it from the run dir: "not a Python 3.6+ interpreter? (status 127)"
    for a Python that was there. ~/ says which home; a bare name is looked up on
    PATH; a relative path means nothing dependable, so it is an input error."""
    a = pool["a"]
    a.run("mkdir -p /root/venv/bin && ln -sf /usr/bin/python3 /root/venv/bin/python3")
    graph = file_graph("a", "a", tmp_path)
    graph.write_text(graph.read_text() + "python: venv/bin/python3\n")
    line = graph.read_text().count("\n")
    try:
        done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1")
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip().endswith(
            f"{graph}:{line}: the graph file: 'python' 'venv/bin/python3' is a relative path: "
            "give a name on the host's PATH (python3.11), an absolute path or ~/PATH"
        ), done.stderr
        assert not a.exists("/tmp/only-a") and "Copying bundle" not in done.stderr
        assert "Traceback" not in done.stderr
        # The same Python through ~/ runs.
        graph.write_text(graph.read_text().replace("venv/", "~/venv/"))
        done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert (
            "a: Running (Python 3." in done.stderr and ", /root/venv/bin/python3): " in done.stderr
        )
        assert a.read_file("/tmp/only-a") == "i am a"
        assert_clean(a)
    finally:
        a.run("rm -rf /root/venv /tmp/only-a", check=False)


def pyenv_python(version: str) -> str:
    """``~/.pyenv/versions/<version>.*/bin/python3`` as the host will see it; fails clearly
    when this machine's pyenv lacks it."""
    found = sorted(PYENV.glob(f"{version}.*/bin/python3"))
    if not found:
        pytest.fail(
            f"pyenv has no Python {version} under {PYENV} (pyenv install {version}); "
            "the interpreter tests need 3.6, 3.9, 3.12 and 3.13",
            pytrace=False,
        )
    return "~/.pyenv/versions/" + found[-1].parent.parent.name + "/bin/python3"


@pytest.mark.parametrize("version", PYENV_VERSIONS)
def test_writeup_example_on_pyenv_interpreters_given_by_python_key(version, pool, bundle, tmp_path):
    python = pyenv_python(version)
    a, b = pool["a"], pool["b"]
    graphs = [
        graph_for("remote2a.yaml", "a", tmp_path),
        graph_for("remote2b.yaml", "b", tmp_path),
    ]
    for graph in graphs:
        graph.write_text(graph.read_text() + f"python: {python}\n")
    try:
        done = mgmt_run(pool, bundle, graphs, "--converged-timeout=2")
        assert done.returncode == 0, done.stdout + done.stderr
        on_host = python.replace("~", "/root", 1)
        for name in ("a", "b"):
            line = rf"{name}: Running \(Python {re.escape(version)}, {re.escape(on_host)}\): "
            assert re.search(line, done.stderr), done.stderr
        for host, names in (
            (a, ("file1a", "file2a", "file2b")),
            (b, ("file1b", "file2a", "file2b")),
        ):
            for name in names:
                assert host.read_file(f"/tmp/{name}") == FILES[name]
            assert_clean(host)
    finally:
        for host in (a, b):
            host.run("rm -f /tmp/file*", check=False)


@pytest.mark.parametrize("version", ["3.6", "3.13"])
def test_non_ascii_paths_and_commands_work_on_every_python_without_a_locale(
    version, pool, bundle, tmp_path
):
    """An SSH command (and sudo's env_reset) runs without LANG: Python 3.6 then
    took file names and commands for ASCII ("'ascii' codec can't encode"),
    where 3.7 and later coerce the C locale to UTF-8 (PEP 538)."""
    a = pool["a"]
    graph = tmp_path / "utf8.yaml"
    graph.write_text(
        "graph: utf8\nresources:\n  file:\n  - name: grüße\n"
        '    path: /tmp/file-grüße\n    content: "Grüße, 日本\\n"\n'
        '  exec:\n  - name: echo\n    cmd: "echo été > /tmp/file-été"\n'
        f"    shell: /bin/sh\nremote: a\npython: {pyenv_python(version)}\n",
        encoding="utf-8",
    )
    try:
        done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert a.read_file("/tmp/file-grüße") == "Grüße, 日本\n"
        assert a.read_file("/tmp/file-été") == "été\n"
        assert_clean(a)
    finally:
        a.run("rm -f /tmp/file-*", check=False)


def test_an_interpreter_older_than_36_is_named_in_one_line(pool, bundle, tmp_path):
    """pyenv's 2.7 stands in for any too-old Python: the launcher reads on it and says so."""
    found = sorted(PYENV.glob("2.7.*/bin/python"))
    if not found:
        pytest.fail(f"pyenv has no Python 2.7 under {PYENV} (pyenv install 2.7)", pytrace=False)
    python = "~/.pyenv/versions/" + found[-1].parent.parent.name + "/bin/python"
    graph = file_graph("a", "a", tmp_path)
    done = mgmt_run(pool, bundle, [graph], "--python", python, "--converged-timeout=1")
    assert done.returncode == 1, done.stdout + done.stderr
    on_host = python.replace("~", "/root", 1)
    version = found[-1].parent.parent.name
    errors = [line for line in done.stderr.splitlines() if "a: failed:" in line]
    assert len(errors) == 1, done.stderr
    assert errors[0].endswith(
        f"a: failed: {on_host} {version} is older than 3.6; install python3 "
        "(dnf install python3) or give --python"
    ), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not pool["a"].exists("/tmp/only-a")
    assert_clean(pool["a"])


def test_a_python_key_naming_no_python_fails_that_host_alone_in_one_line(pool, bundle, tmp_path):
    """perl prints the launcher back in its error; /bin/false ends at once: neither
    ran an agent, so neither host may be blamed for failed resources or flood the run."""
    graphs = [file_graph(n, n, tmp_path) for n in ("a", "b", "plat")]
    for graph, python in zip(graphs, ("/usr/bin/perl", "/bin/false")):
        graph.write_text(graph.read_text() + f"python: {python}\n")
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=1")
    assert done.returncode == 1, done.stdout + done.stderr
    rows = summary(done.stdout)
    assert rows["plat"][0] == "converged", done.stdout  # the other host is unaffected
    for name, python in (("a", "/usr/bin/perl"), ("b", "/bin/false")):
        errors = [line for line in done.stderr.splitlines() if f" {name}: failed:" in line]
        assert len(errors) == 1, done.stderr
        assert re.search(
            rf" {name}: failed: {re.escape(python)} did not start the agent: "
            r"not a Python 3\.6\+ interpreter\? \(status \d+\)$",
            errors[0],
        ), done.stderr
        assert rows[name][0] == "failed"
        shown = [line for line in done.stdout.splitlines() if line.startswith(f"{name} | ")]
        assert len(shown) <= 4, done.stdout
        assert not re.search(rf"{name}: Running\b", done.stderr)
        assert not pool[name].exists(f"/tmp/only-{name}")
    assert "Traceback" not in done.stdout + done.stderr
    for name in ("a", "b", "plat"):
        assert_clean(pool[name])
    pool["plat"].run("rm -f /tmp/only-plat")


def test_a_python_key_that_hangs_is_stopped_by_ctrl_c_and_leaves_nothing(pool, bundle, tmp_path):
    """A wrapper that waits on something never says which Python it is: ^C
    used not to reach it (it was no agent yet), and its run dir stayed."""
    from remote_helpers import Initiator

    a = pool["a"]
    # Not exec: its child holds the output open after the wrapper is killed.
    a.run("printf '#!/bin/sh\\nsleep 1000\\n' > /tmp/hangpy && chmod +x /tmp/hangpy")
    graph = file_graph("a", "a", tmp_path)
    graph.write_text(graph.read_text() + "python: /tmp/hangpy\n")
    with Initiator(pool, bundle, [graph], "--converged-timeout=1") as run:
        wait_until(lambda: any("sleep 1000" in c for c in a.processes().values()), 30, "hangpy")
        run.interrupt()
        code = run.wait(15)
    assert code == 0, run.output
    assert summary(run.output)["a"][0] == "stopped", run.output
    # It ignores SIGINT (sh started it in the background): START's guard kills it
    # STOP_GRACE later, then removes the run dir.
    assert_clean(a, timeout=20)
    a.run("rm -f /tmp/hangpy")


def test_an_agent_start_that_says_nothing_is_ended_after_the_timeout(monkeypatch):
    """read_python_within, on a real process standing in for START: silent, it is
    killed once the time is up; one that says its Python is let be."""
    import subprocess

    from mgmt.remote import protocol
    from mgmt.remote.orchestration import agentstart
    from mgmt.remote.orchestration.agentstart import read_python_within

    silent = subprocess.Popen(["sh", "-c", "echo '@@mgmt-remote pid 1'; exec sleep 60"],
                              stdout=subprocess.PIPE)  # fmt: skip
    python, held, overdue = read_python_within(silent.stdout, 0.5, silent.kill, _never)
    assert (python, held, overdue) == (None, ["@@mgmt-remote pid 1"], True)
    assert silent.wait(5) == -9
    # A wrapper that does not exec: its child keeps the output open after the kill,
    # and the output is dropped (the read ends, as closing the channel ends it).
    wrapper = subprocess.Popen(
        ["sh", "-c", "sleep 60; :"], stdout=subprocess.PIPE, start_new_session=True
    )
    dropped = []

    def drop() -> None:  # the output ends, as when the SSH channel is closed
        dropped.append(True)
        os.killpg(wrapper.pid, signal.SIGKILL)

    monkeypatch.setattr(agentstart, "KILL_GRACE", 0.5)
    python, held, overdue = read_python_within(wrapper.stdout, 0.5, wrapper.kill, drop)
    assert (python, overdue, dropped) == (None, True, [True])
    line = protocol.PYTHON_MARK + "/usr/bin/python3 3.11.2"
    talking = subprocess.Popen(["sh", "-c", f"echo '{line}'; exec sleep 2"],
                               stdout=subprocess.PIPE)  # fmt: skip
    python, held, overdue = read_python_within(talking.stdout, 5, talking.kill, _never)
    assert python is not None and python.path == "/usr/bin/python3" and not overdue
    assert talking.wait(5) == 0


def _never() -> None:
    raise AssertionError("dropped the output of a start that was not overdue")


def test_what_a_host_prints_reaches_the_terminal_with_its_control_characters_escaped(
    pool, bundle, tmp_path
):
    """A `python:` wrapper (as a login script might) printed an ESC sequence that
    cleared the initiator's terminal and set its title, and a carriage return
    that overwrote the line: a host's lines are shown with them escaped."""
    a = pool["a"]
    noisy = (
        "#!/bin/sh\nprintf 'said \\033[2J\\033]0;pwned\\007 then\\rover\\n'\nexec python3 \"$@\"\n"
    )
    a.run("cat > /tmp/noisy-python3 && chmod 755 /tmp/noisy-python3", input=noisy)
    graph = file_graph("a", "a", tmp_path)
    graph.write_text(graph.read_text() + "python: /tmp/noisy-python3\n")
    try:
        done = mgmt_run(pool, bundle, [graph], "--converged-timeout=1")
    finally:
        a.run("rm -f /tmp/noisy-python3")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "a | said \\x1b[2J\\x1b]0;pwned\\x07 then\\rover" in done.stdout, out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert a.read_file("/tmp/only-a") == "i am a"
    a.run("rm -f /tmp/only-a")
    assert_clean(a)
