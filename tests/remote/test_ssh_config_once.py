"""The run's ssh_config is read once, however many hosts it connects to.

Each host's runner takes a copy of the run's ConnectOptions (with its own timeout);
a copy made before the files were read read and parsed them again, for each host,
under the lock every connection is made under: at 100 hosts and an ssh_config of
100 Host blocks, about a tenth of the initiator's CPU (bench/fanout.py)."""

from __future__ import annotations

from pathlib import Path

from remote_helpers import need_hosts

from mgmt.remote.hostspec import parse_remote
from mgmt.remote.transport import ssh_include
from mgmt.remote.transport.connect import ConnectOptions
from mgmt.remote.transport.paramiko_ssh import ParamikoRunner
from support.hosts import ssh_hosts


def test_the_ssh_config_is_read_once_for_all_hosts(monkeypatch):
    need_hosts()
    with ssh_hosts(["one", "two", "three"]) as pool:
        monkeypatch.setenv("HOME", str(pool.home))
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
        # With an Include line the files are read by ssh_include (paramiko knows
        # none), which lets the test count the reads.
        (pool.ssh_dir / "conf.d").mkdir()
        pool.ssh_config.write_text("Include conf.d/*.conf\n\n" + pool.ssh_config.read_text())
        reads = []
        read = ssh_include.expanded

        def counted(path: str, folder: str) -> str:
            reads.append(path)
            return read(path, folder)

        monkeypatch.setattr(ssh_include, "expanded", counted)
        options = ConnectOptions()
        runners = []
        try:
            for host in pool:
                runners.append(ParamikoRunner(parse_remote(host.name, Path("g.yaml")), options))
            assert [r.run("echo $((6 * 7))").stdout for r in runners] == ["42\n"] * 3
        finally:
            for runner in runners:
                runner.close()
        assert sorted(reads) == sorted([str(pool.ssh_config), "/etc/ssh/ssh_config"])
