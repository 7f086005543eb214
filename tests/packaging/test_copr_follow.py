"""Following COPR builds: ^C, a COPR that stops answering for a while, `copr watch`.

The real copr client against the local api_3 server; builds of the package
"slow" stay "running" until a test lets them end.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from copr_server import CoprServer

from mgmt_pkg.copr import CoprFailed, submit_srpm
from support import require_tools
from support.polling import wait_until

LOGIN, TOKEN, USER = "carol-login", "carol-token", "carol"
SPEC = """\
Name: {name}
Version: 2.0
Release: 3
Summary: test package for following builds
License: MIT
BuildArch: noarch
%description
A test package.
%files
"""


@pytest.fixture
def copr(tmp_path):
    with CoprServer() as server:
        server.state.users[LOGIN] = (USER, TOKEN)
        server.state.projects[(USER, "demo")] = ["fedora-rawhide-x86_64"]
        server.state.stuck_packages.add("slow")
        config = tmp_path / "copr.conf"
        server.write_config(config, LOGIN, TOKEN, USER)
        server.config = config
        yield server


@pytest.fixture
def slow(tmp_path) -> Path:
    require_tools("rpmbuild")
    spec = tmp_path / "slow.spec"
    spec.write_text(SPEC.format(name="slow"))
    subprocess.run(
        ["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {tmp_path / 'rpmbuild'}",
         "--define", f"_srcrpmdir {tmp_path}", str(spec)],
        check=True, capture_output=True,
    )  # fmt: skip
    return tmp_path / "slow-2.0-3.src.rpm"


def command(*args: str) -> list:
    return [sys.executable, "-m", "mgmt_pkg", "copr", *args]


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def following(copr: CoprServer, srpm: Path) -> subprocess.Popen:
    """`mgmt-pkg copr build` of ``srpm``, once its build 1 runs at COPR (polled every 0.05 s)."""
    running = start("build", f"{USER}/demo", str(srpm), "--config", str(copr.config),
                    "--poll-interval", "0.05")  # fmt: skip
    try:
        wait_until(
            lambda: 1 in copr.state.builds and copr.state.builds[1].state == "running",
            what="build 1 running",
        )
    except BaseException:
        running.kill()
        raise
    return running


def build_reads(server: CoprServer, build_id: int = 1) -> int:
    return server.state.requests.count(("GET", f"/api_3/build/{build_id}"))


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if "copr: uploading" not in line]
    assert len(lines) == 1 and lines[0].startswith("mgmt-pkg: error: "), stderr
    return lines[0]


def test_interrupt_while_following_says_the_build_goes_on_and_how_to_follow_it(copr, slow):
    """^C said "interrupted by SIGINT; removed what the run had made": nothing about
    the build, which goes on at COPR, nor how to follow it again."""
    running = following(copr, slow)
    try:
        wait_until(lambda: build_reads(copr) >= 4, what="build 1 polled while running")
        running.send_signal(signal.SIGINT)
        _, err = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 130, err
    line = one_error_line(err)
    url = f"{copr.url}/coprs/{USER}/demo/build/1/"
    assert line.startswith("mgmt-pkg: error: interrupted by SIGINT; the build goes on at COPR: ")
    assert url in line
    assert "Traceback" not in err and "removed" not in err
    # Nothing asked COPR to stop it: the build is there, still running.
    assert copr.state.builds[1].state == "running"
    assert all(path == "/api_3/build/1" for _, path in copr.state.requests[2:])
    # The command it names follows the build to its end.
    again = shlex.split(re.search(r"follow it with: (mgmt-pkg copr watch .*)$", line)[1])
    assert again == ["mgmt-pkg", "copr", "watch", f"{USER}/demo", "1", "--config", str(copr.config)]
    copr.state.builds[1].stuck = False
    done = subprocess.run(
        command(*again[2:], "--poll-interval", "0.05"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"copr: build 1 succeeded: {url}" in done.stdout


OUTAGES = [
    ("502", lambda state, path: state.error_pages.__setitem__(path, 502),
     "the server answered HTTP 502 (Bad Gateway) to GET /api_3/build/1; asking again"),
    ("dropped", lambda state, path: state.dropped_paths.add(path),
     "cannot reach {url}: no connection, or it was dropped; asking again"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "outage", "said"), OUTAGES, ids=[c[0] for c in OUTAGES])
def test_a_copr_that_stops_answering_for_a_while_is_waited_out(copr, slow, case, outage, said):
    """One 502 from the proxy in front of COPR, or a connection it dropped, while
    following ended the command with exit 1, though the build went on and ended well."""
    running = following(copr, slow)
    try:
        outage(copr.state, "/api_3/build/1")
        reads = build_reads(copr)
        wait_until(lambda: build_reads(copr) >= reads + 3, what="build 1 asked for again")
        copr.state.error_pages.clear()
        copr.state.dropped_paths.clear()
        copr.state.builds[1].stuck = False
        out, err = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 0, err
    assert said.format(url=copr.url) in out
    assert f"copr: build 1 succeeded: {copr.url}/coprs/{USER}/demo/build/1/" in out


def test_a_copr_that_does_not_come_back_ends_the_follow_saying_the_build_goes_on(
    copr, slow, monkeypatch
):
    from mgmt_pkg.copr import follow

    monkeypatch.setattr(follow, "UNAVAILABLE_FOR", 2.5)
    copr.state.error_pages["/api_3/build/1"] = 503
    lines = []
    with pytest.raises(CoprFailed) as raised:
        submit_srpm(f"{USER}/demo", slow, config_path=copr.config, poll_interval=0,
                    echo=lines.append)  # fmt: skip
    said = str(raised.value)
    assert "HTTP 503 (Service Unavailable) to GET /api_3/build/1" in said
    assert said.endswith(
        f"the build goes on at COPR: {copr.url}/coprs/{USER}/demo/build/1/; "
        f"follow it with: mgmt-pkg copr watch {USER}/demo 1 --config {copr.config}"
    )
    assert sum("asking again" in line for line in lines) == 1
    # Asked again, but once a second, not in a busy loop (--poll-interval 0).
    assert 2 <= build_reads(copr) <= 4


def test_timeout_holds_while_copr_does_not_answer(copr, slow):
    """A poll COPR never answered held the command for the 120 s of a call,
    past a --timeout of 1 s."""
    copr.state.silent_paths.add("/api_3/build/1")
    copr.state.silent_for = 20.0
    started = time.monotonic()
    done = subprocess.run(
        command("build", f"{USER}/demo", str(slow), "--config", str(copr.config),
                "--timeout", "1"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert line.startswith("mgmt-pkg: error: gave up after 1 s; the build goes on at COPR: ")
    assert "did not answer within 1 s; asking again" in done.stdout


def test_a_refusal_while_following_is_not_waited_out(copr, slow):
    """A build COPR says does not exist (deleted meanwhile) ends the follow at once."""
    running = following(copr, slow)
    try:
        del copr.state.builds[1]
        _, err = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 1
    assert "Build 1 does not exist" in one_error_line(err)


def test_watch_follows_to_the_end_and_a_canceled_build_exits_1(copr, slow):
    submit_srpm(f"{USER}/demo", slow, config_path=copr.config, wait=False, echo=lambda _: None)
    copr.state.builds[1].stuck = False
    copr.state.builds[1].end_state = "canceled"
    done = subprocess.run(
        command("watch", f"{USER}/demo", "1", "--config", str(copr.config),
                "--poll-interval", "0"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    assert line == f"mgmt-pkg: error: COPR build 1 canceled: {copr.url}/coprs/{USER}/demo/build/1/"
    for state in ("importing", "pending", "running", "canceled"):
        assert f"copr: build 1: {state}" in done.stdout


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["carol/demo", "1x"], 2, "BUILD_ID '1x': not a COPR build id (a number, e.g. 7123456)"),
        (["carol/demo", "0"], 2, "BUILD_ID '0': not a COPR build id (a number, e.g. 7123456)"),
        # Followed and reported twice, where `copr build` refuses an SRPM given twice.
        (["carol/demo", "1", "1"], 2, "BUILD_ID '1': given more than once"),
        (["carol/other", "1"], 1, "build 1 belongs to carol/demo, not to carol/other"),
        (["carol/demo", "7"], 1, "following build 7: Build 7 does not exist."),
    ],
)
def test_watch_refuses_what_it_cannot_follow(copr, slow, args, code, said):
    submit_srpm(f"{USER}/demo", slow, config_path=copr.config, wait=False, echo=lambda _: None)
    done = subprocess.run(
        command("watch", *args, "--config", str(copr.config)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == code
    assert one_error_line(done.stderr) == f"mgmt-pkg: error: {said}"


def test_the_suggested_command_names_the_config_absolute_and_quoted(copr, slow, tmp_path):
    """A relative --config was repeated as given: wrong from any other folder."""
    config = tmp_path / "my copr.conf"
    config.write_bytes(copr.config.read_bytes())
    submit_srpm(f"{USER}/demo", slow, config_path=config, wait=False, echo=lambda _: None)
    done = subprocess.run(
        command("watch", f"{USER}/demo", "1", "--config", "my copr.conf", "--timeout", "0.2",
                "--poll-interval", "0.05"),
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    again = re.search(r"follow it with: (.*)$", one_error_line(done.stderr))[1]
    assert shlex.split(again)[-2:] == ["--config", str(config)]
