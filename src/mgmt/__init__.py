"""mgmt: an event-driven configuration agent that also runs agentless over SSH.

This package stands alone: it is shipped to remote hosts as one shiv file, so it
imports nothing from ``mgmt_pkg`` and keeps its dependencies few (PyYAML and
etcd3gw) and compatible with Python 3.9.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
