"""Two ``mgmt run --detach`` to one host at once: both find no cluster there, and
both start one. One cluster must come out of it, whole, and nothing left once it
is stopped."""

import pytest
from remote_helpers import (
    Initiator,
    assert_clean,
    cluster_command,
    file_graph,
    mgmt_run,
    need_hosts,
    slow_python,
    wait_until,
)

from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["t"], bridge=True) as hosts:
        yield hosts


def _running(host, command: str) -> bool:
    """Whether the hosts' program (detached.py) runs ``command`` on ``host`` now."""
    return any(cmd.endswith(" " + command) for cmd in host.processes().values())


def test_two_runs_that_start_a_cluster_on_one_host_at_once_leave_one(pool, bundle, tmp_path):
    """The later start of etcd took the place of the other's in the cluster's files,
    its run's auth met the other's etcd (with auth on already: "requires
    authentication"), and what that failed run then stopped and removed was the
    other's cluster: `mgmt status` found none. The first run's Python waits, before
    it starts ``etcd``, until the second run has started its cluster."""
    t = pool["t"]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = file_graph("t", "t", tmp_path / "one", "first")
    second = file_graph("t", "t", tmp_path / "two", "second")
    slow_python(t, first, "etcd) while ! [ -e /tmp/go-first ]; do sleep 0.1; done")
    try:
        with Initiator(pool, bundle, [first], "--detach") as run:
            wait_until(lambda: _running(t, "etcd"), 60, "the first run's etcd start under way")
            other = mgmt_run(pool, bundle, [second], "--detach")
            t.run("touch /tmp/go-first")  # the second's cluster runs: the first goes on
            code = run.wait(90)
        # The second run's cluster, which started first, runs on, whole.
        status = cluster_command(pool, bundle, "status", [second])
        assert status.returncode == 0, status.stdout + status.stderr + run.output
        assert t.read_file("/tmp/only-t") == "second"
        assert other.returncode == 0, other.stdout + other.stderr
        assert code == 1, run.output
        assert "t: etcd: etcd already runs here" in run.output, run.output
    finally:
        t.run("rm -f /tmp/go-first")
        stop = cluster_command(pool, bundle, "stop", [second])
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert_clean(t)
