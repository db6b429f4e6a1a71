#!/usr/bin/env python3
"""Deploy the registry: a thin wrapper over `redundancy-deploy` (see redundancy/cli/deploy.py)."""

import sys

from redundancy.cli.deploy import main

if __name__ == "__main__":
    sys.exit(main())
