#!/usr/bin/env python3
"""Verify scores from events: a thin wrapper over redundancy/verify_scores.py."""

import sys

from redundancy.cli.verify_scores import main

if __name__ == "__main__":
    sys.exit(main())
