"""A host reachable only through another (ssh_config ProxyJump), host keys checked on both."""

from __future__ import annotations

import pytest
from remote_helpers import assert_clean, file_graph, host_fingerprint, mgmt_run, need_hosts, summary

from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["jump", "inner"], behind={"inner": "jump"}) as hosts:
        yield hosts


def test_runs_through_the_jump_host(pool, bundle, tmp_path):
    inner = pool["inner"]
    done = mgmt_run(pool, bundle, [file_graph("inner", "inner", tmp_path)], "--converged-timeout=1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary(done.stdout)["inner"][:2] == ("converged", "copied")
    assert inner.read_file("/tmp/only-inner") == "i am inner"
    # The tunnel back to etcd went through the hop as well, and nothing is left.
    assert_clean(inner)
    assert_clean(pool["jump"])


def test_an_unknown_jump_host_is_refused(pool, bundle, tmp_path):
    pool.forget(pool["jump"])
    try:
        done = mgmt_run(
            pool, bundle, [file_graph("inner", "inner", tmp_path)], "--converged-timeout=1"
        )
    finally:
        pool.remember_all()
    assert done.returncode == 1
    message = summary(done.stdout)["inner"][2]
    assert "unknown host key" in message and host_fingerprint(pool["jump"]) in message
