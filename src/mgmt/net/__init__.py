"""Protocol servers shared by the agent's resources and ``mgmt-pkg serve``.

Standard library only (they ship inside the agent bundle): an HTTP/1.1 file
server with RFC 9110 Range support and a read-only TFTP server.
"""
