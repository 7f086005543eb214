"""Which host a --remote graph names: URL and alias forms, and the errors for bad ones."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mgmt.errors import GraphError
from mgmt.remote.hostspec import HostSpec, load_remotes, parse_remote, read_remote

GOOD = [
    ("ssh://root@10.254.0.2:22", "10.254.0.2", "root", 22, None),
    ("ssh://root@10.254.0.2", "10.254.0.2", "root", None, None),
    ("ssh://web1", "web1", None, None, None),
    ("ssh://deploy:s3cret@web1.example.org:2222", "web1.example.org", "deploy", 2222, "s3cret"),
    ("ssh://deploy:p%40ss%3Aword@web1:2222", "web1", "deploy", 2222, "p@ss:word"),
    ("web1", "web1", None, None, None),
    ("admin@web1", "web1", "admin", None, None),
    ("  db-2.internal  ", "db-2.internal", None, None, None),
    ("ssh://root@0.0.0.0", "0.0.0.0", "root", None, None),
    ("web12345", "web12345", None, None, None),
    ("12345", "12345", None, None, None),  # one part: may be an ~/.ssh/config alias
    ("10.254.0.2x", "10.254.0.2x", None, None, None),  # a name, not an address
    # Domain logins (SSSD's fully qualified names) were "invalid user name".
    ("ssh://alice%40corp.example.com@web1", "web1", "alice@corp.example.com", None, None),
    ("ssh://alice@corp.example.com@web1:22", "web1", "alice@corp.example.com", 22, None),
    ("alice@corp.example.com@web1", "web1", "alice@corp.example.com", None, None),
    # host:port without ssh:// (Fabric's shorthand) is the host and its port, as the
    # URL's: the port was part of the host's name ("web1:2222") in the cluster.
    ("web1:2222", "web1", None, 2222, None),
    ("root@10.254.0.2:22", "10.254.0.2", "root", 22, None),
    ("2001:db8::7", "2001:db8::7", None, None, None),  # a bare IPv6 address, whole
    # The URL's host as written: an ~/.ssh/config alias is matched case by case.
    ("ssh://root@WEB2:22", "WEB2", "root", 22, None),
    ("ssh://Web1.Example.org", "Web1.Example.org", None, None, None),
    ("ssh://[2001:DB8::7]:22", "2001:DB8::7", None, 22, None),
    # The host is percent-decoded as the user is (RFC 3986): a link-local address's
    # zone is written %25 in a URL (RFC 6874); "fe80::1%25eth0" named zone "25eth0".
    ("ssh://root@[fe80::1%25eth0]:22", "fe80::1%eth0", "root", 22, None),
    ("ssh://web%2D1", "web-1", None, None, None),
]


@pytest.mark.parametrize(("value", "target", "user", "port", "password"), GOOD)
def test_parses_urls_and_aliases(value, target, user, port, password, tmp_path):
    spec = parse_remote(value, tmp_path / "g.yaml")
    assert (spec.target, spec.user, spec.port, spec.password) == (target, user, port, password)
    assert spec.name == target


BAD = [
    ("http://web1", "unsupported scheme"),
    ("ssh://web1:99999", "invalid port"),
    ("ssh://web1:0", "invalid port"),
    ("ssh://web1/some/path", "unexpected path"),
    ("ssh://", "missing or invalid host"),
    ("web1; rm -rf /", "not a host name"),
    ("$(reboot)", "not a host name"),
    ("", "expected ssh://"),
    (42, "expected ssh://"),
    # Bad input that used to pass, or end in an internal error.
    ("ssh://[::1", "not a URL"),  # was ValueError: Invalid IPv6 URL, with no file named
    ("@host", "not a host name"),  # was connecting to host with no user
    ("ssh://@host", "invalid user name ''"),
    ("@corp@host", "not a host name"),  # "@" only past a user's first character
    ("ssh://%40corp@host", "invalid user name '@corp'"),
    ("-v", "not a host name"),  # ssh would read these as options
    ("-oProxyCommand=true@host", "not a host name"),
    ("ssh://-oProxyCommand@host", "invalid user name '-oProxyCommand'"),
    ("ssh://-host", "missing or invalid host"),
    ("ssh://web1%2Fx", "missing or invalid host"),  # was host "web1%2Fx"
    # "$" in a re.match pattern also matches before a final newline.
    ("admin\n@web1", "not a host name"),
    ("ssh://root%0A@web1", "invalid user name 'root\\n'"),
    # Addresses the resolver reads otherwise than they look (010 is octal 8, so
    # 010.254.0.2 is 8.254.0.2; 10.1 is 10.0.0.1): another host than meant.
    ("ssh://root@010.254.0.2", "'010.254.0.2' is not a plain IPv4 address"),
    ("root@010.254.0.2", "'010.254.0.2' is not a plain IPv4 address"),
    ("ssh://10.1:2222", "'10.1' is not a plain IPv4 address"),
    ("0x0a.0.0.1", "'0x0a.0.0.1' is not a plain IPv4 address"),
    ("10.254.0.256", "'10.254.0.256' is not a plain IPv4 address"),
    # host:port without ssh://: left to Fabric, "internal error: ValueError" or
    # "TypeError" on connecting, with no file named; port 0 and 99999 passed.
    ("web1:abc", "invalid port in 'web1:abc'"),
    ("web1:", "invalid port in 'web1:'"),
    ("web1:0", "invalid port"),
    ("root@web1:99999", "invalid port in 'root@web1:99999'"),
    (":22", "not a host name or ssh alias: ':22'"),
    ("010.254.0.2:22", "'010.254.0.2' is not a plain IPv4 address"),
]


@pytest.mark.parametrize(("value", "message"), BAD)
def test_refuses_bad_values_naming_file_and_line(value, message, tmp_path):
    with pytest.raises(GraphError) as caught:
        parse_remote(value, tmp_path / "g.yaml", line=7)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{tmp_path / 'g.yaml'}:7: remote:")


@pytest.mark.parametrize("key", ["remote", "via", "host:port"])
def test_a_bad_hop_or_remote_names_file_and_line_from_the_command_line(key, tmp_path):
    graph = tmp_path / "g.yaml"
    remote = {"remote": "ssh://[::1", "host:port": "localhost:abc"}.get(key, "nohost.invalid")
    key = "remote" if key == "host:port" else key
    via = "\nvia: '-v'" if key == "via" else ""
    graph.write_text(f"graph: g\nresources: {{}}\nremote: '{remote}'{via}\n")
    done = subprocess.run(
        [sys.executable, "-m", "mgmt", "run", "--tmp-prefix", "--remote", str(graph)],
        capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    line = 3 if key == "remote" else 4
    assert done.stderr.strip().splitlines()[-1].startswith(f"mgmt: error: {graph}:{line}: {key}:")
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_a_password_is_not_in_the_error_for_a_bad_url(tmp_path):
    with pytest.raises(GraphError) as caught:
        parse_remote("ssh://root:hunter2@[::1", tmp_path / "g.yaml", line=2)
    assert "hunter2" not in str(caught.value) and "root:***@" in str(caught.value)


def test_password_in_url_works_but_warns(tmp_path, mgmt_log):
    spec = parse_remote("ssh://root:hunter2@h", tmp_path / "g.yaml")
    assert spec.password == "hunter2"
    assert "password in plain text" in mgmt_log.getvalue()
    assert "hunter2" not in mgmt_log.getvalue()
    assert "hunter2" not in repr(spec) and "hunter2" not in str(spec)


def test_reads_remote_from_a_graph_with_its_line(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nresources: {}\n\nremote: ssh://bad:host:port\n")
    with pytest.raises(GraphError) as caught:
        read_remote(graph)
    assert f"{graph}:4:" in str(caught.value)


def test_a_graph_without_remote_is_an_error(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\n")
    with pytest.raises(GraphError, match="no remote: key"):
        read_remote(graph)


def test_invalid_yaml_names_the_line(tmp_path):
    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nremote: [unclosed\n")
    with pytest.raises(GraphError) as caught:
        read_remote(graph)
    assert str(caught.value).startswith(f"{graph}:") and "YAML" in str(caught.value)


def test_a_graph_with_an_error_is_refused_with_its_line_before_any_connection(tmp_path):
    # What `mgmt run --file` reports (file:line, exit 2) stops a --remote run
    # before any host is contacted; the remote: here leads nowhere (port 1).
    graph = tmp_path / "bad.yaml"
    graph.write_text(
        "graph: g\n"
        "resources:\n"
        "  file:\n"
        "  - name: f\n"
        "    path: /tmp/f\n"
        "    mode: '99z'\n"
        "remote: ssh://root@127.0.0.1:1\n"
    )
    with pytest.raises(GraphError) as caught:
        read_remote(graph)
    assert str(caught.value).startswith(f"{graph}:6:")
    env = dict(os.environ, MGMT_BUNDLE=str(graph))  # never reached: no bundle is needed
    done = subprocess.run(
        [sys.executable, "-m", "mgmt", "run", "--tmp-prefix", "--remote", str(graph)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"mgmt: error: {graph}:6:" in done.stderr and "mode" in done.stderr
    assert "127.0.0.1" not in done.stdout + done.stderr  # no connection, no summary


def test_duplicate_files_collapse(tmp_path):
    first, other = tmp_path / "one.yaml", tmp_path / "three.yaml"
    first.write_text("graph: a\nremote: ssh://root@h1\n")
    other.write_text("graph: c\nremote: h2\n")
    loaded = load_remotes([first, first, tmp_path / "." / "one.yaml", other])
    assert loaded.specs == [
        HostSpec("h1", first, user="root"),
        HostSpec("h2", other),
    ]


def test_a_second_graph_for_a_host_stops_the_run_before_any_connection(tmp_path):
    # Two agents named h1 would fight over its resources: exit 2, naming both
    # files, and nothing contacted (the host leads nowhere: port 1).
    first, second = tmp_path / "one.yaml", tmp_path / "dup.yaml"
    first.write_text("graph: a\nremote: ssh://root@127.0.0.1:1\n")
    second.write_text("graph: b\n\nremote: root@127.0.0.1\n")
    with pytest.raises(GraphError) as caught:
        load_remotes([first, second])
    said = f"{second}:3: remote: host 127.0.0.1 is already the remote of {first}:2"
    assert str(caught.value) == said
    env = dict(os.environ, MGMT_BUNDLE=str(first))  # never reached: no bundle is needed
    argv = [sys.executable, "-m", "mgmt", "run", "--tmp-prefix"]
    argv += ["--remote", str(first), "--remote", str(second)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [f"mgmt: error: {said}"]
    assert done.stdout == ""  # no connection, no summary


def test_examples_name_their_hosts():
    from remote_helpers import EXAMPLES

    a, b = (read_remote(EXAMPLES / f"remote2{x}.yaml") for x in "ab")
    assert a.name != b.name and a.user == b.user == "root"


def test_a_graphs_sudo_and_python_keys_reach_its_host_and_win_over_the_flags(tmp_path):
    from mgmt.remote.orchestration.initiator import become_user
    from mgmt.settings import Settings

    graph = tmp_path / "g.yaml"
    graph.write_text("graph: g\nremote: alice@web1\nsudo: deploy\npython: /opt/py/bin/python3\n")
    spec = read_remote(graph)
    assert (spec.user, spec.sudo, spec.python) == ("alice", "deploy", "/opt/py/bin/python3")
    flags = Settings(sudo=True, sudo_user="ops")
    assert become_user(spec, flags) == "deploy"
    plain = HostSpec(target="web1", graph=graph)
    assert become_user(plain, Settings()) is None
    assert become_user(plain, flags) == "ops"
    assert become_user(plain, Settings(sudo=True)) == "root"
    assert become_user(plain, Settings(sudo_user="ops")) == "ops"  # --sudo-user implies --sudo
    refusing = HostSpec(target="web1", graph=graph, sudo=False)
    assert become_user(refusing, flags) is None
    assert become_user(HostSpec(target="web1", graph=graph, sudo=True), flags) == "ops"
