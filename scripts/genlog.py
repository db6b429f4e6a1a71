#!/usr/bin/env python3
"""Write a deterministic, realistic input log: see validator/loggen.py."""

from validator.loggen import main

raise SystemExit(main())
