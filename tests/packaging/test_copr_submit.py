"""`mgmt-pkg copr` with the real copr client against a local api_3 server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from copr_server import CoprServer

from mgmt_pkg.copr import BuildFailed, submit_srpm
from support import require_tools

LOGIN, TOKEN, USER = "alice-login", "s3cret-token", "alice"
CHROOT = "fedora-rawhide-x86_64"

MINIMAL_SPEC = """\
Name: {name}
Version: 1.0
Release: 1
Summary: test package for the local COPR
License: MIT
BuildArch: noarch
%description
A test package.
%files
"""


def _srpm(directory: Path, name: str, source: str = "") -> Path:
    require_tools("rpmbuild")
    spec = directory / f"{name}.spec"
    text = MINIMAL_SPEC.format(name=name)
    if source:  # a file in the build tree's SOURCES, as rpmbuild looks for it
        text = text.replace("%description", f"Source0: {source}\n%description")
    spec.write_text(text)
    subprocess.run(
        ["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {directory / 'rpmbuild'}",
         "--define", f"_srcrpmdir {directory}", str(spec)],
        check=True, capture_output=True,
    )  # fmt: skip
    return directory / f"{name}-1.0-1.src.rpm"


@pytest.fixture
def copr(tmp_path):
    with CoprServer() as server:
        server.state.users[LOGIN] = (USER, TOKEN)
        server.state.projects[(USER, "demo")] = [CHROOT, "epel-9-x86_64"]
        server.state.failing_packages.add("broken")
        server.state.stuck_packages.add("slow")
        config = tmp_path / "copr.conf"
        server.write_config(config, LOGIN, TOKEN, USER)
        server.config = config
        yield server


@pytest.fixture
def good_srpm(tmp_path) -> Path:
    return _srpm(tmp_path, "hello")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgmt_pkg", "copr", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    # Upload progress also goes to stderr; beside it, the error is one line.
    lines = [line for line in done.stderr.strip().splitlines() if "copr: uploading" not in line]
    assert len(lines) == 1 and lines[0].startswith("mgmt-pkg: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def uploads(server) -> int:
    return sum(1 for _, path in server.state.requests if path.endswith("/build/create/upload"))


def test_successful_build_is_followed_to_the_end(copr, good_srpm):
    done = run("build", f"{USER}/demo", str(good_srpm), "--chroot", CHROOT,
               "--config", str(copr.config), "--poll-interval", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    build = copr.state.builds[1]
    assert build.uploaded == good_srpm.read_bytes()
    assert build.chroots == [CHROOT]
    url = f"{copr.url}/coprs/{USER}/demo/build/1/"
    for state in ("importing", "pending", "running", "succeeded"):
        assert f"copr: build 1: {state}" in done.stdout
    assert f"copr: build 1 succeeded: {url}" in done.stdout
    assert "copr: uploading hello-1.0-1.src.rpm" in done.stderr
    paths = [path for _, path in copr.state.requests]
    assert paths.index("/api_3/build/check-before-build") < paths.index(
        "/api_3/build/create/upload"
    )


def test_failed_build_exits_1_with_its_url(copr, tmp_path):
    broken = _srpm(tmp_path, "broken")
    done = run("build", f"{USER}/demo", str(broken), "--config", str(copr.config),
               "--poll-interval", "0")  # fmt: skip
    assert_one_line_error(done, 1, "failed", f"{copr.url}/coprs/{USER}/demo/build/1/")
    assert "copr: build 1: running" in done.stdout


def test_timeout_gives_up_following_with_the_url(copr, tmp_path):
    slow = _srpm(tmp_path, "slow")
    done = run("build", f"{USER}/demo", str(slow), "--config", str(copr.config),
               "--poll-interval", "0.05", "--timeout", "0.3")  # fmt: skip
    assert_one_line_error(
        done, 1, "gave up after 0.3 s", f"{copr.url}/coprs/{USER}/demo/build/1/",
        f"follow it with: mgmt-pkg copr watch {USER}/demo 1 --config {copr.config}",
    )  # fmt: skip
    assert "copr: build 1: running" in done.stdout


def test_nowait_submits_and_returns(copr, good_srpm):
    done = run("build", f"{USER}/demo", str(good_srpm), "--config", str(copr.config), "--nowait")
    assert done.returncode == 0, done.stderr
    assert "copr: build 1 submitted (hello-1.0-1)" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        f"copr: the build goes on at COPR: {copr.url}/coprs/{USER}/demo/build/1/; "
        f"follow it with: mgmt-pkg copr watch {USER}/demo 1 --config {copr.config}"
    )
    assert not [p for _, p in copr.state.requests if p.startswith("/api_3/build/1")]
    assert copr.state.builds[1].state == "importing"


def test_several_srpms_become_several_builds(copr, good_srpm, tmp_path):
    other = _srpm(tmp_path, "other")
    done = run("build", f"{USER}/demo", str(good_srpm), str(other), "--config", str(copr.config),
               "--poll-interval", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(b.package[0] for b in copr.state.builds.values()) == ["hello", "other"]
    assert "copr: build 2 succeeded" in done.stdout


def test_an_upload_that_fails_after_another_names_the_build_already_made(copr, good_srpm, tmp_path):
    """The first build went on at COPR; the error said only that the second failed."""
    other = _srpm(tmp_path, "other")
    copr.state.drop_after["/api_3/build/create/upload"] = 1
    done = run("build", f"{USER}/demo", str(good_srpm), str(other), "--config", str(copr.config))
    assert_one_line_error(
        done, 1, "uploading other-1.0-1.src.rpm", "no connection, or it was dropped",
        f"the build goes on at COPR: {copr.url}/coprs/{USER}/demo/build/1/; "
        f"follow it with: mgmt-pkg copr watch {USER}/demo 1 --config {copr.config}",
    )  # fmt: skip
    assert [b.package[0] for b in copr.state.builds.values()] == ["hello"]


def test_bad_credentials(copr, good_srpm, tmp_path):
    config = tmp_path / "wrong.conf"
    copr.write_config(config, LOGIN, "not-the-token", USER)
    done = run("build", f"{USER}/demo", str(good_srpm), "--config", str(config))
    assert_one_line_error(done, 1, "refused the credentials", LOGIN)
    assert uploads(copr) == 0


def test_a_project_of_another_owner_is_a_missing_right_not_bad_credentials(copr, good_srpm):
    """COPR answers 403 to both; its words tell which, and the hint follows them."""
    copr.state.projects[("bob", "demo")] = [CHROOT]
    done = run("build", "bob/demo", str(good_srpm), "--config", str(copr.config))
    assert_one_line_error(done, 1, f"refused {LOGIN!r}: User 'alice' can not build in bob's")
    assert "credentials" not in done.stderr
    assert uploads(copr) == 0


def test_missing_project(copr, good_srpm):
    done = run("build", f"{USER}/nope", str(good_srpm), "--config", str(copr.config))
    assert_one_line_error(done, 1, "Project alice/nope does not exist")
    assert uploads(copr) == 0


def test_chroot_not_enabled(copr, good_srpm):
    done = run("build", f"{USER}/demo", str(good_srpm), "--chroot", "fedora-1-sparc",
               "--config", str(copr.config))  # fmt: skip
    assert_one_line_error(done, 1, "fedora-1-sparc")


def test_server_down(copr, good_srpm, tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "down.conf"
    config.write_text(copr.config.read_text().replace(copr.url, f"http://127.0.0.1:{port}"))
    done = run("build", f"{USER}/demo", str(good_srpm), "--config", str(config))
    assert_one_line_error(done, 1, f"127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("path", "status", "said"),
    [
        ("/api_3/build/check-before-build", 500, "HTTP 500 (Internal Server Error)"),
        ("/api_3/build/create/upload", 502, "HTTP 502 (Bad Gateway)"),
        ("/api_3/build/check-before-build", 504, "HTTP 504 (Gateway Timeout)"),
    ],
    ids=["500", "502-upload", "504"],
)
def test_an_error_page_names_the_server_and_the_status(copr, good_srpm, path, status, said):
    """An HTML page for an error read as the copr client's "Response is not in JSON
    format, there is probably a bug in the API code"."""
    copr.state.error_pages[path] = status
    done = run("build", f"{USER}/demo", str(good_srpm), "--config", str(copr.config))
    assert_one_line_error(done, 1, f"COPR at {copr.url}: the server answered {said}", path)
    assert "JSON" not in done.stderr
    assert copr.state.builds == {}


def test_a_copr_url_with_a_web_page_path_is_named_as_the_likely_cause(copr, good_srpm, tmp_path):
    """A copr_url copied from a project's page: COPR answers its HTML 404."""
    config = tmp_path / "pasted.conf"
    config.write_text(copr.config.read_text().replace(copr.url, f"{copr.url}/coprs/{USER}/demo/"))
    done = run("build", f"{USER}/demo", str(good_srpm), "--config", str(config))
    assert_one_line_error(
        done, 1,
        f"HTTP 404 (Not Found) to POST /coprs/{USER}/demo/api_3/build/check-before-build "
        f"(is copr_url, {copr.url}/coprs/{USER}/demo, COPR's address, without a path?)",
    )  # fmt: skip
    assert copr.state.builds == {}


def test_a_server_that_never_answers_is_given_up_on(copr, good_srpm, tmp_path, monkeypatch):
    """It took the connection and said nothing: the copr library waits without a
    timeout, and the command hung for ever, --timeout or not."""
    from mgmt_pkg.copr import session

    monkeypatch.setattr(session, "ANSWER_TIMEOUT", 1.0)
    with socket.socket() as silent:  # listens, and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config = tmp_path / "silent.conf"
        config.write_text(copr.config.read_text().replace(copr.url, url))
        with pytest.raises(session.CoprFailed, match=rf"{url} did not answer within 1 s"):
            submit_srpm(f"{USER}/demo", good_srpm, config_path=config, echo=lambda line: None)


@pytest.mark.parametrize("stalled", [False, True], ids=["no-answer", "stalled-mid-upload"])
def test_an_upload_without_answer_or_progress_is_given_up_on(
    copr, good_srpm, tmp_path, monkeypatch, stalled
):
    """The upload was the one call without a bound: a frontend that took the whole
    SRPM and never answered, or a link that stopped taking bytes, held the
    command for ever. Now it ends once nothing moved for ANSWER_TIMEOUT."""
    from mgmt_pkg.copr import session

    monkeypatch.setattr(session, "ANSWER_TIMEOUT", 1.0)
    srpm = good_srpm
    if stalled:  # more than the socket buffers hold, so the upload stops midway
        (tmp_path / "rpmbuild" / "SOURCES").mkdir(parents=True)
        (tmp_path / "rpmbuild" / "SOURCES" / "big.bin").write_bytes(os.urandom(12 << 20))
        srpm = _srpm(tmp_path, "big", source="big.bin")
        copr.state.stalled_paths.add("/api_3/build/create/upload")
    else:
        copr.state.silent_paths.add("/api_3/build/create/upload")
    copr.state.silent_for = 15.0  # then closed: the old code said "cannot reach" after it
    sent = []
    started = time.monotonic()
    with pytest.raises(session.CoprUnavailable) as raised:
        submit_srpm(f"{USER}/demo", srpm, config_path=copr.config, echo=sent.append)
    assert time.monotonic() - started < 10
    assert str(raised.value) == (
        f"{copr.url} did not answer within 1 s (COPR may have the build all the same: "
        f"see {copr.url}/coprs/{USER}/demo/builds/)"
    )
    assert sent == [] and copr.state.builds == {}


def test_an_upload_whose_connection_is_dropped_says_so_and_where_to_look(copr, good_srpm):
    """It said "Unable to connect to URL/api_3/." (the copr library's words for any
    connection error), though it had connected and sent the SRPM."""
    copr.state.dropped_paths.add("/api_3/build/create/upload")
    done = run("build", f"{USER}/demo", str(good_srpm), "--config", str(copr.config))
    assert_one_line_error(
        done, 1,
        f"uploading hello-1.0-1.src.rpm to {USER}/demo: cannot reach {copr.url}: no "
        f"connection, or it was dropped (COPR may have the build all the same: see "
        f"{copr.url}/coprs/{USER}/demo/builds/)",
    )  # fmt: skip
    assert "Unable to connect" not in done.stderr


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("this is not an ini file\n", "copr config"),
        ("[copr]\nlogin = a\n", "no [copr-cli] section"),
        (
            "[copr-cli]\nlogin = a\ncopr_url = http://127.0.0.1:1\nencrypted = False\n",
            "lacks token",
        ),
        ("[copr-cli]\nlogin = a\ntoken = t\ncopr_url = http://127.0.0.1:1\n", "should not be http"),
        ("[copr-cli]\nlogin = a\ntoken = t\ncopr_url = x\nencrypted = maybe\n", "copr config"),
        # Was "internal error: UnicodeEncodeError" from requests' latin-1 basic auth.
        ("[copr-cli]\nlogin = a\ntoken = t\u00f6k\u00e9n\u20ac\ncopr_url = {url}\n", "token: "),
        ("[copr-cli]\nlogin = \u0101\ntoken = t\ncopr_url = {url}\n", "login: "),
    ],
)
def test_malformed_config(copr, good_srpm, tmp_path, text, fragment):
    config = tmp_path / "bad.conf"
    config.write_text(text.replace("{url}", copr.url), encoding="utf-8")
    done = run("build", f"{USER}/demo", str(good_srpm), "--config", str(config))
    assert_one_line_error(done, 2, str(config), fragment)
    assert copr.state.requests == []


def test_missing_config_file(copr, good_srpm, tmp_path):
    done = run("build", f"{USER}/demo", str(good_srpm), "--config", str(tmp_path / "absent"))
    assert_one_line_error(done, 2, "not found")


def test_only_source_rpms_are_sent(copr, tmp_path):
    stray = tmp_path / "notes.src.rpm"
    stray.write_bytes(b"not an rpm at all")
    done = run("build", f"{USER}/demo", str(stray), "--config", str(copr.config))
    assert_one_line_error(done, 2, "not an RPM")
    assert copr.state.requests == []


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["upload", "dry-run"])
def test_a_file_name_that_is_not_utf8_is_refused_before_anything_is_sent(copr, good_srpm, dry_run):
    """The upload's multipart header carries the name as UTF-8: it was an internal
    error (UnicodeEncodeError) mid-upload, after a dry run had said all was well."""
    odd = Path(os.fsdecode(bytes(good_srpm.parent) + b"/hello\xff.src.rpm"))
    good_srpm.rename(odd)
    done = run("build", f"{USER}/demo", str(odd), *dry_run, "--config", str(copr.config))
    assert_one_line_error(done, 2, "file name is not UTF-8", "hello-1.0-1.src.rpm")
    assert copr.state.requests == [] and copr.state.builds == {}


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["upload", "dry-run"])
def test_a_damaged_srpm_is_refused_before_anything_is_sent(copr, good_srpm, dry_run):
    """A copy cut short (an interrupted download) was uploaded, and COPR failed its
    build minutes later: its digests are checked as rpm -K does."""
    good_srpm.write_bytes(good_srpm.read_bytes()[:-20])
    done = run("build", f"{USER}/demo", str(good_srpm), *dry_run, "--config", str(copr.config))
    assert_one_line_error(done, 2, str(good_srpm), "damaged", "cut short or changed")
    assert copr.state.requests == [] and copr.state.builds == {}


@pytest.mark.parametrize("spelling", ["same", "symlink"])
def test_one_srpm_given_twice_is_refused_before_anything_is_sent(copr, good_srpm, spelling):
    """'a.src.rpm a.src.rpm' (or a symlink beside its target, overlapping globs)
    was uploaded twice: two builds of one SRPM at COPR."""
    again = good_srpm
    if spelling == "symlink":
        again = good_srpm.parent / "latest.src.rpm"
        again.symlink_to(good_srpm.name)
    done = run("build", f"{USER}/demo", str(good_srpm), str(again), "--config", str(copr.config))
    also = "" if again == good_srpm else f" (as {good_srpm})"
    assert_one_line_error(done, 2, f"{again}: given more than once{also}; it would be built twice")
    assert copr.state.requests == [] and copr.state.builds == {}


# A final newline got through a "$"-anchored re.match ("$" matches before it).
@pytest.mark.parametrize("target", ["no-slash", f"{USER}/demo\n", f"{USER}\n/demo", "a/b/c"])
def test_bad_target_is_bad_input(copr, good_srpm, target):
    done = run("build", target, str(good_srpm), "--config", str(copr.config))
    assert_one_line_error(done, 2, "OWNER/PROJECT")
    assert copr.state.requests == []


def test_dry_run_sends_nothing(copr, good_srpm):
    done = run("build", f"{USER}/demo", str(good_srpm), "--chroot", CHROOT, "--dry-run",
               "--config", str(copr.config))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert copr.state.requests == []
    assert f"POST {copr.url}/api_3/build/create/upload as {LOGIN}" in done.stdout
    assert "pkgs=hello-1.0-1.src.rpm" in done.stdout
    assert f'"chroots": ["{CHROOT}"]' in done.stdout


def test_project_is_created_with_its_chroots(copr):
    done = run("project", f"{USER}/fresh", "--chroot", CHROOT, "--chroot", "epel-9-x86_64",
               "--config", str(copr.config))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert copr.state.projects[(USER, "fresh")] == [CHROOT, "epel-9-x86_64"]
    assert f"{copr.url}/coprs/{USER}/fresh/" in done.stdout
    again = run("project", f"{USER}/fresh", "--chroot", CHROOT, "--config", str(copr.config))
    assert_one_line_error(again, 1, "already have a project")
    ok = run("project", f"{USER}/fresh", "--chroot", CHROOT, "--exist-ok",
             "--config", str(copr.config))  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_project_dry_run_and_bad_credentials(copr, tmp_path):
    dry = run("project", f"{USER}/x", "--chroot", CHROOT, "--dry-run", "--config", str(copr.config))
    assert dry.returncode == 0 and f"/api_3/project/add/{USER}" in dry.stdout
    assert copr.state.requests == []
    config = tmp_path / "wrong.conf"
    copr.write_config(config, "mallory", TOKEN)
    done = run("project", f"{USER}/x", "--chroot", CHROOT, "--config", str(config))
    assert_one_line_error(done, 1, "refused the credentials")
    assert (USER, "x") not in copr.state.projects


def test_library_call_used_by_fake_rpm(copr, good_srpm, tmp_path, capsys):
    lines = []
    result = submit_srpm(f"{USER}/demo", good_srpm, config_path=copr.config, poll_interval=0,
                         echo=lines.append)  # fmt: skip
    assert (result.id, result.state) == (1, "succeeded")
    assert result.url == f"{copr.url}/coprs/{USER}/demo/build/1/"
    assert "copr: build 1: succeeded" in lines
    assert "copr: uploading hello-1.0-1.src.rpm" in capsys.readouterr().err
    with pytest.raises(BuildFailed, match=r"build/2/"):
        submit_srpm(f"{USER}/demo", _srpm(tmp_path, "broken"), config_path=copr.config,
                    poll_interval=0, echo=lines.append)  # fmt: skip


def test_upload_shows_a_progress_bar_on_a_terminal(copr, good_srpm, tmp_path):
    """`script` gives the command a pseudo-terminal, where click draws the bar."""
    require_tools("script")
    command = " ".join(
        [sys.executable, "-m", "mgmt_pkg", "copr", "build", f"{USER}/demo", str(good_srpm),
         "--config", str(copr.config), "--nowait"]
    )  # fmt: skip
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout
    assert "copr: uploading hello-1.0-1.src.rpm  [" in done.stdout
    assert "100%" in done.stdout
    assert copr.state.builds[1].uploaded == good_srpm.read_bytes()
