"""Orchestration: the run itself, on top of transport and protocol.

:mod:`.initiator` builds a run from Settings; :mod:`.fanout` owns its state
(sessions, converged states, stop); :mod:`.session` is one host's life;
:mod:`.etcd` the endpoint tunnels lead to; :mod:`.graphwatch` notices saved
graphs; :mod:`.bundlefile` finds the agent bundle; :mod:`.results` the summary.
"""
