#!/usr/bin/env python3
"""Write a deterministic, realistic input log: see validator/loggen.py."""

from devnet.loggen import main

raise SystemExit(main())
