"""The ``http:server`` and ``http:server:file`` kinds: a provisioning host's web server.

The write-up's idea: a resource whose watch loop *is* a small server, handing
out a kickstart and the install tree. ``http:server`` runs
:class:`mgmt.net.http_server.HttpFileServer` (full Range support, which
anaconda and dnf need) while it is in the graph; each ``http:server:file``
adds one URL to it, from a file on disk (``source``) or inline ``content``
such as a kickstart rendered with ``mgmt-pkg kickstart render``, optionally
only for one ``mac`` (dracut's ``inst.ks.sendmac`` headers pick it).

What they share with the TFTP kinds (the board, starting and restarting the
server, the file fields) is in :mod:`mgmt.resources.served`.
"""

from typing import Any, Dict, Mapping

from mgmt.net.content import http_path_problem
from mgmt.net.http_range import MAX_RANGES, MAX_RANGES_LIMIT
from mgmt.resources.base import FieldError
from mgmt.resources.fields import number_field
from mgmt.resources.served import ServedFileRes, ServerRes, file_fields, server_fields

__all__ = ["HttpFileRes", "HttpServerRes"]


class HttpServerRes(ServerRes):
    kind = "http:server"
    protocol = "http"
    default_port = 80
    fields = server_fields(
        default_port,
        root_doc="directory served read-only; '' for files only",
        # 0 turns ranges off (every request gets a 200); the cap bounds the work
        # and the multipart body one request can ask for.
        max_ranges=number_field(
            0, MAX_RANGES_LIMIT, MAX_RANGES, doc="requests with more ranges get a 200"
        ),
    )

    def _make_server(self, host: str, port: int, overlay: Dict[str, Any]) -> Any:
        from mgmt.net.http_server import HttpFileServer

        root = self.params["root"] or None
        return HttpFileServer(root, host, port, overlay, self.params["max_ranges"])


class HttpFileRes(ServedFileRes):
    kind = "http:server:file"
    protocol = "http"
    server_kind = "http:server"
    fields = file_fields("URL path; defaults to the resource name", per_mac=True)

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        super().validate(params)
        problem = http_path_problem(params["path"] or "")
        if problem is not None:
            raise FieldError("path", problem)
