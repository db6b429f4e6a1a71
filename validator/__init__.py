"""The venue's validator: ``validator.engine`` is the pure, deterministic options matching engine
and settlement ledger; ``validator.node`` is the distributed node around it (etcd input log,
gateway, follower, snapshots, settlement batches)."""
