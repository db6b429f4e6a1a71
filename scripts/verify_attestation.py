#!/usr/bin/env python3
"""Verify site proofs: a thin wrapper over redundancy/verify_attestation.py."""

import sys

from redundancy.cli.verify_attestation import main

if __name__ == "__main__":
    sys.exit(main())
