"""Progress reporting: ``progress(phase, fraction)`` callbacks, throttled and clamped."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float], None]

PHASES = ("reading", "sorting", "discovering")


class Throttled:
    """Wraps a progress callback: fractions clamped to [0, 1], monotonic per phase, and a call
    only when the fraction moved by ``min_step`` (a job may write each call to Redis or SQL)."""

    def __init__(self, callback: Progress | None, min_step: float = 0.02) -> None:
        self.callback = callback
        self.min_step = min_step
        self.phase: str | None = None
        self.last = -1.0

    def __call__(self, phase: str, fraction: float) -> None:
        if self.callback is None:
            return
        fraction = min(1.0, max(0.0, float(fraction)))
        if phase != self.phase:
            self.phase, self.last = phase, -1.0
        if fraction <= self.last:
            return
        if fraction in (0.0, 1.0) or fraction - self.last >= self.min_step:
            self.last = fraction
            self.callback(phase, fraction)


def throttled(callback: Progress | None) -> Throttled:
    """Wrap a callback once (wrapping a Throttled returns it unchanged)."""
    if isinstance(callback, Throttled):
        return callback
    return Throttled(callback)
