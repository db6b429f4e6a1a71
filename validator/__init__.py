"""Validator node: deterministic options matching engine, settlement ledger, node process."""
