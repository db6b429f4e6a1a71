"""``python -m attestor`` is the ``attestor`` console script."""

import sys

from attestor.cli import main

sys.exit(main())
