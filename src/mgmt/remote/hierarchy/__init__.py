"""Hierarchical remote execution: hosts reached through secondaries (``via:``).

The write-up's design (mgmt's "hierarchial remote execution"): the initiator
connects to each secondary once, copies the bundle and the graphs of the
secondary's subtree there once, and starts the bundle in secondary mode; the
secondary runs the same fan-out (mgmt.remote.orchestration.fanout) to its own
hosts with the system's OpenSSH client, and relays their output, converged
states and results upward.

- :mod:`.hops`: ``via:`` parsed and checked, hosts grouped by first hop;
- :mod:`.plan`: what a secondary is handed (its subtree, host keys, options);
- :mod:`.upstream`: the session that runs a secondary, on the initiator (or
  on a secondary, for depth 3 and more), and the per-leaf results;
- :mod:`.secondary`: the secondary mode of the bundle (runs on a host:
  Python 3.6+, standard library only).
"""
