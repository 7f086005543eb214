"""How a graph names its host, as users write it, on real hosts: an ~/.ssh/config
alias in upper case inside ssh://, and host:port without ssh://."""

import pytest
from remote_helpers import assert_clean, file_graph, has_file, mgmt_run, need_hosts, summary

from support.hosts import ssh_hosts


@pytest.fixture(scope="module")
def pool():
    need_hosts()
    with ssh_hosts(["WEB", "b"]) as hosts:  # "Host WEB" in the pool's ssh_config
        yield hosts


def test_an_upper_case_alias_in_a_url_is_the_alias_and_host_port_is_host_and_port(
    pool, bundle, tmp_path
):
    # ssh ssh://root@WEB:22 finds "Host WEB" (OpenSSH matches aliases case by case);
    # mgmt lower-cased the URL's host and failed: "cannot connect to web:22: Name
    # or service not known". b:22 ran as a host named "b:22", beside "b".
    web, b = pool["WEB"], pool["b"]
    graphs = [
        file_graph("WEB", "ssh://root@WEB:22", tmp_path),
        file_graph("b", "root@b:22", tmp_path),
    ]
    done = mgmt_run(pool, bundle, graphs, "--converged-timeout=0")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = summary(done.stdout)
    assert {h: r[0] for h, r in rows.items()} == {"WEB": "converged", "b": "converged"}
    assert has_file(web, "i am WEB") and has_file(b, "i am b")
    for host in (web, b):
        assert_clean(host)


def test_a_bad_port_without_ssh_url_stops_the_run_before_any_host(pool, bundle, tmp_path):
    # Was "internal error: ValueError: invalid literal for int()", exit 1.
    graph = file_graph("b", "b:2x", tmp_path)
    done = mgmt_run(pool, bundle, [graph], "--converged-timeout=0")
    assert done.returncode == 2, done.stdout + done.stderr
    said = f"mgmt: error: {graph}:8: remote: invalid port in 'b:2x'"
    assert done.stderr.strip().splitlines() == [said]
    assert done.stdout == ""  # no host contacted, no summary


def test_an_alias_from_an_included_file_is_an_alias(pool, bundle, tmp_path):
    # paramiko knows no Include: "Host inc" in ~/.ssh/conf.d/*.conf, which ssh
    # finds, failed as "cannot connect to inc:22: Name or service not known".
    b = pool["b"]
    saved = pool.ssh_config.read_text()
    included = pool.ssh_dir / "conf.d"
    included.mkdir(exist_ok=True)
    alias = saved.split("Host b\n", 1)[1].split("\n\n", 1)[0]  # b's HostName, Port...
    (included / "inc.conf").write_text("Host inc\n" + alias + "\n")
    pool.ssh_config.write_text("Include conf.d/*.conf\n\n" + saved)
    try:
        graph = file_graph("b", "inc", tmp_path, content="included")
        done = mgmt_run(pool, bundle, [graph], "--converged-timeout=0")
    finally:
        pool.ssh_config.write_text(saved)
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary(done.stdout)["inc"][0] == "converged"
    assert has_file(b, "included")
    assert_clean(b)
