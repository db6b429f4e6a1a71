"""``python -m validator``: the same as the ``validator`` command."""

import sys

from validator.cli import main

sys.exit(main())
