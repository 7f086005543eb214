"""mgmt: an event-driven configuration agent that also runs agentless over SSH.

This package stands alone: it is shipped to remote hosts as one shiv file, so it
imports nothing from ``mgmt_pkg`` and nothing but the standard library and PyYAML
(etcd is spoken with http.client), and must run on Python 3.6 to 3.13.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
