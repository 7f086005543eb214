"""``mgmt-pkg serve``: a boot tree over HTTP (with Range) and, optionally, TFTP."""

from __future__ import annotations

import errno
import signal
import socket
from pathlib import Path
from typing import Dict, List, Tuple

import click

from mgmt.net.content import (
    MacSelector,
    NotServable,
    OverlayEntry,
    http_path_problem,
    normalize_mac,
    open_source,
    url_key,
)
from mgmt.net.http_range import MAX_RANGES, MAX_RANGES_LIMIT
from mgmt_pkg.errors import InvalidInput, MgmtPkgError

READY = "serving {root} at {where}"


def parse_extra_files(specs: Tuple[str, ...], per_mac: bool = True) -> Dict[str, OverlayEntry]:
    """``/ks.cfg=FILE`` serves FILE at /ks.cfg; ``/ks.cfg@MAC=FILE`` only to that MAC.

    Several ``@MAC`` entries for one path make a per-host kickstart: anaconda
    started with ``inst.ks.sendmac`` announces its MACs and gets its own file;
    the entry without ``@MAC`` (if any) serves every other host. Only HTTP
    clients announce their MACs: without HTTP (``per_mac`` False) an ``@MAC``
    entry would never reach its host, and is refused.
    """
    plain: Dict[str, Path] = {}
    by_mac: Dict[str, Dict[str, Path]] = {}
    for spec in specs:
        target, equals, source = spec.partition("=")
        url_path, at, mac = target.partition("@")
        if not equals or not url_path.startswith("/") or not source:
            raise InvalidInput(f"--file {spec!r}: expected /URL/PATH[@MAC]=FILE")
        problem = http_path_problem(url_path)
        if problem is not None:
            raise InvalidInput(f"--file {spec!r}: {problem}")
        if at and not mac.strip():  # "@$MAC" with $MAC unset: not a file for every host
            raise InvalidInput(f"--file {spec!r}: no MAC address after @ (drop the @ to serve all)")
        resolved = Path(source).absolute()  # named so in what the server logs
        _check_readable(spec, resolved)
        key = url_key(url_path)
        normalized = normalize_mac(mac) if mac else ""
        if normalized is None:
            hint = _pxelinux_hint(mac)
            raise InvalidInput(f"--file {spec!r}: {mac!r} is not a MAC address{hint}")
        if normalized and not per_mac:
            pxelinux = "01-" + normalized.replace(":", "-")
            raise InvalidInput(
                f"--file {spec!r}: with --no-http no client says its MAC (only HTTP clients, "
                f"with dracut's inst.ks.sendmac, do); PXELINUX asks for pxelinux.cfg/{pxelinux}"
            )
        table = by_mac.setdefault(key, {}) if normalized else plain
        taken = normalized or key
        if taken in table:  # the last one winning would hide a typo or a clash
            for_mac = f" for MAC {normalized}" if normalized else ""
            raise InvalidInput(f"--file {spec!r}: {key}{for_mac} given twice; give each once")
        table[taken] = resolved
    overlay: Dict[str, OverlayEntry] = dict(plain)
    for key, table in by_mac.items():
        overlay[key] = MacSelector(dict(table), plain.get(key))
    return overlay


def _pxelinux_hint(mac: str) -> str:
    """A hint for PXELINUX's spelling: its config files are named ``01-`` (the
    ARP hardware type of Ethernet) before the MAC, which dracut does not send."""
    rest = mac.strip().lower()
    if rest.startswith("01-") and normalize_mac(rest[3:]) is not None:
        return f" (PXELINUX's 01- is the hardware type: give {rest[3:]})"
    return ""


def _check_readable(spec: str, source: Path) -> None:
    """Open ``source`` once, as the servers will: a file they could not read is
    refused now, not answered with 403 to every host that asks for it."""
    try:
        _content, body = open_source(source)
    except NotServable as refusal:
        if refusal.kind == NotServable.MISSING:
            raise InvalidInput(f"--file {spec!r}: {source} is not a file") from None
        raise InvalidInput(f"--file {spec!r}: cannot read {source}: {refusal.reason}") from None
    body.close()


def _listen(factory, what: str, bind: str, port: int):
    """The server ``factory`` makes, bound; a bind that fails as one line.

    An address that names nothing (not an address, a name that does not
    resolve) or is not this machine's is the user's to fix (exit 2); a port
    taken or not allowed is an operation that failed (exit 1).
    """
    try:
        return factory()
    except socket.gaierror as error:
        raise InvalidInput(f"--bind {bind!r}: not an address ({error.strerror})") from None
    except OSError as error:
        if error.errno == errno.EADDRNOTAVAIL:
            raise InvalidInput(f"--bind {bind!r}: not an address of this machine") from None
        if error.errno == errno.EINVAL:  # e.g. a link-local IPv6 address without its %scope
            raise InvalidInput(f"--bind {bind!r}: cannot listen there ({error.strerror})") from None
        raise MgmtPkgError(
            f"cannot serve {what} on {bind} port {port}: {error.strerror}"
        ) from error


PORT = click.IntRange(0, 65535)


def _bind_address(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """--bind as the socket takes it. An empty value is refused: the socket would
    take it for every address, which an unset $ADDR must not quietly mean."""
    if not value.strip():
        raise InvalidInput("--bind: empty; give an address (0.0.0.0 or :: for every one)")
    if value.startswith("[") and value.endswith("]"):  # [::1], as in a URL
        return value[1:-1]
    return value


@click.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--bind", default="0.0.0.0", show_default=True, callback=_bind_address,
    help="Address to listen on.",
)  # fmt: skip
@click.option(
    "--port", type=PORT, default=8000, show_default=True, help="HTTP port (0: any free port)."
)
@click.option("--no-http", is_flag=True, help="Serve TFTP only.")
@click.option("--tftp", is_flag=True, help="Also serve ROOT read-only over TFTP.")
@click.option(
    "--tftp-port", type=PORT, default=69, show_default=True, help="TFTP port (0: any free port)."
)
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="/PATH[@MAC]=FILE",
    help="Serve FILE at /PATH too (only to the host with MAC when given). Repeatable.",
)
@click.option(
    "--max-ranges",
    type=click.IntRange(0, MAX_RANGES_LIMIT),
    default=MAX_RANGES,
    show_default=True,
    help="More ranges get a 200 (0: ranges off), as http:server's max_ranges.",
)
@click.option("-v", "--verbose", count=True, help="Log every request (-vv: debug).")
def serve(
    root: Path,
    bind: str,
    port: int,
    no_http: bool,
    tftp: bool,
    tftp_port: int,
    files: Tuple[str, ...],
    max_ranges: int,
    verbose: int,
) -> None:
    """Serve ROOT read-only: HTTP with full RFC 9110 Range support, and TFTP with --tftp.

    Built for provisioning: anaconda and dnf fetch RPMs with range requests,
    dracut fetches the kickstart (per host with --file /ks.cfg@MAC=FILE), and
    PXE firmware loads the boot loader over TFTP. Stop with Ctrl-C.
    """
    from mgmt import log
    from mgmt.net.http_server import HttpFileServer
    from mgmt.net.tftp import TftpServer

    if no_http and not tftp:
        raise InvalidInput("nothing to serve: --no-http needs --tftp")
    log.setup(verbose - 1)  # 0: warnings only, -v: each request, -vv: debug
    overlay = parse_extra_files(files, per_mac=not no_http)
    # Before the ready line: whoever waits for it may stop us the moment it comes.
    stop_asked = _stop_on_signal()
    running: List[object] = []
    where: List[str] = []
    if not no_http:
        http = _listen(
            lambda: HttpFileServer(root, bind, port, overlay, max_ranges), "HTTP", bind, port
        )
        running.append(http.start())
        where.append(http.url + "/")
    if tftp:
        server = _listen(
            lambda: TftpServer(root, bind, tftp_port, overlay), "TFTP", bind, tftp_port
        )
        running.append(server.start())
        host, actual = server.address
        host = f"[{host}]" if ":" in host else host  # an IPv6 address, as in the HTTP URL
        where.append(f"tftp://{host}:{actual}/")
    click.echo(READY.format(root=root, where=" and ".join(where)), nl=True)
    with stop_asked.taking_signals():  # one the kernel gives a server's thread too
        stop_asked.wait()
    for server_ in running:
        server_.stop()


def _stop_on_signal():
    """A wake-up that SIGINT and SIGTERM set from now on; both end the servers cleanly."""
    from mgmt.wakeup import Wakeup  # set from a handler, which an Event cannot be

    done = Wakeup()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    return done
