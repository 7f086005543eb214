"""A read-only TFTP server: RFC 1350 with the blksize, tsize, timeout and windowsize options.

Why not tftpy: 0.8.7's server thread dies after a transfer whose dyn_file_func
returns io.BytesIO (tftpy #155), which is exactly how a graph's inline files
would be served, and it accepts uploads unless told otherwise. A read-only
server is small enough to own (no upload path at all), keeps the agent bundle
free of a new dependency, and runs on Python 3.9's standard library.

Each read request gets its own thread and UDP socket (its own transfer ID, as
RFC 1350 asks); write requests are answered with "access violation".
"""

import contextlib
import socket
import struct
import threading
import time
from pathlib import Path
from typing import BinaryIO, Dict, List, Optional, Tuple, Union

from mgmt.log import get_logger
from mgmt.net.background import BackgroundServer
from mgmt.net.content import (
    MacSelector,
    NotServable,
    Overlay,
    OverlayEntry,
    Source,
    open_source,
    resolve_under,
    url_key,
)
from mgmt.net.tftp_wire import (
    ACCESS_VIOLATION,
    ACK,
    DATA,
    DEFAULT_BLKSIZE,
    ERROR,
    ILLEGAL_OPERATION,
    NOT_DEFINED,
    NOT_FOUND,
    OACK,
    WRQ,
    Netascii,
    RequestError,
    error_packet,
    negotiate,
    parse_request,
)
from mgmt.net.udp_local import Local, enable_destination, receive, send_from

__all__ = ["TftpServer"]

log = get_logger("tftp")

# Transfers at once; each holds a thread, a socket and an open file. A PXE boot
# storm of a rack fits; a flood of requests cannot exhaust the process's fds.
MAX_TRANSFERS = 128
_MAX_PACKET = 65536
_STOP_SLICE = 0.2  # how quickly the server's loop and its transfers notice stop()


# RFC 1350's codes for a file we cannot send; any other failure is "not defined".
_CODES = {
    NotServable.MISSING: NOT_FOUND,
    NotServable.FORBIDDEN: ACCESS_VIOLATION,
    NotServable.FAILED: NOT_DEFINED,
}


_CANNOT_START = error_packet(NOT_DEFINED, "server cannot start the transfer")


class _Transfer:
    """One read request, served from its own socket until the last ACK."""

    def __init__(
        self,
        server: "TftpServer",
        client: Tuple[str, int],
        reader,
        options: Dict[str, str],
        local: Optional[Local] = None,
    ):
        self.server = server
        self.client = client
        self.reader = reader
        self.options = options
        self.blksize = int(options.get("blksize", DEFAULT_BLKSIZE))
        self.windowsize = int(options.get("windowsize", 1))
        self.timeout = float(options.get("timeout", server.timeout))
        self.sock = socket.socket(server.family, socket.SOCK_DGRAM)
        try:
            # From the address the request came to (see mgmt.net.udp_local).
            self.sock.bind(local or (server.address[0], 0))
            self.sock.connect(client)  # the kernel drops datagrams from any other TID
            self.sock.settimeout(self.timeout)
        except OSError:
            self.sock.close()
            raise

    def run(self, name: str) -> None:
        sent = 0
        try:
            if self.options:
                oack = b"".join(f"{k}\0{v}\0".encode() for k, v in self.options.items())
                if self._exchange([(0, struct.pack("!H", OACK) + oack)]) is None:
                    return
            # RFC 7440: up to windowsize blocks in flight (1 without the option, as
            # in RFC 1350); the client ACKs the last block it got in order, and
            # the window moves on from there, resending what was not acked.
            window: List[Tuple[int, bytes]] = []
            block, last_read = 1, False
            while True:
                while not last_read and len(window) < self.windowsize:
                    try:
                        data = self.reader.read(self.blksize)
                    except OSError as error:  # EIO of a failing disk, ESTALE on NFS
                        log.error("%s: cannot read %r: %s", self.client[0], name, error)
                        with contextlib.suppress(OSError):  # tell the client, not its timeout
                            self.sock.send(error_packet(NOT_DEFINED, "cannot read the file"))
                        return
                    window.append((block & 0xFFFF, struct.pack("!HH", DATA, block & 0xFFFF) + data))
                    sent += len(data)
                    last_read = len(data) < self.blksize
                    block += 1
                acked = self._exchange(window)
                if acked is None:
                    return
                window = window[acked + 1 :]
                if last_read and not window:
                    log.info("%s: sent %r (%d bytes)", self.client[0], name, sent)
                    return
        finally:
            self.close()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def _exchange(self, window: List[Tuple[int, bytes]]) -> Optional[int]:
        """Send the window, and resend it on timeout, until the client ACKs one of
        its blocks; the index of that block, or None if the transfer is over."""
        numbers = [number for number, _packet in window]
        for _attempt in range(self.server.retries + 1):
            if self.server.stopping.is_set():
                return None
            # Resend one timeout after the send, whatever came meanwhile: a packet
            # ignored below (a duplicate ACK) must not put the resend off for good.
            deadline = time.monotonic() + self.timeout
            try:
                for _number, packet in window:
                    self.sock.send(packet)
            except OSError as error:  # ICMP port unreachable: the client is gone
                log.debug("%s: transfer ended: %s", self.client[0], error)
                return None
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break  # resend
                if self.server.stopping.is_set():
                    return None
                try:
                    # In slices: a stop is seen at once, also by a transfer whose
                    # client asked for a long timeout (up to 255 s, RFC 2349).
                    self.sock.settimeout(min(left, _STOP_SLICE))
                    reply = self.sock.recv(_MAX_PACKET)
                except socket.timeout:
                    continue  # resent once the deadline has passed
                except OSError as error:  # ICMP port unreachable: the client is gone
                    log.debug("%s: transfer ended: %s", self.client[0], error)
                    return None
                if len(reply) < 4:
                    continue
                opcode, number = struct.unpack("!HH", reply[:4])
                if opcode == ACK and number in numbers:
                    return numbers.index(number)
                if opcode == ERROR:
                    log.debug("%s: client aborted: %r", self.client[0], reply[4:-1])
                    return None
                # A duplicate ACK of an earlier block: never resend on it
                # (the Sorcerer's Apprentice bug); keep waiting for ours.
        log.warning("%s: gave up after %d retries", self.client[0], self.server.retries)
        return None


class TftpServer(BackgroundServer):
    """Serve ``root`` (may be None) and an overlay read-only over TFTP."""

    thread_name = "tftp-server"

    def __init__(
        self,
        root: Optional[Union[str, Path]],
        bind: str = "127.0.0.1",
        port: int = 69,
        overlay: Optional[Overlay] = None,
        timeout: float = 1.0,
        retries: int = 5,
        max_transfers: int = MAX_TRANSFERS,
    ):
        super().__init__()
        self.root = Path(root) if root is not None else None
        self.family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.timeout = timeout
        self.retries = retries
        self.max_transfers = max_transfers
        self._overlay: Dict[str, OverlayEntry] = dict(overlay or {})
        # No SO_REUSEADDR: on UDP it lets a second server share the port and
        # take its requests, where a clear "address in use" is wanted.
        self._sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            self._sock.bind((bind, port))
            if self.address[0] in ("0.0.0.0", "::"):  # replies must leave from each request's own
                enable_destination(self._sock)
        except OSError:
            self._sock.close()
            raise
        self._sock.settimeout(_STOP_SLICE)
        self._transfers: List[threading.Thread] = []

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return host, port

    def set_overlay(self, overlay: Overlay) -> None:
        self._overlay = dict(overlay)

    def _open(self, filename: str) -> Tuple[BinaryIO, int]:
        """A binary reader for ``filename`` and its size; RequestError if refused."""
        # A backslash separates folders, in the tree as in the overlay: Windows boot
        # loaders (WDS, bootmgr) ask for names like boot\x64\wdsnbp.com. A file whose
        # own name holds a backslash cannot be reached, a cost worth one rule for
        # both; and ..\ is then refused like ../ (never "outside" for a mere name).
        relative = filename.replace("\\", "/")
        key = url_key(relative)
        entry = self._overlay.get(key)
        source: Optional[Source]
        in_tree = entry is None
        if entry is not None:
            # TFTP carries no MAC header; pxelinux asks by file name.
            source = entry.default if isinstance(entry, MacSelector) else entry
        elif self.root is None:
            source = None
        else:
            source = resolve_under(self.root, relative)
            if source is None:
                raise RequestError(ACCESS_VIOLATION, "outside the served tree")
        try:
            content, reader = open_source(source, in_tree)  # the transfer thread closes it
        except NotServable as refusal:
            # Not str(refusal): that names the file on the server's disk.
            raise RequestError(_CODES[refusal.kind], refusal.reason.lower()) from None
        return reader, content.size

    def _handle(self, packet: bytes, client: Tuple[str, int], local: Optional[Local]) -> None:
        try:
            request = parse_request(packet)
            if request is None:
                log.debug("%s: dropped a packet that is no request: %r", client[0], packet[:8])
                return
            opcode, filename, mode, requested = request
            if opcode == WRQ:
                raise RequestError(ACCESS_VIOLATION, "read-only server: uploads are refused")
            if mode not in ("octet", "netascii"):
                raise RequestError(ILLEGAL_OPERATION, f"unsupported mode {mode!r}")
            self._transfers = [t for t in self._transfers if t.is_alive()]
            if len(self._transfers) >= self.max_transfers:
                raise RequestError(NOT_DEFINED, "server busy, try again later")
            raw, size = self._open(filename)
        except RequestError as error:
            log.info("%s: refused %r: %s", client[0], packet[2:40], error)
            send_from(self._sock, error_packet(error.code, str(error)), client, local)
            return
        reader = Netascii(raw) if mode == "netascii" else raw
        options = negotiate(requested, size if mode == "octet" else None)
        try:
            transfer = _Transfer(self, client, reader, options, local)
        except OSError as error:  # e.g. EMFILE: no socket for this transfer
            reader.close()
            log.warning("%s: cannot start sending %r: %s", client[0], filename, error)
            send_from(self._sock, _CANNOT_START, client, local)
            return
        thread = threading.Thread(target=transfer.run, args=(filename,), daemon=True)
        try:
            thread.start()
        except RuntimeError as error:  # the host's thread limit: this transfer, not the server
            transfer.close()
            log.warning("%s: cannot start sending %r: %s", client[0], filename, error)
            send_from(self._sock, _CANNOT_START, client, local)
            return
        self._transfers.append(thread)

    def serve_forever(self) -> None:
        log.info("serving %s read-only on %s port %d", self.root or "(files only)", *self.address)
        while not self.stopping.is_set():
            try:
                packet, client, local = receive(self._sock, _MAX_PACKET)
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                raise
            try:
                self._handle(packet, client, local)
            except Exception as error:  # one request must not end the server
                if isinstance(error, OSError):
                    log.warning("%s: request failed: %s", client[0], error)
                else:  # a bug: keep its traceback
                    log.error("%s: request failed: %r", client[0], error, exc_info=True)
                # The client still hears of it rather than waiting out its timeout
                # (unless sending is what failed).
                with contextlib.suppress(OSError):
                    send_from(self._sock, error_packet(NOT_DEFINED, "server error"), client, local)

    def _close(self) -> None:
        for transfer in self._transfers:
            transfer.join(timeout=self.timeout + 1)
        self._sock.close()
