"""The local address a UDP request came to, and replies sent from that address.

A server bound to every address (0.0.0.0 or ::, as ``tftp:server`` is by
default) leaves the source of its replies to the kernel, which picks it by
route: on a host with several addresses (a second one on the interface, a
keepalived VIP) a request to one is answered from another, and PXE firmware,
which takes packets only from the address it asked, times out. As tftpd-hpa
and dnsmasq do, the server asks the kernel where each request went
(IP_PKTINFO, IPV6_PKTINFO) and answers from there.
"""

import socket
import struct
from typing import Optional, Tuple

__all__ = ["Local", "enable_destination", "receive", "send_from"]

# Linux's values; Python names IP_PKTINFO only since 3.12 (and the agent runs on 3.6).
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
_IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
# struct in_pktinfo {int ifindex; in_addr spec_dst, addr} and in6_pktinfo {in6_addr; int}.
_IN_PKTINFO, _IN6_PKTINFO = struct.Struct("=i4s4s"), struct.Struct("=16sI")
_ANCILLARY = socket.CMSG_SPACE(_IN6_PKTINFO.size)

# Where a request arrived, as ``bind`` takes it: (host, 0) or (host, 0, 0, scope id).
Local = Tuple


def enable_destination(sock: socket.socket) -> None:
    """Have ``sock`` (bound to a wildcard address) report each datagram's destination."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)


def receive(sock: socket.socket, size: int) -> Tuple[bytes, tuple, Optional[Local]]:
    """(datagram, sender, where it arrived or None if the kernel did not say)."""
    packet, ancillary, _flags, sender = sock.recvmsg(size, _ANCILLARY)
    local: Optional[Local] = None
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == _IP_PKTINFO:
            # spec_dst: the destination, or for a broadcast the interface's own address.
            _index, spec_dst, _dst = _IN_PKTINFO.unpack(data[: _IN_PKTINFO.size])
            local = (socket.inet_ntop(socket.AF_INET, spec_dst), 0)
        elif level == socket.IPPROTO_IPV6 and kind == _IPV6_PKTINFO:
            address, index = _IN6_PKTINFO.unpack(data[: _IN6_PKTINFO.size])
            # The scope id matters for a link-local address (fe80::) only; kept for it.
            local = (socket.inet_ntop(socket.AF_INET6, address), 0, 0, index)
    return packet, sender, local


def send_from(sock: socket.socket, packet: bytes, client: tuple, local: Optional[Local]) -> None:
    """``sock.sendto(packet, client)``, with ``local`` as the source address when given."""
    if local is None:
        sock.sendto(packet, client)
        return
    if sock.family == socket.AF_INET6:
        # A v4-mapped address too: Linux sends a dual-stack socket's IPv4 reply from it.
        info = _IN6_PKTINFO.pack(socket.inet_pton(socket.AF_INET6, local[0]), local[3])
        ancillary = [(socket.IPPROTO_IPV6, _IPV6_PKTINFO, info)]
    else:
        info = _IN_PKTINFO.pack(0, socket.inet_pton(socket.AF_INET, local[0]), bytes(4))
        ancillary = [(socket.IPPROTO_IP, _IP_PKTINFO, info)]
    sock.sendmsg([packet], ancillary, 0, client)
