"""Core shared by attestor, validator and api: EIP-712, domain ids, contract client, scores."""

__version__ = "0.1.0"
