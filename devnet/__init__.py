"""The development harness: local chains, the example world, the demo devnet, and launchers for
attestors, etcd clusters, validator nodes and the venue; the input-log generator and the order
flow clients the drill and benchmarks share.

It may start every part of the project; no deployable part (``redundancy``, ``attestor``,
``validator``, ``api``) imports it.
"""
