"""EtcdClient: seeds, failover, and clear errors instead of hangs."""

from __future__ import annotations

import socket
import threading

import pytest

from mgmt.errors import InputError, WorldError
from mgmt.world.client import EtcdClient, normalize_url

# Generous: only there so that a regression shows up as a failure, not a stuck suite.
HANG_GUARD = 30.0


def call_in_thread(function):
    """Run ``function`` in a thread; return ('ok'|'error'|'hung', value)."""
    outcome = {}

    def run():
        try:
            outcome["ok"] = function()
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    if thread.is_alive():
        return "hung", None
    return next(iter(outcome.items()))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_put_and_range_round_trip(client):
    client.put("/_mgmt/test/a", '{"x": 1}')
    client.put("/_mgmt/test/b", "é")
    revision, items = client.range("/_mgmt/test/", prefix=True)
    assert [(key, value) for key, value, _ in items] == [
        ("/_mgmt/test/a", '{"x": 1}'),
        ("/_mgmt/test/b", "é"),
    ]
    assert revision >= max(rev for _, _, rev in items)


def test_unreachable_seeds_fail_naming_every_url():
    urls = [f"http://127.0.0.1:{closed_port()}", f"127.0.0.1:{closed_port()}"]
    kind, error = call_in_thread(lambda: EtcdClient(urls).check())
    assert kind == "error", kind
    assert isinstance(error, WorldError)
    assert "cannot reach etcd" in str(error)
    assert urls[0] in str(error) and f"http://{urls[1]}" in str(error)
    assert "connection refused" in str(error)


def test_silent_seed_times_out_instead_of_hanging():
    """A peer that accepts TCP but never answers (a wedged tunnel) is an error."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = EtcdClient([url], connect_timeout=0.5, read_timeout=0.5)
        kind, error = call_in_thread(client.check)
    assert kind == "error", kind
    assert isinstance(error, WorldError)
    assert url in str(error) and "timed out" in str(error)


def test_dead_seed_fails_over_to_a_live_one(etcd, client):
    dead = f"http://127.0.0.1:{closed_port()}"
    failover = EtcdClient([dead, etcd.client_url])
    failover.put("/_mgmt/test/k", "v")
    assert failover.url == etcd.client_url
    assert client.range("/_mgmt/test/k")[1][0][1] == "v"


def test_a_move_to_another_seed_is_said_once_naming_the_one_left(etcd, client, mgmt_log):
    """A first seed that hangs held the agent's start up for the read timeout,
    without a word, even at -v: the move to the next seed is said, once."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        hung = f"http://127.0.0.1:{silent.getsockname()[1]}"
        failover = EtcdClient([hung, etcd.client_url], connect_timeout=0.5, read_timeout=0.5)
        failover.put("/_mgmt/test/k", "v")
        failover.put("/_mgmt/test/k", "w")
        assert failover.range("/_mgmt/test/k")[1][0][1] == "w"
        failover.close()
    said = mgmt_log.getvalue().splitlines()
    moves = [line for line in said if "; using " in line]
    assert len(moves) == 1, said
    assert f"cannot reach etcd at {hung} (timed out" in moves[0]
    assert moves[0].endswith(f"; using {etcd.client_url}")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:2379", "http://127.0.0.1:2379"),
        ("http://127.0.0.1:2379/", "http://127.0.0.1:2379"),
        ("https://etcd.example:2379", "https://etcd.example:2379"),
        ("http://[::1]:2379", "http://[::1]:2379"),
        (" etcd-1.example:2379 ", "http://etcd-1.example:2379"),
    ],
)
def test_urls_are_normalized(given, expected):
    assert normalize_url(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://h:1", "http://h", "http://:2379", "h:port",
        # What used to pass (and fail only when called) or to escape as a ValueError.
        "http://[::1", "http://", "http://127.0.0.1:1/path?q=1", "http://127.0.0.1:1?q",
        "http://127.0.0.1:0", "http://a b:1", "http://user@h:1", "",
    ],
)  # fmt: skip
def test_bad_urls_are_input_errors(bad):
    with pytest.raises(InputError, match="bad etcd URL"):
        normalize_url(bad)


def test_a_bad_url_is_shown_as_given_and_without_its_password():
    with pytest.raises(InputError) as caught:
        normalize_url("http://")
    assert "'http://'" in str(caught.value)  # not mangled into 'http://http:'
    with pytest.raises(InputError) as caught:
        normalize_url("http://user:hunter2@127.0.0.1:1")
    assert "hunter2" not in str(caught.value) and "'http://user:***@127.0.0.1:1'" in str(
        caught.value
    )


def test_a_server_that_is_not_etcd_is_named(tmp_path):
    """A seed pointing at some other web server gives one readable line, not its HTML."""
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(WorldError) as error:
            EtcdClient([url]).check()
    finally:
        server.shutdown()
        server.server_close()
    assert str(error.value).startswith(f"{url} does not look like etcd")
    assert "\n" not in str(error.value) and "<html" not in str(error.value)


def test_a_server_that_is_not_http_is_named():
    """A port that answers with something else than HTTP (an SSH server, say)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"

        def answer():
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                conn.recv(65536)

        threading.Thread(target=answer, daemon=True).start()
        kind, error = call_in_thread(EtcdClient([url]).check)
    assert kind == "error", kind
    assert str(error) == f"cannot reach etcd at {url} (not an HTTP answer)"


@pytest.mark.parametrize(
    ("scheme", "hint"),
    [
        ("http", "connection closed without an answer; is it an https:// etcd?"),
        ("https", "no TLS answer; is it a plain http:// etcd?"),
    ],
)
def test_a_server_that_resets_the_connection_gets_the_same_hint(scheme, hint):
    """A TLS etcd given as http:// closes the connection or resets it, as the
    timing falls (its read of our request unfinished): a reset was shown as
    "[Errno 104] Connection reset by peer", without the hint a close gets."""
    import struct

    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"{scheme}://127.0.0.1:{server.getsockname()[1]}"

        def reset():
            conn, _ = server.accept()
            conn.recv(1)  # the request (or the TLS hello) is there, unread: then a reset
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

        threading.Thread(target=reset, daemon=True).start()
        kind, error = call_in_thread(EtcdClient([url]).check)
    assert kind == "error", kind
    assert str(error) == f"cannot reach etcd at {url} ({hint})"


def test_etcd_refusing_a_call_is_named_with_url_and_call(etcd, client):
    with pytest.raises(WorldError) as error:
        client.call("kv/range", {"key": "not base64!"})
    message = str(error.value)
    assert message.startswith(f"etcd at {etcd.client_url}: kv/range: ")
    assert "\n" not in message


def test_delete_removes_a_key_or_a_prefix(client):
    for key in ("/_mgmt/d/a", "/_mgmt/d/b", "/_mgmt/dx"):
        client.put(key, "v")
    assert client.delete("/_mgmt/d/a") == 1
    assert client.delete("/_mgmt/d/a") == 0
    assert client.delete("/_mgmt/d/", prefix=True) == 1
    assert [key for key, _, _ in client.range("/_mgmt/", prefix=True)[1]] == ["/_mgmt/dx"]


@pytest.fixture
def tls_etcd(tmp_path):
    """An etcd serving clients over TLS with a certificate of a CA nobody trusts: its port."""
    import subprocess

    from mgmt.remote.orchestration.cluster_tls import member_certificates
    from mgmt.world.server import find_etcd, free_port
    from support import require_tools
    from support.polling import wait_for

    require_tools("etcd")
    tls = member_certificates("test", {"m": "127.0.0.1"})["m"]
    (tmp_path / "cert.pem").write_text(tls.cert)
    (tmp_path / "key.pem").write_text(tls.key)
    port, peer = free_port(), f"http://127.0.0.1:{free_port()}"
    command = [
        find_etcd(), "--name=m", f"--data-dir={tmp_path / 'data'}",
        f"--listen-client-urls=https://127.0.0.1:{port}",
        f"--advertise-client-urls=https://127.0.0.1:{port}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=m={peer}", f"--cert-file={tmp_path / 'cert.pem'}",
        f"--key-file={tmp_path / 'key.pem'}",
    ]  # fmt: skip
    with open(tmp_path / "etcd.log", "wb") as log_file:
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: b"ready to serve" in (tmp_path / "etcd.log").read_bytes(), 20)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_wrong_scheme_or_an_untrusted_certificate_is_said_with_a_hint(tls_etcd, etcd):
    # They said "connection closed without an answer", "[SSL:
    # UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol
    # (_ssl.c:1006)" or "[SSL: CERTIFICATE_VERIFY_FAILED] ..." and nothing of
    # how to give etcd's CA.
    untrusted = f"https://127.0.0.1:{tls_etcd}"
    with pytest.raises(WorldError) as error:
        EtcdClient([untrusted], connect_timeout=5, read_timeout=5).check()
    assert str(error.value).startswith(f"cannot reach etcd at {untrusted} (its TLS certificate")
    assert str(error.value).endswith("; give its CA with SSL_CERT_FILE=CA.pem)")

    plain = f"http://127.0.0.1:{tls_etcd}"
    with pytest.raises(WorldError) as error:
        EtcdClient([plain], connect_timeout=5, read_timeout=5).check()
    assert str(error.value) == (
        f"cannot reach etcd at {plain} "
        "(connection closed without an answer; is it an https:// etcd?)"
    )

    wrong = etcd.client_url.replace("http:", "https:")
    with pytest.raises(WorldError) as error:
        EtcdClient([wrong], connect_timeout=5, read_timeout=5).check()
    assert str(error.value) == (
        f"cannot reach etcd at {wrong} (no TLS answer; is it a plain http:// etcd?)"
    )
