"""The ``tftp:server`` and ``tftp:server:file`` kinds: boot loaders and menus for PXE.

Same shape as :mod:`mgmt.resources.http` (both built on
:mod:`mgmt.resources.served`): the server kind runs the read-only
:class:`mgmt.net.tftp.TftpServer` (uploads always refused) while it is in the
graph; each file kind adds one file (a pxelinux.cfg menu inline, a kernel from
disk) by name.
"""

from typing import Any, Dict

from mgmt.resources.base import Field
from mgmt.resources.served import ServedFileRes, ServerRes, file_fields, server_fields

__all__ = ["TftpFileRes", "TftpServerRes"]


class TftpServerRes(ServerRes):
    kind = "tftp:server"
    protocol = "tftp"
    default_port = 69
    fields = server_fields(
        default_port,
        root_doc="boot tree served read-only; '' for files only",
        timeout=Field(int, default=1, doc="seconds before a block is sent again"),
        retries=Field(int, default=5, doc="resends before a transfer is given up"),
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
