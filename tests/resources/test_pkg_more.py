"""The pkg kind as a Fedora/RHEL administrator uses it, with the shared test repository."""

from __future__ import annotations

import json

import pytest
from pkg_repo import REPO_PORT
from test_pkg import graph, installed, log, run_once, transactions


@pytest.mark.parametrize("state", ["newest", "installed"])
def test_an_installed_package_another_obsoletes_converges(pkg_host, tmp_path, state):
    repo = pkg_host.repo
    pkg_host.run(["rpm", "-i", str(repo / "mgmt-test-o-1.0-1.noarch.rpm")])
    path = graph(tmp_path, repo, {"mgmt-test-o": state})
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    # newest: dnf replaces it by the package obsoleting it; installed: it stays.
    now = ("", "1.0-1") if state == "newest" else ("1.0-1", "")
    assert (installed(pkg_host, "mgmt-test-o"), installed(pkg_host, "mgmt-test-n")) == now
    done = len(transactions(pkg_host))
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert len(transactions(pkg_host)) == done, log(tmp_path)


@pytest.mark.parametrize("meta", ["", "{autogroup: false}"])
def test_removing_a_package_keeps_its_dependency_that_another_resource_wants(
    pkg_host, tmp_path, meta
):
    """dnf removes with a package the dependencies it installed for it alone
    (clean_requirements_on_remove): mgmt-test-c, pulled in by mgmt-test-r. Grouped,
    mgmt-test-c failed, "dnf left mgmt-test-c not installed"."""
    repo = pkg_host.repo
    path = graph(tmp_path, repo, {"mgmt-test-r": "installed"})
    assert run_once(pkg_host, tmp_path, path).returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-c") == "1.0-1"
    path = graph(tmp_path, repo, {"mgmt-test-r": "uninstalled", "mgmt-test-c": "installed"}, meta)
    result = run_once(pkg_host, tmp_path, path, "-v")
    assert installed(pkg_host, "mgmt-test-r") == ""
    assert installed(pkg_host, "mgmt-test-c") == "1.0-1", log(tmp_path)
    assert result.returncode == 0, log(tmp_path)
    # Apart, the removal failed, said to undo the other (which it did only once).
    assert "failed" not in log(tmp_path)


def test_a_repository_a_file_resource_adds_serves_the_package_after_it(pkg_host, tmp_path):
    """The repository's file written by a file resource the pkg resource comes after
    (an edge): the pkg is installed from it in the same run; --noop before says why
    it does not ask dnf."""
    repo_file = tmp_path / "repos.d" / "test.repo"
    text = repo_file.read_text()
    repo_file.unlink()
    path = tmp_path / "pkgs.yaml"
    path.write_text(
        f"""graph: pkgs
resources:
  http:server:
  - name: repo
    address: '127.0.0.1:{REPO_PORT}'
    root: {pkg_host.repo}
  file:
  - name: repofile
    path: {repo_file}
    content: {json.dumps(text)}
  pkg:
  - name: mgmt-test-b
edges:
- name: repo-file-first
  from: {{kind: file, name: repofile}}
  to: {{kind: pkg, name: mgmt-test-b}}
- name: server-first
  from: {{kind: 'http:server', name: repo}}
  to: {{kind: pkg, name: mgmt-test-b}}
"""
    )
    result = run_once(pkg_host, tmp_path, path, "--noop")
    assert result.returncode == 0, log(tmp_path)
    assert "not asked of dnf: after file[repofile]" in log(tmp_path)
    assert not repo_file.exists()
    assert run_once(pkg_host, tmp_path, path, "-v").returncode == 0, log(tmp_path)
    assert repo_file.read_text() == text
    assert installed(pkg_host, "mgmt-test-b") == "1.0-1"


def test_grouped_a_removal_never_takes_a_package_the_group_wants_installed(pkg_host, tmp_path):
    """mgmt-test-r, installed and wanted so, requires mgmt-test-c, wanted removed: the
    group's transaction removed r with c (r, already right, was not in it)."""
    repo = pkg_host.repo
    pkg_host.run(["rpm", "-i", str(repo / "mgmt-test-c-1.0-1.noarch.rpm"),
                  str(repo / "mgmt-test-r-1.0-1.noarch.rpm")])  # fmt: skip
    wanted = {"mgmt-test-r": "installed", "mgmt-test-c": "uninstalled"}
    path = graph(tmp_path, repo, wanted, server=False)  # a removal needs no repository
    said = "failed: mgmt-test-c: remove mgmt-test-c would also remove mgmt-test-r, which"
    for noop in (["--noop"], []):  # --noop fails it as the real run does
        result = run_once(pkg_host, tmp_path, path, *noop)
        assert result.returncode == 1, log(tmp_path)
        assert said in log(tmp_path)
        assert installed(pkg_host, "mgmt-test-r") == "1.0-1", log(tmp_path)
        assert installed(pkg_host, "mgmt-test-c") == "1.0-1", log(tmp_path)
    assert transactions(pkg_host) == []


def test_while_no_repository_answers_a_removal_beside_packages_kept_is_made(pkg_host, tmp_path):
    for name in ("mgmt-test-a-2.0-1", "mgmt-test-b-1.0-1"):
        pkg_host.run(["rpm", "-i", str(pkg_host.repo / f"{name}.noarch.rpm")])
    path = tmp_path / "offline.yaml"  # no http:server: the repository does not answer
    path.write_text(
        "graph: offline\nresources:\n  pkg:\n  - name: mgmt-test-a\n    state: installed\n"
        "  - name: mgmt-test-b\n    state: uninstalled\n"
    )
    result = run_once(pkg_host, tmp_path, path)
    assert result.returncode == 0, log(tmp_path)
    assert installed(pkg_host, "mgmt-test-b") == ""
    assert installed(pkg_host, "mgmt-test-a") == "2.0-1"
