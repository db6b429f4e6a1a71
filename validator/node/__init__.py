"""The distributed validator node: the etcd input log, the order gateway, the follower that
applies the log to the engine, snapshots on disk, and settlement batches on-chain."""
