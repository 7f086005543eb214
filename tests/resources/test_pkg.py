"""The pkg kind with the host's real dnf, on a private host, from a repo the agent serves itself."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pkg_repo import REPO_PORT
from private_host import SRC

from support.polling import wait_until


def graph(tmp_path: Path, repo: Path, packages: dict, meta: str = "", server=True) -> Path:
    """The agent's own http:server serves the repo; each pkg runs after it. Without
    ``server``, the pkg resources alone (see served)."""
    lines = ["graph: pkgs", "resources:"]
    if server:
        lines += ["  http:server:", "  - name: repo", f"    address: '127.0.0.1:{REPO_PORT}'",
                  f"    root: {repo}"]  # fmt: skip
    lines.append("  pkg:")
    for name, state in packages.items():
        lines += [f"  - name: '{name}'", f"    state: '{state}'"]
        if meta:
            lines.append(f"    meta: {meta}")
    lines.append("edges:" if server else "")
    for name in packages if server else ():
        lines += [
            f"- name: repo-before-{name}",
            "  from: {kind: 'http:server', name: repo}",
            f"  to: {{kind: pkg, name: '{name}'}}",
        ]
    path = tmp_path / "pkgs.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def installed(host, name: str) -> str:
    """The installed version-release of ``name`` on the host, or "" when absent."""
    proc = host.run(["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", name], check=False)
    return proc.stdout if proc.returncode == 0 else ""


def transactions(host) -> list:
    """dnf's history on the host: one line per transaction, newest first."""
    out = host.run(["dnf", "-q", "history", "list"], check=False).stdout
    return [line for line in out.splitlines() if line.strip()[:1].isdigit()]


def run_once(host, tmp_path, graph_path, *extra) -> subprocess.CompletedProcess:
    args = ["--file", str(graph_path), "--no-server", "--prefix", str(tmp_path / "state")]
    proc = host.agent([*args, "--converged-timeout", "0", *extra], tmp_path / "agent.log")
    out, _ = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def log(tmp_path) -> str:
    return (tmp_path / "agent.log").read_text(errors="replace")


@contextlib.contextmanager
def served(host):
    """The repo served on the host by another process than the agent: under --noop
    the agent's http:server starts not, and dnf is asked all the same."""
    server = subprocess.Popen(
        host.argv([sys.executable, "-m", "http.server", str(REPO_PORT), "--bind", "127.0.0.1",
                   "--directory", str(host.repo)]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=host.env(),
    )  # fmt: skip
    url = f"http://127.0.0.1:{REPO_PORT}/repodata/repomd.xml"
    ask = [sys.executable, "-c", f"import urllib.request; urllib.request.urlopen({url!r})"]
    try:
        wait_until(lambda: host.run(ask, check=False).returncode == 0, what="the repo served")
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_two_packages_install_in_one_transaction(pkg_host, tmp_path):
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-a": "installed", "mgmt-test-b": "installed"})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"
    assert installed(pkg_host, "mgmt-test-b") == "1.0-1"
    assert len(transactions(pkg_host)) == 1  # both, together
    info = pkg_host.run(["dnf", "-q", "history", "info", "last"]).stdout
    assert "mgmt-test-a" in info and "mgmt-test-b" in info
    # Neither the first query (which creates the empty host's rpm database)
    # nor our own transaction woke the watch: the group was checked once.
    pkg_lines = [line for line in log(tmp_path).splitlines() if " pkg: " in line]
    assert not [line for line in pkg_lines if "checked: state is right" in line], pkg_lines
    # Converged: a second run finds nothing to do and runs no transaction.
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == 1


def test_without_autogroup_each_package_is_its_own_transaction(pkg_host, tmp_path):
    packages = {"mgmt-test-a": "installed", "mgmt-test-b": "installed"}
    path = graph(tmp_path, pkg_host.repo, packages, meta="{autogroup: false}")
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == 2


def test_upgrade_downgrade_and_remove_in_one_transaction(pkg_host, tmp_path):
    repo = pkg_host.repo
    pkg_host.run(["rpm", "-i", str(repo / "mgmt-test-a-1.0-1.noarch.rpm")])
    pkg_host.run(["rpm", "-i", str(repo / "mgmt-test-c-1.0-1.noarch.rpm")])
    pkg_host.run(["rpm", "-i", str(repo / "mgmt-test-b-1.0-1.noarch.rpm")])
    wanted = {"mgmt-test-a": "newest", "mgmt-test-b": "uninstalled", "mgmt-test-c": "1.0"}
    path = graph(tmp_path, repo, wanted)
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"
    assert installed(pkg_host, "mgmt-test-b") == ""
    assert installed(pkg_host, "mgmt-test-c") == "1.0-1"
    assert len(transactions(pkg_host)) == 1
    # Now a pinned older version: dnf downgrades.
    path = graph(tmp_path, repo, {"mgmt-test-a": "1.0"})
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-a") == "1.0-1"


def test_name_arch_takes_a_version_and_newest(pkg_host, tmp_path):
    repo = pkg_host.repo
    pkg_host.run(["rpm", "-i", str(repo / "mgmt-test-a-1.0-1.noarch.rpm")])
    wanted = {"mgmt-test-a.noarch": "newest", "mgmt-test-c.noarch": "1.0-1"}
    path = graph(tmp_path, repo, wanted)
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"
    assert installed(pkg_host, "mgmt-test-c") == "1.0-1"
    done = len(transactions(pkg_host))
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == done  # both right now: nothing to do


def test_noop_names_what_would_change_and_changes_nothing(pkg_host, tmp_path):
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-a": "installed"})
    assert run_once(pkg_host, tmp_path, path, "--noop").returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-a") == ""
    # Its repository is served by a resource before it, which would start: dnf's
    # answer now (no repository) is not what the real run would get.
    said = "would install mgmt-test-a: mgmt-test-a is not installed (noop; not asked of dnf:"
    assert f"{said} after http:server[repo], which would change)" in log(tmp_path)


def rpm_db(host) -> list:
    """Every package in the host's rpm database, with its version, sorted."""
    return sorted(host.run(["rpm", "-qa"], check=False).stdout.split())


# What --noop said would work although the real run fails it, next to what is right.
NOOP_CASES = {
    "mgmt-test-a": ("installed", "would-change"),
    "mgmt-test-nonesuch": ("installed", "failed"),  # no repository has it
    "mgmt-test-h": ("installed", "failed"),  # needs what no repository has
    "mgmt-test-c": ("9.9", "failed"),  # a version no repository has
    "mgmt-test-x": ("newest", "failed"),  # 1.0 installed; 2.0 needs what none has
    "mgmt-test-b": ("uninstalled", "would-change"),  # installed
    "mgmt-test-r": ("uninstalled", "unchanged"),  # not installed: nothing to remove
}


@pytest.mark.parametrize("meta", ["", "{autogroup: false}"], ids=["grouped", "apart"])
def test_noop_fails_what_the_real_run_fails_with_its_words(pkg_host, tmp_path, meta):
    """--noop said "would install" for a package no repository has (or one that needs
    what none has, or a version none has) and "would upgrade" to a newer version dnf
    cannot install, where the real run fails each: a user checking a graph was told
    it would work. It asks dnf (--assumeno) and changes nothing."""
    for rpm in ("mgmt-test-b-1.0-1", "mgmt-test-x-1.0-1"):
        pkg_host.run(["rpm", "-i", str(pkg_host.repo / f"{rpm}.noarch.rpm")])
    before = rpm_db(pkg_host)
    wanted = {name: state for name, (state, _) in NOOP_CASES.items()}
    path = graph(tmp_path, pkg_host.repo, wanted, meta=meta, server=False)
    with served(pkg_host):
        noop = run_once(pkg_host, tmp_path, path, "--noop", "--json")
    assert noop.returncode == 1, log(tmp_path)
    rows = agent_json(noop)
    assert {name: row["result"] for name, row in rows.items()} == {
        name: result for name, (_, result) in NOOP_CASES.items()
    }, log(tmp_path)
    assert rpm_db(pkg_host) == before and transactions(pkg_host) == []
    said = log(tmp_path)
    assert "would install mgmt-test-a" in said and "would remove mgmt-test-b" in said
    for name in ("mgmt-test-nonesuch", "mgmt-test-h", "mgmt-test-c-9.9", "mgmt-test-x"):
        assert f"would install {name}" not in said and f"would upgrade {name}" not in said
    assert "would remove mgmt-test-r" not in said
    # The real run fails the same packages, each with the same words.
    with served(pkg_host):
        real = run_once(pkg_host, tmp_path, path, "--json")
    assert real.returncode == 1, log(tmp_path)
    done = agent_json(real)
    for name, (_, result) in NOOP_CASES.items():
        if result == "failed":
            # (apart, each is checked again when another's transaction changes rpm's database)
            assert set(done[name]["errors"]) == set(rows[name]["errors"]), name
        else:
            assert rows[name]["errors"] == [] and done[name]["result"] == result.replace(
                "would-change", "changed"
            ), name
    assert rows["mgmt-test-nonesuch"]["errors"] == [
        "mgmt-test-nonesuch: dnf install: No match for argument: mgmt-test-nonesuch"
    ]
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"


def test_noop_takes_a_name_an_installed_package_provides_as_right(pkg_host, tmp_path):
    """dnf answers mgmt-test-virtual with mgmt-test-p, installed already: the real
    run changes nothing, --noop said it would install it."""
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-p-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-virtual": "installed"}, server=False)
    for extra in (["--noop"], []):
        with served(pkg_host):
            result = run_once(pkg_host, tmp_path, path, "--json", *extra)
        assert result.returncode == 0, log(tmp_path)
        row = agent_json(result)["mgmt-test-virtual"]
        assert (row["result"], row["changes"]) == ("unchanged", []), (extra, row)
        assert "would install" not in log(tmp_path)
    assert transactions(pkg_host) == []


def test_noop_of_newest_for_a_provided_name_names_the_upgrade_of_its_provider(pkg_host, tmp_path):
    """mgmt-test-p 1.0 provides mgmt-test-virtual, and 2.0 is in the repository: the real
    run upgrades mgmt-test-p, --noop said it would install mgmt-test-virtual."""
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-p-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-virtual": "newest"}, server=False)
    with served(pkg_host):
        result = run_once(pkg_host, tmp_path, path, "--json", "--noop")
    assert result.returncode == 0, log(tmp_path)
    assert agent_json(result)["mgmt-test-virtual"]["result"] == "would-change"
    assert "would upgrade mgmt-test-p: mgmt-test-virtual is installed as mgmt-test-p" in log(
        tmp_path
    )
    assert "would install" not in log(tmp_path)
    assert installed(pkg_host, "mgmt-test-p") == "1.0-1" and transactions(pkg_host) == []
    with served(pkg_host):
        result = run_once(pkg_host, tmp_path, path, "--json")
    assert agent_json(result)["mgmt-test-virtual"]["result"] == "changed", log(tmp_path)
    assert installed(pkg_host, "mgmt-test-p") == "2.0-1"


def test_a_package_with_meta_noop_is_left_out_of_the_others_transaction(pkg_host, tmp_path):
    """Grouped packages ran as the first one's meta said: one marked noop: true was
    installed with the others (and the others' retry and delay were the first's)."""
    packages = {"mgmt-test-a": "installed", "mgmt-test-b": "installed", "mgmt-test-c": "installed"}
    path = graph(tmp_path, pkg_host.repo, packages)
    text = path.read_text().replace(
        "  - name: 'mgmt-test-b'\n    state: 'installed'\n",
        "  - name: 'mgmt-test-b'\n    state: 'installed'\n    meta: {noop: true}\n",
    )
    path.write_text(text)
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"
    assert installed(pkg_host, "mgmt-test-c") == "1.0-1"
    assert installed(pkg_host, "mgmt-test-b") == ""
    assert "would install mgmt-test-b" in log(tmp_path)
    assert len(transactions(pkg_host)) == 1  # a and c, together


def test_json_reports_each_grouped_package_field_by_field(pkg_host, tmp_path):
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-c-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-a": "installed", "mgmt-test-c": "installed"})
    result = run_once(pkg_host, tmp_path, path, "--noop", "--json")
    assert result.returncode == 0, log(tmp_path)
    rows = {r["name"]: r for r in json.loads(result.stdout)["resources"] if r["kind"] == "pkg"}
    a, c = rows["mgmt-test-a"], rows["mgmt-test-c"]
    assert a["result"] == "would-change" and a["group"] == c["group"]  # one shared run
    assert a["changes"] == [
        {"field": "state", "wanted": "installed", "actual": "not installed", "applied": False}
    ]
    assert (c["result"], c["changes"]) == ("unchanged", [])
    assert installed(pkg_host, "mgmt-test-a") == ""
    result = run_once(pkg_host, tmp_path, path, "--json")
    assert result.returncode == 0, log(tmp_path)
    rows = {r["name"]: r for r in json.loads(result.stdout)["resources"] if r["kind"] == "pkg"}
    assert rows["mgmt-test-a"]["result"] == "changed"
    assert rows["mgmt-test-a"]["changes"][0]["applied"] is True
    assert rows["mgmt-test-c"]["result"] == "unchanged"
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"


def test_a_missing_package_fails_naming_it_with_dnfs_message(pkg_host, tmp_path):
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-nonesuch": "installed"})
    assert run_once(pkg_host, tmp_path, path).returncode == 1
    text = log(tmp_path)
    assert "mgmt-test-nonesuch" in text and "No match for argument" in text


def test_a_name_another_package_provides_or_obsoletes_is_installed_once(pkg_host, tmp_path):
    """dnf installs mgmt-test-p for the name it provides, mgmt-test-n for the one it
    obsoletes and provides, mgmt-test-m for the one it only obsoletes. rpm -q by
    name said none was installed: each run installed nothing and failed."""
    wanted = {"mgmt-test-virtual": "installed", "mgmt-test-o": "installed",
              "mgmt-test-q": "newest"}  # fmt: skip
    path = graph(tmp_path, pkg_host.repo, wanted)
    first = run_once(pkg_host, tmp_path, path, "--json")
    assert first.returncode == 0, log(tmp_path)
    rows = agent_json(first)
    assert {name: rows[name]["result"] for name in wanted} == dict.fromkeys(wanted, "changed")
    assert installed(pkg_host, "mgmt-test-p") == "2.0-1"
    assert installed(pkg_host, "mgmt-test-n") == "1.0-1"
    assert installed(pkg_host, "mgmt-test-m") == "1.0-1"
    assert [installed(pkg_host, name) for name in wanted] == ["", "", ""]
    assert len(transactions(pkg_host)) == 1
    # Converged: a second run finds them right, and runs no transaction.
    second = run_once(pkg_host, tmp_path, path, "--json")
    assert second.returncode == 0, log(tmp_path)
    assert {r["result"] for r in agent_json(second).values()} == {"unchanged"}
    assert len(transactions(pkg_host)) == 1


def test_newest_of_a_provided_name_upgrades_the_package_providing_it(pkg_host, tmp_path):
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-p-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-virtual": "newest"})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert "upgrade mgmt-test-p" in log(tmp_path)
    assert installed(pkg_host, "mgmt-test-p") == "2.0-1"
    done = len(transactions(pkg_host))
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == done


def test_a_name_another_installed_package_provides_is_installed_when_a_package_has_it(
    pkg_host, tmp_path
):
    """dnf installs mgmt-test-b for mgmt-test-b although mgmt-test-p provides that name
    (as curl, not the curl-minimal that provides curl): no other package stands in."""
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-p-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-b": "installed"})
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-b") == "1.0-1"


def test_an_older_version_dnf_installs_for_a_broken_newest_is_no_failure(pkg_host, tmp_path):
    """With best=False dnf says the newest mgmt-test-x needs what no repository has, and
    installs 1.0: that line was taken for a refusal, and mgmt-test-x failed."""
    wanted = {"mgmt-test-x": "installed", "mgmt-test-a": "installed"}
    result = run_once(pkg_host, tmp_path, graph(tmp_path, pkg_host.repo, wanted), "--json")
    assert result.returncode == 0, log(tmp_path)
    assert {row["result"] for row in agent_json(result).values()} == {"changed"}
    assert installed(pkg_host, "mgmt-test-x") == "1.0-1"
    assert len(transactions(pkg_host)) == 1


def test_uninstalled_names_a_package_not_what_it_provides(pkg_host, tmp_path):
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-p-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-virtual": "uninstalled"})
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-p") == "1.0-1"
    assert transactions(pkg_host) == []


def test_an_external_removal_is_undone_at_once(pkg_host, tmp_path):
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-a": "installed", "mgmt-test-b": "installed"})
    args = ["--file", str(path), "--no-server", "--prefix", str(tmp_path / "state")]
    agent = pkg_host.agent(args, tmp_path / "agent.log")
    try:
        wait_until(lambda: installed(pkg_host, "mgmt-test-b"), timeout=120, what="first install")
        pkg_host.run(["dnf", "-y", "remove", "mgmt-test-b"])
        assert installed(pkg_host, "mgmt-test-b") == ""
        # The rpm database changed: inotify wakes the resource, which installs it again.
        wait_until(lambda: installed(pkg_host, "mgmt-test-b"), timeout=60, what="reinstall")
        assert agent.poll() is None
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    # install, the outsider's remove, reinstall
    assert len(transactions(pkg_host)) == 3, log(tmp_path)


def test_a_transaction_waits_for_rpms_lock_held_by_another_process(pkg_host, tmp_path):
    """dnf4 fails at once when another process (rpm, PackageKit) holds rpm's
    transaction lock: the package failed with "can't create transaction lock"."""
    dbpath = pkg_host.run(["rpm", "--eval", "%{_dbpath}"]).stdout.strip()
    pkg_host.run(["rpm", "--initdb"])
    lock = f"{dbpath}/.rpm.lock"
    hold = f"import fcntl, sys; f = open({lock!r}, 'a'); fcntl.lockf(f, fcntl.LOCK_EX); "
    hold += "print('locked', flush=True); sys.stdin.read()"  # until the test closes stdin
    holder = subprocess.Popen(
        pkg_host.argv([sys.executable, "-c", hold]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        path = graph(tmp_path, pkg_host.repo, {"mgmt-test-b": "installed"})
        args = ["--file", str(path), "--no-server", "--prefix", str(tmp_path / "state")]
        agent = pkg_host.agent([*args, "--converged-timeout", "0"], tmp_path / "agent.log")
        dnf_log = tmp_path / "dnf-log" / "dnf.log"
        wait_until(
            lambda: "transaction lock" in dnf_log.read_text(),
            timeout=60,
            what="dnf to find rpm's lock held",
        )
        assert installed(pkg_host, "mgmt-test-b") == ""
    finally:
        holder.stdin.close()  # the holder ends, and its lock with it
        holder.wait(timeout=30)
    agent.communicate(timeout=120)
    assert agent.returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-b") == "1.0-1"
    assert "failed" not in log(tmp_path)
    assert "another process holds rpm's transaction lock" in log(tmp_path)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"state": "installed; rm"}, "not a package name or version"),
        ({"name": "-rf"}, "not a package name"),
        ({"state": ""}, "not a package name or version"),
        ({"state": "latest"}, "'latest' is no state here: did you mean 'newest'?"),
        ({"state": "absent"}, "'absent' is no state here: did you mean 'uninstalled'?"),
        ({"state": "1.0-"}, "'1.0-' is not a version"),
        ({"state": "2:"}, "'2:' is not a version"),
        ({"state": "x:1.0"}, "'x:1.0' is not a version"),
        ({"state": "1.0-1-2"}, "'1.0-1-2' is not a version"),
        ({"state": "Latest"}, "'Latest' is no state here: did you mean 'newest'?"),
        ({"state": "Installed"}, "'Installed' is no state here: did you mean 'installed'?"),
        ({"state": "remove"}, "'remove' is no state here: did you mean 'uninstalled'?"),
        ({"state": "1.0-1."}, "'1.0-1.' is not a version"),
        ({"state": "~"}, "'~' is not a version"),
        # dnf reads an architecture only after a release: NAME-VERSION-RELEASE.ARCH.
        ({"name": "a.noarch", "state": "1.0"}, "'1.0': a.noarch names an architecture"),
    ],
)
def test_bad_fields_are_refused_at_validation(params, message):
    from mgmt.resources.base import FieldError, fill_params
    from mgmt.resources.pkg import PkgRes

    with pytest.raises(FieldError, match=message):
        PkgRes("x", fill_params(PkgRes, params))


def agent_json(result: subprocess.CompletedProcess) -> dict:
    """The --json rows of the pkg resources, by name."""
    rows = json.loads(result.stdout)["resources"]
    return {r["name"]: r for r in rows if r["kind"] == "pkg"}


def test_one_package_named_two_ways_is_refused_at_load(pkg_host, tmp_path):
    # Grouped, rpm's answer for the second spelling was lost and both were
    # "right" while the package stayed; apart, they undid each other forever.
    wanted = {"mgmt-test-a": "installed", "mgmt-test-a.noarch": "uninstalled"}
    for meta in ("", "{autogroup: false}"):
        path = graph(tmp_path, pkg_host.repo, wanted, meta=meta)
        result = run_once(pkg_host, tmp_path, path)
        assert result.returncode == 2, log(tmp_path)
        said = log(tmp_path).splitlines()[-1]
        assert said.startswith(f"mgmt: error: {path}:"), said
        assert "pkg[mgmt-test-a.noarch] and pkg[mgmt-test-a] (line " in said
        assert "both manage pkg:mgmt-test-a.noarch" in said
        assert installed(pkg_host, "mgmt-test-a") == ""
        assert transactions(pkg_host) == []


# (one spelling, another, whether they name one package)
SPELLINGS = [
    ("mgmt-test-a", "mgmt-test-a.noarch", True),
    ("mgmt-test-a.x86_64", "mgmt-test-a", True),
    # Two architectures of one name are two packages (multilib).
    ("mgmt-test-a.i686", "mgmt-test-a.x86_64", False),
    # A suffix that is no architecture is part of the name.
    ("python3", "python3.11", False),
]


def test_which_spellings_name_one_package():
    from mgmt.errors import GraphError
    from mgmt.graph import parse_graph

    for first, second, same in SPELLINGS:
        text = (
            "graph: g\nresources:\n  pkg:\n"
            f"  - {{name: {first}, state: installed}}\n"
            f"  - {{name: {second}, state: uninstalled}}\n"
        )
        if not same:
            assert len(parse_graph(text, "g.yaml").resources) == 2, (first, second)
            continue
        with pytest.raises(GraphError) as caught:
            parse_graph(text, "g.yaml")
        assert caught.value.line == 5, (first, second)
        assert f"pkg[{second}] and pkg[{first}] (line 4) both manage pkg:" in str(caught.value)


def test_each_rpm_query_gets_its_own_answer(pkg_host):
    # Two spellings of one package in one rpm run: the second's line was taken
    # for the first's other architecture and dropped, so it read "not installed".
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-a-1.0-1.noarch.rpm")])
    queries = ["mgmt-test-a", "mgmt-test-a.noarch", "mgmt-test-b", "mgmt-test-a-1.0", "mgmt-test-a"]
    code = (
        "import json, sys; from mgmt.resources.dnf import Dnf; "
        "print(json.dumps(Dnf().installed(sys.argv[1:])))"
    )
    env = dict(pkg_host.env(), PYTHONPATH=str(SRC))
    out = pkg_host.run([sys.executable, "-c", code, *queries], env=env).stdout
    assert json.loads(out) == {
        "mgmt-test-a": "0:1.0-1",
        "mgmt-test-a.noarch": "0:1.0-1",
        "mgmt-test-a-1.0": "0:1.0-1",
    }


@pytest.mark.parametrize("name", ["mgmt-test-[bc]", "mgmt-test-?"])
def test_a_pattern_is_refused_at_load_and_nothing_is_installed(pkg_host, tmp_path, name):
    path = graph(tmp_path, pkg_host.repo, {name: "installed"})
    assert run_once(pkg_host, tmp_path, path).returncode == 2, log(tmp_path)
    said = log(tmp_path).splitlines()[-1]
    assert said.startswith(f"mgmt: error: {path}:") and "not a package name" in said, said
    assert installed(pkg_host, "mgmt-test-b") == installed(pkg_host, "mgmt-test-c") == ""
    assert transactions(pkg_host) == []


def test_noop_does_not_take_a_pattern_for_a_name(pkg_host, tmp_path):
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-b-1.0-1.noarch.rpm")])
    path = graph(tmp_path, pkg_host.repo, {"mgmt-test-*": "uninstalled"})
    assert run_once(pkg_host, tmp_path, path, "--noop").returncode == 2, log(tmp_path)
    assert "'mgmt-test-*' is not a package name" in log(tmp_path)


def test_what_dnf_reads_as_more_than_a_name_is_refused():
    from mgmt.resources.base import FieldError, fill_params
    from mgmt.resources.pkg import PkgRes

    refused = {
        "name": ["a*", "a?", "a[bc]", "a]", "a\\b", "@group", "/usr/bin/x", "a>=1", "(a or b)",
                 "a:1.0", "a,b", "%{name}", "a\tb", "é"],
        "state": ["1.*", "1.[0-9]", "1.0 ", "-1.0", ">=1.0", "1.0/2"],
    }  # fmt: skip
    for field, values in refused.items():
        for value in values:
            with pytest.raises(FieldError, match="is not a package name") as caught:
                PkgRes("x", fill_params(PkgRes, {field: value}))
            assert caught.value.field == field
    # What real names and versions are made of still loads.
    for name in ["libstdc++", "python3.11", "mgmt-test-a.noarch", "perl-Foo_Bar", "x~y^z"]:
        assert PkgRes("x", fill_params(PkgRes, {"name": name})).package == name
    for state in ["2:1.2-3", "1.0~rc1", "1.0^20240101git", "1.2.3_4+b"]:
        assert PkgRes("x", fill_params(PkgRes, {"state": state})).state == state


def test_an_unknown_package_fails_alone_in_a_group(pkg_host, tmp_path):
    wanted = {
        "mgmt-test-a": "installed",
        "mgmt-test-nonesuch": "installed",
        "mgmt-test-b": "installed",
    }
    path = graph(tmp_path, pkg_host.repo, wanted)
    result = run_once(pkg_host, tmp_path, path, "--json")
    assert result.returncode == 1, log(tmp_path)
    # The others are installed, in one transaction of their own.
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"
    assert installed(pkg_host, "mgmt-test-b") == "1.0-1"
    assert len(transactions(pkg_host)) == 1
    rows = agent_json(result)
    errors = rows["mgmt-test-nonesuch"]["errors"]
    assert errors == ["mgmt-test-nonesuch: dnf install: No match for argument: mgmt-test-nonesuch"]
    # Only it failed: the others are reported as the changes they were.
    assert {name: row["result"] for name, row in rows.items()} == {
        "mgmt-test-a": "changed",
        "mgmt-test-nonesuch": "failed",
        "mgmt-test-b": "changed",
    }
    assert rows["mgmt-test-a"]["errors"] == rows["mgmt-test-b"]["errors"] == []
    assert json.loads(result.stdout)["summary"]["failed"] == 1
    assert "converged with 1 failed resource(s)" in log(tmp_path)
    # Converged but for it: the next run changes nothing else and fails the same way.
    result = run_once(pkg_host, tmp_path, path, "--json")
    assert result.returncode == 1, log(tmp_path)
    rows = agent_json(result)
    assert rows["mgmt-test-nonesuch"]["errors"] == errors
    assert rows["mgmt-test-a"]["result"] == rows["mgmt-test-b"]["result"] == "unchanged"
    assert len(transactions(pkg_host)) == 1


def test_a_package_whose_pre_scriptlet_fails_fails_alone_in_a_group(pkg_host, tmp_path):
    """rpm installs the rest of a transaction in which one package's %pre fails, and
    dnf says the transaction failed: every package of the group was reported failed,
    with dnf's last lines (a list of packages, "Failed:"), the installed ones too."""
    wanted = {"mgmt-test-a": "installed", "mgmt-test-f": "installed"}
    path = graph(tmp_path, pkg_host.repo, wanted)
    result = run_once(pkg_host, tmp_path, path, "--json")
    assert result.returncode == 1, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"
    assert installed(pkg_host, "mgmt-test-sh") == "1.0-1"  # what the scriptlet needs
    assert installed(pkg_host, "mgmt-test-f") == ""
    rows = agent_json(result)
    assert {name: row["result"] for name, row in rows.items()} == {
        "mgmt-test-a": "changed",
        "mgmt-test-f": "failed",
    }
    assert rows["mgmt-test-a"]["errors"] == []
    assert rows["mgmt-test-f"]["errors"] == [
        "mgmt-test-f: dnf install: %prein(mgmt-test-f-1.0-1.noarch) scriptlet failed, exit status 1"
    ]
    # The next run has only it to do, and fails the same way.
    result = run_once(pkg_host, tmp_path, path, "--json")
    assert result.returncode == 1, log(tmp_path)
    rows = agent_json(result)
    assert rows["mgmt-test-a"]["result"] == "unchanged"
    assert rows["mgmt-test-f"]["errors"] == [
        "mgmt-test-f: dnf install: %prein(mgmt-test-f-1.0-1.noarch) scriptlet failed, exit status 1"
    ]


def test_an_unknown_package_is_named_among_several_actions(pkg_host, tmp_path):
    # Install and remove together go through dnf4's shell, which skips what
    # matches nothing and succeeds: dnf's words about it are kept all the same.
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-b-1.0-1.noarch.rpm")])
    wanted = {"mgmt-test-a": "installed", "mgmt-test-b": "uninstalled", "mgmt-test-c": "9.9"}
    result = run_once(pkg_host, tmp_path, graph(tmp_path, pkg_host.repo, wanted), "--json")
    assert result.returncode == 1, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"
    assert installed(pkg_host, "mgmt-test-b") == ""
    assert agent_json(result)["mgmt-test-c"]["errors"] == [
        "mgmt-test-c-9.9: dnf install: No match for argument: mgmt-test-c-9.9"
    ]


def test_what_dnf_cannot_resolve_among_several_actions_is_told_in_its_words(pkg_host, tmp_path):
    """dnf4's shell says it cannot install mgmt-test-h, does nothing and exits 0: the
    error said "dnf succeeded" and lost why, and mgmt-test-c stayed installed."""
    pkg_host.run(["rpm", "-i", str(pkg_host.repo / "mgmt-test-c-1.0-1.noarch.rpm")])
    wanted = {"mgmt-test-h": "installed", "mgmt-test-c": "uninstalled"}
    result = run_once(pkg_host, tmp_path, graph(tmp_path, pkg_host.repo, wanted), "--json")
    assert result.returncode == 1, log(tmp_path)
    rows = agent_json(result)
    assert rows["mgmt-test-h"]["errors"] == [
        "mgmt-test-h: dnf install: nothing provides mgmt-nothere needed by mgmt-test-h-1.0-1.noarch"
    ]
    assert (rows["mgmt-test-c"]["result"], rows["mgmt-test-c"]["errors"]) == ("changed", [])
    assert installed(pkg_host, "mgmt-test-c") == ""


@pytest.mark.parametrize("broken", ["mgmt-test-h", "mgmt-test-k"], ids=["itself", "through h"])
def test_a_package_that_needs_what_no_repository_has_fails_alone_in_a_group(
    pkg_host, tmp_path, broken
):
    """dnf refused the one transaction: mgmt-test-a was not installed and failed
    with the other's error (mgmt-test-k needs mgmt-test-h, which needs what no
    repository has)."""
    wanted = {"mgmt-test-a": "installed", broken: "installed"}
    result = run_once(pkg_host, tmp_path, graph(tmp_path, pkg_host.repo, wanted), "--json")
    assert result.returncode == 1, log(tmp_path)
    rows = agent_json(result)
    assert {name: row["result"] for name, row in rows.items()} == {
        "mgmt-test-a": "changed",
        broken: "failed",
    }
    assert rows["mgmt-test-a"]["errors"] == []
    [error] = rows[broken]["errors"]
    assert error.startswith(f"{broken}: dnf install: nothing provides mgmt-nothere"), error
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"


@pytest.mark.parametrize("noop", [[], ["--noop"]], ids=["", "noop"])
@pytest.mark.parametrize("missing", [False, True], ids=["all installed", "one to install"])
def test_while_no_repository_answers_only_what_needs_one_fails(pkg_host, tmp_path, missing, noop):
    """dnf check-update failed the whole group, the members already right too; so did
    an install that could not reach the repository, and it hid check-update's error.
    --noop said "would install" mgmt-test-c, which the real run fails."""
    for name in ("mgmt-test-a-2.0-1", "mgmt-test-b-1.0-1"):
        pkg_host.run(["rpm", "-i", str(pkg_host.repo / f"{name}.noarch.rpm")])
    path = tmp_path / "offline.yaml"  # no http:server: the repository does not answer
    path.write_text(
        "graph: offline\nresources:\n  pkg:\n  - name: mgmt-test-a\n    state: installed\n"
        "  - name: mgmt-test-b\n    state: newest\n"
        + ("  - name: mgmt-test-c\n    state: installed\n" if missing else "")
    )
    before = rpm_db(pkg_host)
    result = run_once(pkg_host, tmp_path, path, "--json", *noop)
    assert result.returncode == 1, log(tmp_path)
    rows = agent_json(result)
    assert (rows["mgmt-test-a"]["result"], rows["mgmt-test-a"]["errors"]) == ("unchanged", [])
    # Each failed member says its own failure, not the group's every one.
    assert rows["mgmt-test-b"]["result"] == "failed"
    [error] = rows["mgmt-test-b"]["errors"]
    assert error.startswith("mgmt-test-b: dnf check-update: "), error
    if missing:
        assert rows["mgmt-test-c"]["result"] == "failed"
        [error] = rows["mgmt-test-c"]["errors"]
        assert error.startswith("mgmt-test-c: dnf install: "), error
        assert "Failed to download metadata for repo 'mgmt-test'" in error, error
    assert "would install" not in log(tmp_path)
    assert transactions(pkg_host) == [] and rpm_db(pkg_host) == before


def test_two_packages_applied_apart_that_undo_each_other_fail_instead_of_flapping(
    pkg_host, tmp_path
):
    """mgmt-test-r requires mgmt-test-c: installing r installs c, removing c removes r.
    Applied in two transactions, each undid the other for ever (a dnf run every few
    seconds, never converged); grouped, dnf refuses the one transaction."""
    wanted = {"mgmt-test-r": "installed", "mgmt-test-c": "uninstalled"}
    path = graph(tmp_path, pkg_host.repo, wanted, meta="{autogroup: false}")
    args = ["--file", str(path), "--no-server", "--prefix", str(tmp_path / "state"), "--json"]
    proc = pkg_host.agent([*args, "--converged-timeout", "0"], tmp_path / "agent.log")
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, log(tmp_path)
    rows = agent_json(subprocess.CompletedProcess(proc.args, proc.returncode, out, ""))
    errors = {name: " ".join(entry.get("errors", [])) for name, entry in rows.items()}
    # Each names what it undid and who wants that, and how to make them agree.
    assert (
        "install mgmt-test-r also installed mgmt-test-c, which pkg[mgmt-test-c] wants"
        " uninstalled" in errors["mgmt-test-r"]
    ), errors
    assert (
        "remove mgmt-test-c also removed mgmt-test-r, which pkg[mgmt-test-r] wants"
        " installed" in errors["mgmt-test-c"]
    ), errors
    assert "autogroup" in errors["mgmt-test-r"]
    assert len(transactions(pkg_host)) == 2, log(tmp_path)  # each ran once


NONE = ", but none of the providers can be installed"
DNF4_THROUGH = f"""\
Error:
 Problem: package mgmt-test-k-1.0-1.noarch requires mgmt-test-h{NONE}
  - conflicting requests
  - nothing provides mgmt-nothere needed by mgmt-test-h-1.0-1.noarch
"""
# libdnf5's words (solver_problems.cpp): the repository is named.
DNF5_THROUGH = f"""\
Failed to resolve the transaction:
Problem: package mgmt-test-k-1.0-1.noarch from mgmt-test requires mgmt-test-h{NONE}
  - conflicting requests
  - nothing provides mgmt-nothere needed by mgmt-test-h-1.0-1.noarch from mgmt-test
"""
# Both a missing need and a conflict with another request: not one package's alone.
CONFLICT = f"""\
 Problem: package a-1-1.noarch requires x{NONE}
  - package x1-1-1.noarch conflicts with c provided by c-1-1.noarch
  - conflicting requests
  - nothing provides y needed by x2-1-1.noarch
"""


@pytest.mark.parametrize(
    ("text", "names"),
    [(DNF4_THROUGH, {"mgmt-test-k", "mgmt-test-h"}), (DNF5_THROUGH, {"mgmt-test-k", "mgmt-test-h"}),
     (CONFLICT, set())],
    ids=["dnf4", "dnf5", "a conflict too"],
)  # fmt: skip
def test_what_dnf_says_cannot_be_installed_alone(text, names):
    from mgmt.resources.dnf import uninstallable

    found = uninstallable(text)
    assert set(found) == names
    assert all(
        line.startswith("nothing provides mgmt-nothere needed by") for line in found.values()
    )


def test_a_large_group_keeps_each_failed_members_error():
    """Each member's error took one of 20 places: in a group of 25 the first ones lost
    theirs (`errors: []` for a failed package), and the world was told empty text."""
    from mgmt.engine.outcome import Outcome
    from mgmt.resources.base import ResourceError

    outcome = Outcome()
    said = {f"p{i:02}": f"p{i:02}: dnf install: no repository" for i in range(25)}
    outcome.record(False, True, [], ResourceError("pkg[p00]", "all", members=said))
    assert all(outcome.errors_of(name) == [text] for name, text in said.items())
    same = dict.fromkeys(said, "the repository is down")  # one entry for all of them
    outcome.record(False, True, [], ResourceError("pkg[p00]", "all", members=same))
    assert outcome.errors_of("p00")[-1] == "the repository is down"
    assert outcome.errors.count("the repository is down") == 1


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # dnf4's own line, then rpm's (the first is kept: rpm's has the exit status).
        ("Error in PREIN scriptlet in rpm package mgmt-test-f\n",
         {"mgmt-test-f": "Error in PREIN scriptlet in rpm package mgmt-test-f"}),
        ("error: %prein(mgmt-test-f-2:1.0-1.x86_64) scriptlet failed, exit status 3\n"
         "Error in PREIN scriptlet in rpm package mgmt-test-f\n",
         {"mgmt-test-f": "%prein(mgmt-test-f-2:1.0-1.x86_64) scriptlet failed, exit status 3"}),
        ("Installed: mgmt-test-a-2.0-1.noarch\nComplete!\n", {}),
    ],
)  # fmt: skip
def test_which_packages_scriptlets_failed(text, said):
    from mgmt.resources.dnf import scriptlets_failed

    assert scriptlets_failed(text) == said


FAKE_DNF5 = """\
#!{python}
# dnf5 as it meets rpm's lock held: it fails at once (dnf5 #2186), else succeeds.
import fcntl, sys
with open({attempts!r}, "a") as out:
    out.write("attempt\\n")
with open({lock!r}, "a") as lock:
    try:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print("Running transaction")
        print("Transaction failed: Failed to obtain rpm transaction lock. "
              "Another transaction is in progress.")
        sys.exit(1)
print("Complete!")
"""


def test_dnf5s_words_for_rpms_lock_held_make_the_transaction_wait(tmp_path, monkeypatch):
    """dnf5 fails at once too, without naming the lock file: rpm's own
    %_rpmlock_path is waited for (this host has dnf4: dnf5 is played by a script
    that takes the real lock as rpm does)."""
    import threading

    from mgmt.resources.dnf import Dnf, Transaction

    lock, attempts = tmp_path / "rpm.lock", tmp_path / "attempts"
    lock.touch()
    (tmp_path / ".rpmmacros").write_text(f"%_rpmlock_path {lock}\n")  # rpm reads $HOME's
    fake = tmp_path / "bin" / "dnf5"
    fake.parent.mkdir()
    fake.write_text(FAKE_DNF5.format(python=sys.executable, attempts=str(attempts), lock=str(lock)))
    fake.chmod(0o755)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    hold = f"import fcntl, sys; f = open({str(lock)!r}, 'a'); fcntl.lockf(f, fcntl.LOCK_EX); "
    hold += "print('locked', flush=True); sys.stdin.read()"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline() == "locked\n"

    def release_after_the_first_attempt() -> None:
        wait_until(lambda: attempts.read_text(), what="dnf5's first attempt")
        holder.stdin.close()

    releasing = threading.Thread(target=release_after_the_first_attempt)
    releasing.start()
    transaction = Transaction()
    transaction.install.append("mgmt-test-a")
    try:
        output = Dnf().run(transaction)
    finally:
        releasing.join(timeout=30)
        holder.wait(timeout=30)
    assert "Complete!" in output
    assert attempts.read_text() == "attempt\nattempt\n"


# dnf4's transaction table, as --assumeno prints it (a long name on a line of its own).
DNF4_TABLE = """\
Dependencies resolved.
================================================================================
 Package              Architecture    Version          Repository          Size
================================================================================
Installing:
 mgmt-test-r          noarch          1.0-1            mgmt-test          6.4 k
 mgmt-test-a-with-a-name-longer-than-its-column
                      noarch          2.0-1            mgmt-test          6.4 k
Upgrading:
 mgmt-test-p          noarch          2.0-1            mgmt-test          6.4 k
Installing dependencies:
 mgmt-test-c          noarch          1.0-1            mgmt-test          6.4 k
Removing:
 mgmt-test-b          noarch          1.0-1            @System             68
Skipping packages with broken dependencies:
 mgmt-test-x          noarch          2.0-1            mgmt-test          6.4 k

Transaction Summary
================================================================================
Install  3 Packages
Operation aborted.
"""
# dnf5's (libdnf5-cli's transaction_table.cpp): an upgrade names what it replaces.
DNF5_TABLE = """\
Package                Arch   Version        Repository      Size
Installing:
 mgmt-test-r           noarch 1.0-1          mgmt-test   68.0   B
Upgrading:
 mgmt-test-p           noarch 2.0-1          mgmt-test   68.0   B
   replacing mgmt-test-p noarch 1.0-1        @System     68.0   B
Removing:
 mgmt-test-b           noarch 1.0-1          @System     68.0   B
Skipping packages with broken dependencies:
 mgmt-test-x           noarch 2.0-1          mgmt-test    6.4 KiB

Transaction Summary:
 Installing:         1 package
Operation aborted by the user.
"""


@pytest.mark.parametrize("text", [DNF4_TABLE, DNF5_TABLE], ids=["dnf4", "dnf5"])
def test_what_dnf_says_it_would_touch(text):
    from mgmt.resources.pkgnoop import touched

    found = touched(text)
    assert {"mgmt-test-r", "mgmt-test-p", "mgmt-test-b"} <= found
    assert "mgmt-test-x" not in found  # skipped: left as it is
    assert not found & {"Installing:", "Package", "replacing", "Transaction"}
    if text is DNF4_TABLE:
        assert {"mgmt-test-c", "mgmt-test-a-with-a-name-longer-than-its-column"} <= found
