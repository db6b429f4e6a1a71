"""``python -m validator.node``: the same as the ``validator`` command."""

import sys

from validator.node.cli import main

sys.exit(main())
