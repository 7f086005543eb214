"""The read-only TFTP server with real clients (tftp-hpa, atftp, curl).

tftp-hpa exits 0 even when the server answers with an error, so every test
checks the bytes that arrived, never a client's exit code alone.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Tuple

import pytest
from provision_support import ServeProcess, script_process

from mgmt.net.content import Content
from mgmt.net.tftp import TftpServer
from mgmt.net.tftp_wire import ACK, DATA, ERROR, OACK, RRQ
from support import require_tools

# 512-byte blocks: 70 000 blocks cross the 16-bit block-number wrap at 65 536.
WRAP_SIZE = 512 * 70_000 + 123


@pytest.fixture(scope="module")
def boot_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tftpboot")
    (root / "pxelinux.cfg").mkdir()
    (root / "pxelinux.0").write_bytes(os.urandom(42_000))
    (root / "exact.bin").write_bytes(os.urandom(512 * 4))  # needs a final empty block
    (root / "empty.cfg").write_bytes(b"")  # one empty block
    (root / "wrap.bin").write_bytes(os.urandom(WRAP_SIZE))
    (root / "pxelinux.cfg" / "default").write_bytes(b"default linux\r\nlabel linux\n")
    (root.parent / "secret").write_text("not for you\n")
    return root


@pytest.fixture(scope="module")
def tftp_port(boot_tree):
    with ServeProcess(str(boot_tree), "--bind", "127.0.0.1", "--no-http", "--tftp",
                      "--tftp-port", "0") as server:  # fmt: skip
        yield server.tftp_port
        server.stop()


def run(*command: str) -> subprocess.CompletedProcess:
    require_tools(command[0])
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", ["pxelinux.0", "exact.bin", "pxelinux.cfg/default"])
def test_tftp_hpa_gets_exact_bytes(boot_tree, tftp_port, tmp_path, name):
    local = tmp_path / "got"
    run("tftp", "127.0.0.1", str(tftp_port), "-m", "binary", "-c", "get", name, str(local))
    assert local.read_bytes() == (boot_tree / name).read_bytes()


@pytest.mark.parametrize("window", ["1", "4"])
def test_atftp_gets_an_empty_file_and_exact_blocks(boot_tree, tftp_port, tmp_path, window):
    for name in ("empty.cfg", "exact.bin"):
        local = tmp_path / name
        result = run("atftp", "--option", "tsize", "--option", f"windowsize {window}", "-g",
                     "-r", name, "-l", str(local), "127.0.0.1", str(tftp_port))  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert local.read_bytes() == (boot_tree / name).read_bytes()


def test_atftp_with_block_size_option(boot_tree, tftp_port, tmp_path):
    local = tmp_path / "got"
    result = run("atftp", "--option", "blksize 1468", "--option", "tsize", "-g",
                 "-r", "pxelinux.0", "-l", str(local), "127.0.0.1", str(tftp_port))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert local.read_bytes() == (boot_tree / "pxelinux.0").read_bytes()


def test_curl_across_the_block_number_wrap(boot_tree, tftp_port, tmp_path):
    local = tmp_path / "got"
    result = run("curl", "-sS", "--tftp-blksize", "512", "-o", str(local),
                 f"tftp://127.0.0.1:{tftp_port}/wrap.bin")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert local.stat().st_size == WRAP_SIZE
    assert local.read_bytes() == (boot_tree / "wrap.bin").read_bytes()


def test_the_ready_line_gives_a_url_a_client_can_use_on_ipv6(boot_tree, tmp_path):
    """On an IPv6 address it said tftp://:::PORT/, which no client takes."""
    local = tmp_path / "got"
    with ServeProcess(str(boot_tree), "--bind", "::1", "--no-http", "--tftp",
                      "--tftp-port", "0") as server:  # fmt: skip
        url = server.urls[0]
        result = run("curl", "-sS", "-o", str(local), url + "pxelinux.0")
        server.stop()
    assert result.returncode == 0, f"{url}: {result.stderr}"
    assert local.read_bytes() == (boot_tree / "pxelinux.0").read_bytes()
    assert url == f"tftp://[::1]:{server.tftp_port}/"


def test_atftp_with_a_window_across_the_block_number_wrap(boot_tree, tftp_port, tmp_path):
    local = tmp_path / "got"
    result = run("atftp", "--trace", "--option", "windowsize 16", "--option", "blksize 512",
                 "-g", "-r", "wrap.bin", "-l", str(local), "127.0.0.1", str(tftp_port))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    trace = result.stdout + result.stderr
    assert "received OACK <windowsize: 16" in trace  # RFC 7440 was agreed, not ignored
    assert "sent ACK <block: 16>" in trace and "sent ACK <block: 1>" not in trace
    assert local.read_bytes() == (boot_tree / "wrap.bin").read_bytes()


def test_a_window_resumes_after_the_last_block_acked():
    # Blocks 1-4 of a window of 4 arrive, the client ACKs 2 (3 was lost): the
    # server sends 3 and 4 again, then the final short block.
    content = os.urandom(512 * 4 + 100)
    with (
        TftpServer(None, "127.0.0.1", 0, {"/f": Content.from_bytes(content)}) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        client.sendto(_rrq("f") + b"windowsize\0004\0", server.address)
        opcode, head, rest, sender = _reply(client)
        assert opcode == OACK and struct.pack("!H", head) + rest == b"windowsize\x004\x00"
        client.sendto(struct.pack("!HH", ACK, 0), sender)
        first = [_reply(client)[:3] for _ in range(4)]
        assert [(op, n) for op, n, _d in first] == [(DATA, 1), (DATA, 2), (DATA, 3), (DATA, 4)]
        client.sendto(struct.pack("!HH", ACK, 2), sender)
        again = [_reply(client)[:3] for _ in range(3)]
        assert [(op, n) for op, n, _d in again] == [(DATA, 3), (DATA, 4), (DATA, 5)]
        client.sendto(struct.pack("!HH", ACK, 5), sender)
        received = b"".join(d for _op, _n, d in first[:2] + again)
        assert received == content


def test_a_window_holds_at_most_a_mebibyte():
    with (
        TftpServer(None, "127.0.0.1", 0, {"/f": Content.from_bytes(b"x")}) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        client.sendto(_rrq("f") + b"blksize\x0065464\x00windowsize\x0064\x00", server.address)
        opcode, head, rest, sender = _reply(client)
        options = (struct.pack("!H", head) + rest).split(b"\x00")
        assert opcode == OACK
        assert dict(zip(options[::2], options[1::2])) == {
            b"blksize": b"65464",
            b"windowsize": b"16",  # 16 x 65464 bytes fit in 1 MiB
        }
        client.sendto(struct.pack("!HH", ERROR, 0) + b"done\x00", sender)


def test_netascii_mode_round_trips(boot_tree, tftp_port, tmp_path):
    local = tmp_path / "got"
    run("tftp", "127.0.0.1", str(tftp_port), "-m", "ascii", "-c", "get", "pxelinux.cfg/default",
        str(local))  # fmt: skip
    assert local.read_bytes() == (boot_tree / "pxelinux.cfg" / "default").read_bytes()


def test_uploads_are_refused(boot_tree, tftp_port, tmp_path):
    upload = tmp_path / "evil"
    upload.write_bytes(b"overwrite\n")
    result = run("tftp", "127.0.0.1", str(tftp_port), "-m", "binary", "-c", "put", str(upload),
                 "pxelinux.0")  # fmt: skip
    assert "Error code 2" in result.stdout + result.stderr
    atftp = run("atftp", "-p", "-l", str(upload), "-r", "new-file", "127.0.0.1", str(tftp_port))
    assert atftp.returncode != 0
    assert not (boot_tree / "new-file").exists()
    assert (boot_tree / "pxelinux.0").stat().st_size == 42_000


@pytest.mark.parametrize("name", ["../secret", "/../secret", "pxelinux.cfg/../../secret",
                                  "..\\secret", "pxelinux.cfg\\..\\..\\secret"])  # fmt: skip
def test_no_escape_from_the_tree(tftp_port, tmp_path, name):
    local = tmp_path / "got"
    result = run("atftp", "-g", "-r", name, "-l", str(local), "127.0.0.1", str(tftp_port))
    assert result.returncode != 0
    assert not local.exists() or local.read_bytes() == b""


def test_missing_file_is_an_error_not_an_empty_file(tftp_port, tmp_path):
    local = tmp_path / "got"
    result = run("curl", "-sS", "-o", str(local), f"tftp://127.0.0.1:{tftp_port}/nope")
    assert result.returncode == 68  # curl: "file not found on TFTP server"
    assert not local.exists()


@pytest.mark.parametrize("length", [300, 2000])
def test_a_name_too_long_gets_an_error_not_silence(tftp_port, length):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)  # the answer is immediate; a timeout is the bug
        client.sendto(_rrq("a" * length), ("127.0.0.1", tftp_port))
        opcode, code, message, _sender = _reply(client)
    assert (opcode, code, message) == (ERROR, 1, b"file name too long\0")


def test_backslashes_separate_folders(boot_tree, tftp_port):
    # As Windows boot loaders write them; the overlay already read them so.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(_rrq("pxelinux.cfg\\default"), ("127.0.0.1", tftp_port))
        opcode, block, data, sender = _reply(client)
        client.sendto(struct.pack("!HH", ACK, 1), sender)
    assert (opcode, block) == (DATA, 1)
    assert data == (boot_tree / "pxelinux.cfg" / "default").read_bytes()


# A latin-1 byte that str.isdigit() takes for a digit and int() does not, and
# more digits than int() takes since Python 3.11; each once stopped the server.
SUPERSCRIPT_TWO, DIGITS_5000 = b"\xb2", b"9" * 5000
# (option, value) -> the OACK it gets (a huge size is the largest allowed), or None.
ODD_OPTIONS = {
    (b"blksize", SUPERSCRIPT_TWO): None,
    (b"timeout", SUPERSCRIPT_TWO): None,
    (b"windowsize", SUPERSCRIPT_TWO): None,
    (b"blksize", DIGITS_5000): b"blksize\x0065464\x00",
    (b"timeout", DIGITS_5000): None,  # over 255 seconds
    (b"windowsize", DIGITS_5000): b"windowsize\x0064\x00",
}


@pytest.mark.parametrize(("option", "value"), list(ODD_OPTIONS),
                         ids=[f"{o.decode()}-{len(v)}" for o, v in ODD_OPTIONS])  # fmt: skip
def test_option_values_that_are_not_plain_numbers_do_not_stop_the_server(option, value):
    overlay = {"/f": Content.from_bytes(b"inline bytes")}
    with (
        TftpServer(None, "127.0.0.1", 0, overlay) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        client.sendto(_rrq("f") + option + b"\0" + value + b"\0", server.address)
        opcode, number, data, sender = _reply(client)
        oack = ODD_OPTIONS[option, value]
        if oack is not None:
            assert (opcode, struct.pack("!H", number) + data) == (OACK, oack)
            client.sendto(struct.pack("!HH", ACK, 0), sender)
            opcode, number, data, sender = _reply(client)
        assert (opcode, number, data) == (DATA, 1, b"inline bytes")
        client.sendto(struct.pack("!HH", ACK, 1), sender)
        # and the next client is served too
        client.sendto(_rrq("f"), server.address)
        opcode, number, data, sender = _reply(client)
        assert (opcode, number, data) == (DATA, 1, b"inline bytes")
        client.sendto(struct.pack("!HH", ACK, 1), sender)


def test_inline_overlay_and_server_stays_up_after_it(tmp_path):
    # tftpy 0.8.7's server thread dies after serving an in-memory file; ours must not.
    require_tools("curl")
    overlay = {"/pxelinux.cfg/default": Content.from_bytes(b"inline menu\n")}
    with TftpServer(None, "127.0.0.1", 0, overlay) as server:
        port = server.address[1]
        for _ in range(3):
            got = run("curl", "-sS", f"tftp://127.0.0.1:{port}/pxelinux.cfg/default")
            assert got.stdout == "inline menu\n"


def _rrq(name: str) -> bytes:
    return struct.pack("!H", RRQ) + name.encode() + b"\0octet\0"


def _reply(sock: socket.socket) -> Tuple[int, int, bytes, Tuple[str, int]]:
    """(opcode, block or error code, payload, sender) of the next packet."""
    packet, sender = sock.recvfrom(65536)
    opcode, number = struct.unpack("!HH", packet[:4])
    return opcode, number, packet[4:], sender


# The server alone in a process whose file-descriptor limit the test can exhaust.
_FD_STARVED_SERVER = """
import os, resource, sys
from mgmt.log import setup
from mgmt.net.content import Content
from mgmt.net.tftp import TftpServer
setup(1)
server = TftpServer(None, "127.0.0.1", 0, {"/inline": Content.from_bytes(b"inline bytes")})
server.start()
print(server.address[1], flush=True)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
sys.stdin.readline()
lowest_free = os.dup(0)
os.close(lowest_free)
# No new socket or file; not 0, which would make poll() (socket timeouts) fail too.
resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
print("starved", flush=True)
sys.stdin.readline()
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
print("fed", flush=True)
sys.stdin.read()
server.stop()
"""


def test_a_request_that_fails_with_an_os_error_does_not_stop_the_server(tmp_path):
    log_path = tmp_path / "server.log"
    with script_process(_FD_STARVED_SERVER, log=log_path) as server:
        port = int(server.stdout.readline())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(5)
            server.stdin.write(b"starve\n")
            server.stdin.flush()
            assert server.stdout.readline() == b"starved\n"
            client.sendto(_rrq("inline"), ("127.0.0.1", port))  # EMFILE on the transfer's socket
            assert _reply(client)[0] == ERROR
            server.stdin.write(b"feed\n")
            server.stdin.flush()
            assert server.stdout.readline() == b"fed\n"
            client.sendto(_rrq("inline"), ("127.0.0.1", port))
            opcode, block, data, sender = _reply(client)
            assert (opcode, block, data) == (DATA, 1, b"inline bytes")
            client.sendto(struct.pack("!HH", ACK, 1), sender)
    log = log_path.read_text()
    assert "cannot start sending 'inline'" in log and "Traceback" not in log


def test_transfers_beyond_the_cap_are_refused_until_one_ends():
    overlay = {"/inline": Content.from_bytes(b"inline bytes")}
    with (
        TftpServer(None, "127.0.0.1", 0, overlay, max_transfers=1) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second,
    ):
        for sock in (first, second):
            sock.settimeout(5)
        first.sendto(_rrq("inline"), server.address)
        opcode, block, _data, sender = _reply(first)  # not ACKed yet: the transfer stays open
        assert (opcode, block) == (DATA, 1)
        second.sendto(_rrq("inline"), server.address)
        opcode, code, message, _sender = _reply(second)
        assert (opcode, code) == (ERROR, 0) and b"busy" in message
        first.sendto(struct.pack("!HH", ACK, 1), sender)  # the first transfer ends
        deadline = time.monotonic() + 5
        while True:
            second.sendto(_rrq("inline"), server.address)
            opcode, block, data, sender = _reply(second)
            if opcode == DATA or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert (opcode, block, data) == (DATA, 1, b"inline bytes")
        second.sendto(struct.pack("!HH", ACK, 1), sender)


class _NoThreadLeft(threading.Thread):
    """What threading.Thread does at the host's thread limit (pids.max, ulimit -u)."""

    def start(self) -> None:
        raise RuntimeError("can't start new thread")


def test_a_transfer_without_a_thread_is_refused_and_closes_what_it_opened(boot_tree, monkeypatch):
    from mgmt.net import tftp

    with (
        TftpServer(boot_tree, "127.0.0.1", 0) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        open_before = set(os.listdir("/proc/self/fd"))
        monkeypatch.setattr(tftp.threading, "Thread", _NoThreadLeft)
        client.sendto(_rrq("pxelinux.cfg/default"), server.address)
        opcode, code, message, _sender = _reply(client)
        assert (opcode, code, message) == (ERROR, 0, b"server cannot start the transfer\0")
        assert set(os.listdir("/proc/self/fd")) == open_before  # the file and its socket
        monkeypatch.undo()
        client.sendto(_rrq("pxelinux.cfg/default"), server.address)  # still serving
        opcode, block, _data, sender = _reply(client)
        client.sendto(struct.pack("!HH", ACK, 1), sender)
    assert (opcode, block) == (DATA, 1)


@pytest.mark.parametrize(
    "packet",
    [struct.pack("!HH", ERROR, 4) + b"unexpected opcode 5\0", struct.pack("!HH", ACK, 1),
     struct.pack("!HH", DATA, 1) + b"x", struct.pack("!H", OACK) + b"a\0b\0", b"\0", b""],
    ids=["error", "ack", "data", "oack", "one byte", "empty"],
)  # fmt: skip
def test_what_is_no_request_is_dropped_unanswered(packet):
    """Answering an ERROR (or a stray ACK whose source may be forged) lets two
    servers bounce errors at each other forever (CVE-2024-2169)."""
    overlay = {"/f": Content.from_bytes(b"after")}
    with (
        TftpServer(None, "127.0.0.1", 0, overlay) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        client.sendto(packet, server.address)
        client.sendto(_rrq("f"), server.address)  # the first answer is the request's
        opcode, block, data, sender = _reply(client)
        assert (opcode, block, data) == (DATA, 1, b"after")
        client.sendto(struct.pack("!HH", ACK, 1), sender)


def test_duplicate_acks_do_not_put_the_resend_off():
    """A client that re-ACKs block 1 every 0.3 s while block 2 was lost gets block 2
    again one timeout (1 s) after it was sent, not never."""
    content = os.urandom(512 + 10)
    with (
        TftpServer(None, "127.0.0.1", 0, {"/f": Content.from_bytes(content)}) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(5)
        client.sendto(_rrq("f"), server.address)
        opcode, block, _data, sender = _reply(client)
        assert (opcode, block) == (DATA, 1)
        client.sendto(struct.pack("!HH", ACK, 1), sender)
        assert _reply(client)[:2] == (DATA, 2)  # taken as lost
        sent = time.monotonic()
        client.settimeout(0.3)
        while True:
            client.sendto(struct.pack("!HH", ACK, 1), sender)  # a duplicate, again and again
            try:
                opcode, block, data, _sender = _reply(client)
                break
            except socket.timeout:
                assert time.monotonic() - sent < 4, "block 2 was never sent again"
        assert (opcode, block, data) == (DATA, 2, content[512:])
        client.sendto(struct.pack("!HH", ACK, 2), sender)


def test_a_port_in_use_is_refused_not_shared():
    with TftpServer(None, "127.0.0.1", 0, {}) as server:
        with pytest.raises(OSError) as caught:
            TftpServer(None, "127.0.0.1", server.address[1], {})
        assert caught.value.errno == 98  # EADDRINUSE


# Names as the bytes a client sends: UTF-8, and bytes that are no UTF-8 at all.
RAW_NAMES = [b"caf\xc3\xa9.cfg", b"na\xffme", b"pxe\xc3\xa9/caf\xc3\xa9"]


@pytest.mark.parametrize("raw", RAW_NAMES, ids=["utf8", "not-utf8", "utf8-folder"])
def test_a_name_that_is_not_ascii_reaches_the_file_of_those_bytes(tmp_path, raw):
    root = tmp_path / "root"
    path = os.path.join(os.fsencode(root), raw)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(b"that very file\n")
    reply = _first_reply(TftpServer(root, "127.0.0.1", 0, {}), _rrq_bytes(raw))
    assert reply == (DATA, 1, b"that very file\n")


def test_a_non_ascii_name_in_the_overlay_is_found():
    overlay = {"/pxelinux.cfg/café": Content.from_bytes(b"inline\n")}
    reply = _first_reply(TftpServer(None, "127.0.0.1", 0, overlay), _rrq("pxelinux.cfg/café"))
    assert reply == (DATA, 1, b"inline\n")


@pytest.mark.parametrize("raw", [b"caf\xc3\xa9/../../secret", b"\xff/../../secret"])
def test_a_non_ascii_name_still_cannot_leave_the_tree(tmp_path, raw):
    root = tmp_path / "root"
    (root / "café").mkdir(parents=True)
    os.mkdir(os.path.join(os.fsencode(root), b"\xff"))
    (tmp_path / "secret").write_text("not for you\n")
    reply = _first_reply(TftpServer(root, "127.0.0.1", 0, {}), _rrq_bytes(raw))
    assert reply == (ERROR, 2, b"outside the served tree\0")


def _rrq_bytes(raw: bytes) -> bytes:
    return struct.pack("!H", RRQ) + raw + b"\0octet\0"


def _first_reply(server: TftpServer, request: bytes) -> Tuple[int, int, bytes]:
    """(opcode, block or error code, payload) of the server's answer to ``request``;
    a first DATA block is ACKed, ending a one-block transfer."""
    with server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(request, server.address)
        opcode, number, payload, sender = _reply(client)
        if opcode == DATA:
            client.sendto(struct.pack("!HH", ACK, number), sender)
    return opcode, number, payload
