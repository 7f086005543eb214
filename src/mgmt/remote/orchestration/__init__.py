"""Orchestration: the run itself, on top of transport and protocol.

:mod:`.initiator` builds a run from Settings and :mod:`.context` what its
sessions share; :mod:`.fanout` owns its state (sessions, converged states,
stop); :mod:`.session` is one host's life, :mod:`.bundlecopy` its copy of the
bundle and :mod:`.agentstart` the moment its agent starts; :mod:`.etcd` the
endpoint tunnels lead to; :mod:`.graphwatch` notices saved graphs;
:mod:`.bundlefile` finds the agent bundle; :mod:`.results` the summary.

Detached clusters: :mod:`.cluster` is the third endpoint (the cluster's own etcd
on the hosts, with :mod:`.cluster_tls` between its members); :mod:`.detach`
starts a cluster and hands it over, :mod:`.attach` takes it back,
:mod:`.control` is ``mgmt status`` and ``mgmt stop``, :mod:`.follow` shows the
agents' logs live.
"""
