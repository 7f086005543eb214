"""The ``tftp:server`` and ``tftp:server:file`` kinds: boot loaders and menus for PXE.

Same shape as :mod:`mgmt.resources.http` (both built on
:mod:`mgmt.resources.served`): the server kind runs the read-only
:class:`mgmt.net.tftp.TftpServer` (uploads always refused) while it is in the
graph; each file kind adds one file (a pxelinux.cfg menu inline, a kernel from
disk) by name.
"""

from typing import Any, Dict

from mgmt.resources.fields import number_field
from mgmt.resources.served import ServedFileRes, ServerRes, file_fields, server_fields

__all__ = ["TftpFileRes", "TftpServerRes"]

# Enough for a lossy link; more only keeps a dead client's transfer thread alive
# (up to retries x timeout seconds).
MAX_TFTP_RETRIES = 100


class TftpServerRes(ServerRes):
    kind = "tftp:server"
    protocol = "tftp"
    default_port = 69
    fields = server_fields(
        default_port,
        root_doc="boot tree served read-only; '' for files only",
        # 1 to 255 s: the range of RFC 2349's timeout option, which clients may ask for too.
        timeout=number_field(1, 255, 1, doc="seconds before a block is sent again"),
        retries=number_field(0, MAX_TFTP_RETRIES, 5, doc="resends before a transfer is given up"),
    )

    def _make_server(self, host: str, port: int, overlay: Dict[str, Any]) -> Any:
        from mgmt.net.tftp import TftpServer

        root = self.params["root"] or None
        return TftpServer(
            root, host, port, overlay, float(self.params["timeout"]), self.params["retries"]
        )


class TftpFileRes(ServedFileRes):
    kind = "tftp:server:file"
    protocol = "tftp"
    server_kind = "tftp:server"
    fields = file_fields("file name as clients ask for it; defaults to the name", per_mac=False)
