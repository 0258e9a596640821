"""The one way tests wait for something to become true."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.005) -> float:
    """Call `check` until it returns something true; the seconds that took. Fails the
    test, naming `what`, once `timeout` seconds have passed. `check` may raise to give
    up at once (a server process that exited)."""
    started = time.monotonic()
    while not check():
        waited = time.monotonic() - started
        assert waited < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)
    return time.monotonic() - started
