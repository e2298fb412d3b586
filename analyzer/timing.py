"""Phase timings of an analysis run (the `timings` of the findings document)."""
from __future__ import annotations

import time


class Lap:
    """Records into `timings` the seconds since the previous call, under a name."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings, self.clock = timings, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = round(now - self.clock, 3)
        self.clock = now
