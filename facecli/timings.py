"""Where a command's time went, stage by stage (``--verbose``): read, decode, detect, crop, embed.

Stages run in several worker threads at once, so each stage's seconds are summed over the workers and may add
up to more than the wall-clock time; the summary says both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimes:
    """Seconds and calls per stage, added to from any thread."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - begin)

    def add(self, name: str, seconds: float, calls: int = 1) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds
            self.calls[name] = self.calls.get(name, 0) + calls

    def summary(self) -> str:
        """One line: each stage's seconds (its calls), in the order first seen, and the wall-clock time."""
        with self._lock:
            parts = [f"{name} {s:.3f} s ({self.calls[name]}x)" for name, s in self.seconds.items()]
        wall = time.perf_counter() - self.started
        return f"timings: {', '.join(parts) or 'no stage ran'}; wall {wall:.3f} s (stages summed over workers)"
