#!/usr/bin/env python3
"""Deploy the registry: a thin wrapper over `redundancy-deploy` (see redundancy/deploy.py)."""

import sys

from redundancy.deploy import main

if __name__ == "__main__":
    sys.exit(main())
