"""Retry policy for transient API errors: exponential backoff with jitter, honouring the
provider's ``retry-after`` at any value (the openai SDK gives up above 120 s), bounded by a
number of attempts and a total wait per section."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


class GiveUp(Exception):
    """No further attempt: the message says why."""


@dataclass
class Backoff:
    """Tracks the attempts and waiting of one section."""

    max_attempts: int = 6
    initial_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_total_wait_s: float = 900.0
    failures: int = 0
    waited_s: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_config(cls, retry: dict[str, Any]) -> Backoff:
        return cls(
            max_attempts=int(retry["max_attempts"]),
            initial_delay_s=float(retry["initial_delay_s"]),
            max_delay_s=float(retry["max_delay_s"]),
            max_total_wait_s=float(retry["max_total_wait_s"]),
        )

    def next_delay(self, error: str, retry_after_s: float | None = None) -> float:
        """Count one failed attempt and return how long to wait, or raise GiveUp."""
        self.failures += 1
        if self.failures >= self.max_attempts:
            raise GiveUp(f"gave up after {self.failures} failed attempts; last error: {error}")
        base = min(self.max_delay_s, self.initial_delay_s * 2 ** (self.failures - 1))
        delay = base * self.rng.uniform(0.5, 1.0)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        if self.waited_s + delay > self.max_total_wait_s:
            asked = f" (the provider asked to wait {retry_after_s:g} s)" if retry_after_s else ""
            raise GiveUp(
                f"gave up after {self.failures} failed attempts: waiting {delay:.1f} s more{asked} "
                f"would exceed retry.max_total_wait_s={self.max_total_wait_s:g} s; "
                f"last error: {error}"
            )
        self.waited_s += delay
        return delay
