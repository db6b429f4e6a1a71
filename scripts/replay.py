#!/usr/bin/env python3
"""Apply an input log and print the final state hash: see validator/replay.py."""

from devnet.replay import main

raise SystemExit(main())
