"""dnf installs a `mgmt-pkg rpm` package and upgrades it: an edited
%config(noreplace) file is kept, the new one lands beside it as .rpmnew."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rpm_helpers import dnf, run_cli, serve

from support import require_tools


def build(tmp_path: Path, repo: Path, version: str, config_text: str) -> None:
    tree = tmp_path / f"tree-{version}"
    (tree / "etc" / "demo").mkdir(parents=True)
    (tree / "etc" / "demo" / "demo.conf").write_text(config_text)
    (tree / "usr" / "share" / "demo").mkdir(parents=True)
    (tree / "usr" / "share" / "demo" / "VERSION").write_text(version + "\n")
    # fpm's most common form: a tree laid out as the system, mapped onto /
    result = run_cli("rpm", "-n", "demo", "-v", version, "-o", str(repo),
                     "--config-files", "/etc/demo/demo.conf", f"{tree}/=/")  # fmt: skip
    assert result.code == 0, result.err
    done = run_cli("repo", str(repo))
    assert done.code == 0, done.err


def test_upgrade_keeps_an_edited_config_and_writes_rpmnew(tmp_path: Path):
    require_tools("rpmbuild", "createrepo_c", "dnf")
    repo, root = tmp_path / "repo", tmp_path / "root"
    build(tmp_path, repo, "1.0", "setting = 1\n")
    with serve(repo) as url:
        done = dnf(url, root, "install", "demo")
        assert done.returncode == 0, done.stdout + done.stderr
        config = root / "etc" / "demo" / "demo.conf"
        assert config.read_text() == "setting = 1\n"
        config.write_text("setting = mine\n")
        build(tmp_path, repo, "2.0", "setting = 2\n")
        done = dnf(url, root, "--refresh", "upgrade", "demo")
        assert done.returncode == 0, done.stdout + done.stderr
    installed = subprocess.run(["rpm", "--root", str(root), "-q", "demo"],
                               capture_output=True, text=True, check=True)  # fmt: skip
    assert installed.stdout.strip() == "demo-2.0-1.noarch"
    assert (root / "usr" / "share" / "demo" / "VERSION").read_text() == "2.0\n"
    assert config.read_text() == "setting = mine\n"
    assert (root / "etc" / "demo" / "demo.conf.rpmnew").read_text() == "setting = 2\n"
