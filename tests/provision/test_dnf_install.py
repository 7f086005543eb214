"""A real `dnf --installroot` install from a repository that `mgmt-pkg serve` serves."""

from __future__ import annotations

import subprocess
from pathlib import Path

from provision_support import ServeProcess

from support import require_root, require_tools

SPEC = Path(__file__).parent / "data" / "provision-probe.spec"


def test_dnf_installs_from_the_served_repo(tmp_path):
    require_tools("rpmbuild", "createrepo_c", "dnf", "rpm")
    require_root()  # dnf chowns files inside the install root
    repo = tmp_path / "repo"
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {tmp_path / 'top'}",
         "--define", f"_rpmdir {repo}", "--define", "_build_id_links none", str(SPEC)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    subprocess.run(["createrepo_c", "-q", str(repo)], check=True, timeout=60)
    root = tmp_path / "installroot"
    with ServeProcess(str(repo), "--bind", "127.0.0.1", "--port", "0", "-v") as server:
        dnf = subprocess.run(
            ["dnf", "-y", "-q", f"--installroot={root}", "--releasever=39",
             "--setopt=reposdir=/nonexistent", f"--setopt=cachedir={tmp_path / 'cache'}",
             f"--repofrompath=probe,{server.http}/", "--repo=probe", "--nogpgcheck",
             "--setopt=install_weak_deps=False", "install", "provision-probe"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        log = server.stop()
    assert dnf.returncode == 0, dnf.stderr
    assert (root / "usr/share/provision-probe/hello").read_text() == "served by mgmt\n"
    assert (root / "usr/share/provision-probe/payload").stat().st_size == 300_000
    query = subprocess.run(["rpm", "--root", str(root), "-q", "provision-probe"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert query.stdout.strip() == "provision-probe-1.0-1.noarch"
    assert "GET /noarch/provision-probe-1.0-1.noarch.rpm 200" in log
