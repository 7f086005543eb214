"""TFTP on the wire: RFC 1350's packets, and the options of RFC 2347-2349 and 7440.

What a request says and what the server answers, apart from the transfers
and the server (:mod:`mgmt.net.tftp`): opcodes and error codes, a read or
write request taken apart, an error packet, the netascii reading of a file,
and the options the server accepts with the values it will use.
"""

import os
import struct
from typing import BinaryIO, Dict, Optional, Tuple

__all__ = ["Netascii", "RequestError", "error_packet", "negotiate", "parse_request"]

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
# Error codes (RFC 1350 §5, RFC 2347).
NOT_DEFINED, NOT_FOUND, ACCESS_VIOLATION, ILLEGAL_OPERATION, OPTION_REFUSED = 0, 1, 2, 4, 8

DEFAULT_BLKSIZE = 512
MAX_BLKSIZE = 65464  # RFC 2348's upper bound
# RFC 7440 allows 65535 blocks in flight; a few dozen already fill a LAN, and
# each block of the window is kept for resending: at most 64 blocks and 1 MiB
# per transfer (128 transfers at once).
MAX_WINDOWSIZE = 64
MAX_WINDOW_BYTES = 1 << 20


class RequestError(Exception):
    """A request we answer with a TFTP ERROR packet."""

    def __init__(self, code: int, message: str):
        self.code = code
        super().__init__(message)


def parse_request(packet: bytes) -> Optional[Tuple[int, str, str, Dict[str, str]]]:
    """(opcode, filename, mode, options) of an RRQ/WRQ, options keys lower-cased;
    None for any other packet, which is dropped unanswered: an ERROR is never
    answered (RFC 1350), and answering stray DATA or ACKs (their source may be
    forged) lets two servers bounce errors at each other forever (CVE-2024-2169)."""
    opcode = struct.unpack("!H", packet[:2])[0] if len(packet) >= 2 else None
    if opcode not in (RRQ, WRQ):
        return None
    if len(packet) < 4:
        raise RequestError(ILLEGAL_OPERATION, "short packet")
    fields = packet[2:].split(b"\0")
    if len(fields) < 3 or fields[-1] != b"":
        raise RequestError(ILLEGAL_OPERATION, "malformed request")
    fields = fields[:-1]
    # The name in the file system's own decoding (surrogateescape for bytes it cannot
    # decode): opening it gives back the very bytes the client sent, so a UTF-8 name
    # (café.cfg) or any other bytes reach the file of that name. latin-1 here turned
    # c3 a9 into c3 83 c2 a9 on the way to the disk. Mode and options are ASCII words.
    filename, mode = os.fsdecode(fields[0]), fields[1].decode("latin-1").lower()
    rest = [f.decode("latin-1") for f in fields[2:]]
    options = {rest[i].lower(): rest[i + 1] for i in range(0, len(rest) - 1, 2)}
    return opcode, filename, mode, options


def error_packet(code: int, message: str) -> bytes:
    return struct.pack("!HH", ERROR, code) + message.encode("latin-1", "replace") + b"\0"


class Netascii:
    """Reads a file as netascii: LF -> CR LF, CR -> CR NUL (RFC 764)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._buffer = b""

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = self._raw.read(max(size, 8192))
            if not chunk:
                break
            self._buffer += chunk.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        self._raw.close()


def _number(text: Optional[str]) -> Optional[int]:
    """An option's decimal value, None if it is not one.

    Not str.isdigit() and int(): byte 0xB2 (a superscript 2 in latin-1) is a digit
    to isdigit() but not to int(), and Python 3.11+ int() refuses more than 4300
    digits; either ValueError ended the server's loop. A long number is just large.
    """
    if not text or text.strip("0123456789"):
        return None
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= 9 else 10**9


def negotiate(options: Dict[str, str], size: Optional[int]) -> Dict[str, str]:
    """The options we accept, with the values we will use (RFC 2347-2349)."""
    accepted: Dict[str, str] = {}
    blksize = _number(options.get("blksize"))
    if blksize is not None and blksize >= 8:
        accepted["blksize"] = str(min(blksize, MAX_BLKSIZE))
    timeout = _number(options.get("timeout"))
    if timeout is not None and 1 <= timeout <= 255:
        accepted["timeout"] = str(timeout)
    if "tsize" in options and size is not None:
        accepted["tsize"] = str(size)
    windowsize = _number(options.get("windowsize"))
    if windowsize is not None and windowsize >= 1:
        blksize = int(accepted.get("blksize", DEFAULT_BLKSIZE))
        most = max(1, min(MAX_WINDOWSIZE, MAX_WINDOW_BYTES // blksize))
        accepted["windowsize"] = str(min(windowsize, most))
    return accepted
