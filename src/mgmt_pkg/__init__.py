"""mgmt-pkg: packaging and delivery for mgmt.

Phony and real RPMs, COPR submissions, the shiv bundle of the agent, and
provisioning (kickstarts, an HTTP server with Range support, TFTP). It may
import :mod:`mgmt`; :mod:`mgmt` never imports it.
"""

from mgmt import __version__

__all__ = ["__version__"]
