"""The REST API and dashboard: read-only views of the registry, the committee and its scores,
site proofs and their verification, settlement batches; every response names its block."""
