"""The world: what an agent shares with other hosts, kept in etcd.

:mod:`mgmt.world.api` is the narrow interface the engine uses; the etcd
implementation, the embedded server launcher and the client live beside it.
"""
