"""Keep a foreground command running until SIGINT or SIGTERM (the demo, the dev venue)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType


def run_until_signalled(step: Callable[[], bool] = lambda: True, every: float = 0.5) -> None:
    """Call ``step`` every ``every`` seconds until SIGINT or SIGTERM arrives, or ``step`` returns
    False (e.g. a process it watches has exited). Installs handlers for both signals."""
    stop = False

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop:
        time.sleep(every)
        if not stop and not step():
            return
