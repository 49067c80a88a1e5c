"""What a fault or defect rule selects: sections, a random rate, a model, a number of times.

The matching itself is ``bookgen.simulator.faults.choose_fault``, shared by both kinds of rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, kw_only=True)
class SelectorRule:
    """A rule's ``kind`` and the request selectors that fault and defect rules share."""

    KINDS: ClassVar[frozenset[str]] = frozenset()
    LABEL: ClassVar[str] = "rule"

    kind: str
    section: int | None = None
    sections: tuple[int, ...] | None = None
    rate: float | None = None
    rate_mode: str | None = None
    times: int | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(
                f"{self.LABEL} kind {self.kind!r} is unknown; use one of {sorted(self.KINDS)}"
            )
        if self.sections is not None and not isinstance(self.sections, tuple):
            object.__setattr__(self, "sections", tuple(self.sections))

    def section_set(self) -> frozenset[int] | None:
        """Sections this rule is restricted to, or None when it is not section-bound."""
        if self.section is not None:
            return frozenset({self.section})
        if self.sections is not None:
            return frozenset(self.sections)
        return None
