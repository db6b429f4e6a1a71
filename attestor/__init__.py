"""The per-site attestor daemon: probes, device-signed evidence, durable outbox, publisher, peer
latency measurement, and the local status endpoint."""
