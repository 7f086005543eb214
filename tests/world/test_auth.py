"""Per-run etcd credentials: strangers are refused, the run's user gets /_mgmt/ only."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from tcpproxy import TcpProxy

from mgmt.errors import WorldError
from mgmt.settings import EtcdCredentials
from mgmt.world.client import EtcdClient, encode
from mgmt.world.server import EmbeddedEtcd
from mgmt.world.watch import PrefixWatch
from support import require_tools


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """An embedded etcd with auth on, and the run's credentials."""
    require_tools("etcd")
    with EmbeddedEtcd(tmp_path_factory.mktemp("etcd") / "etcd") as server:
        credentials = server.enable_auth()
        yield server, credentials


def raw_range(url: str, key: str, token: str = "") -> dict:
    """A plain HTTP call, as any local user on the far end of a tunnel could make."""
    request = urllib.request.Request(
        f"{url}/v3/kv/range",
        data=json.dumps({"key": encode(key)}).encode(),
        headers={"Authorization": token} if token else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def invalidate_tokens(server, credentials) -> None:
    """etcd drops a user's tokens when the password changes, as when they expire."""
    root = EtcdClient([server.client_url], server.root_credentials)
    same = {"name": credentials.username, "password": credentials.password}
    root.call("auth/user/changepw", same)


def test_credentials_are_random_and_per_run(secured):
    server, credentials = secured
    assert credentials.username.startswith("mgmt-run-")
    assert len(credentials.password) >= 24
    assert server.root_credentials.username == "root"
    assert server.root_credentials.password != credentials.password


def test_unauthenticated_client_is_refused(secured):
    server, _ = secured
    with pytest.raises(WorldError, match="requires authentication"):
        EtcdClient([server.client_url]).check()
    answer = raw_range(server.client_url, "/_mgmt/converged/a")
    assert "kvs" not in answer
    assert "user name is empty" in answer["error"]


def test_wrong_password_is_refused(secured):
    server, credentials = secured
    wrong = EtcdCredentials(credentials.username, credentials.password + "x")
    with pytest.raises(WorldError, match="authentication failed"):
        EtcdClient([server.client_url], wrong).check()


def test_run_user_reads_and_writes_mgmt_keys_only(secured):
    server, credentials = secured
    client = EtcdClient([server.client_url], credentials)
    client.put("/_mgmt/converged/a", "true")
    assert client.range("/_mgmt/converged/a")[1][0][1] == "true"
    with pytest.raises(WorldError, match="permission denied"):
        client.put("/elsewhere", "x")
    with pytest.raises(WorldError, match="permission denied"):
        client.range("/elsewhere")


def test_expired_token_is_renewed(secured):
    """Changing the user's password makes etcd drop its tokens, as expiry does."""
    server, credentials = secured
    client = EtcdClient([server.client_url], credentials)
    client.check()
    first = client.token
    invalidate_tokens(server, credentials)
    assert "invalid auth token" in raw_range(server.client_url, "/_mgmt/x", first)["error"]
    client.put("/_mgmt/renewed", "yes")
    assert client.token != first
    assert client.range("/_mgmt/renewed")[1][0][1] == "yes"


def test_watch_works_with_auth(secured):
    server, credentials = secured
    client = EtcdClient([server.client_url], credentials)
    changed = threading.Event()
    watch = PrefixWatch(client, "/_mgmt/exported/", changed.set)
    try:
        client.put("/_mgmt/exported/a/resources/file/f", "{}")
        assert changed.wait(10)
    finally:
        watch.cancel()


def test_watch_resumes_with_a_new_token_after_the_old_one_died(secured):
    server, credentials = secured
    proxy = TcpProxy("127.0.0.1", int(server.client_url.rsplit(":", 1)[1]))
    try:
        client = EtcdClient([proxy.url], credentials)
        changed = threading.Event()
        watch = PrefixWatch(client, "/_mgmt/exported/", changed.set)
        assert watch.connected.wait(10)
        first = client.token
        proxy.refusing.set()
        proxy.drop()
        invalidate_tokens(server, credentials)
        root = EtcdClient([server.client_url], server.root_credentials)
        root.put("/_mgmt/exported/b/resources/file/while-away", "{}")
        proxy.refusing.clear()
        assert changed.wait(10)
        assert client.token != first
        watch.cancel()
    finally:
        proxy.close()


def _run_with_auth(server, tmp_path, line: str):
    import subprocess
    import sys

    graph = tmp_path / "g.yaml"
    graph.write_text(
        "graph: g\nresources:\n  file:\n"
        f"  - {{name: '@@shared', path: {tmp_path / 'shared'}, content: 'x'}}\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "mgmt", "run", "--file", str(graph), "--seeds", server.client_url,
         "--etcd-auth-stdin", "--hostname", "authed", "--tmp-prefix", "--converged-timeout", "0"],
        input=line, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_mgmt_run_logs_in_with_the_credentials_on_stdin(secured, tmp_path):
    server, credentials = secured
    done = _run_with_auth(server, tmp_path, f"{credentials.username}:{credentials.password}\n")
    assert done.returncode == 0, done.stderr
    root = EtcdClient([server.client_url], server.root_credentials)
    try:
        _, items = root.range("/_mgmt/exported/authed/", prefix=True)
    finally:
        root.close()
    assert len(items) == 1  # the export, written as the run's user

    wrong = _run_with_auth(server, tmp_path, f"{credentials.username}:not-the-password\n")
    assert wrong.returncode == 1
    assert f"authentication failed for user '{credentials.username}'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_mgmt_run_as_a_user_who_may_only_read_stops_at_once_naming_it(secured, tmp_path):
    # Such a user passed the start's check (a read), then every export and
    # converged state failed, retried each second, and the run converged and
    # exited 0 with nothing published.
    server, _ = secured
    root = EtcdClient([server.client_url], server.root_credentials)
    try:
        root.call("auth/role/add", {"name": "reader"})
        read = {"permType": "READ", "key": encode("/_mgmt/"), "range_end": encode("/_mgmt0")}
        root.call("auth/role/grant", {"name": "reader", "perm": read})
        root.call("auth/user/add", {"name": "reader", "password": "pw"})
        root.call("auth/user/grant", {"user": "reader", "role": "reader"})
        before = root.range("/", count_only=True)[0]
        done = _run_with_auth(server, tmp_path, "reader:pw\n")
        after = root.range("/", count_only=True)[0]
    finally:
        root.call("auth/user/delete", {"name": "reader"})
        root.call("auth/role/delete", {"role": "reader"})
        root.close()
    assert done.returncode == 1, done.stderr
    assert (
        f"mgmt: error: etcd at {server.client_url}: permission denied for kv/txn as user "
        "'reader': this host needs to read /_mgmt/ and to write /_mgmt/exported/authed/, "
        "/_mgmt/converged/authed, /_mgmt/failed/authed and /_mgmt/hosts/authed\n"
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert after == before  # nothing written
