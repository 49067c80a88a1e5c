"""Why a section could not be written: the errors every step of writing one may raise."""

from __future__ import annotations


class SectionFailed(Exception):
    """The section could not be written; the message says why and what to do.

    ``fresh``: the next run writes it afresh, replaying none of its cached replies (its failure
    note says so)."""

    fresh = False


class ReplyRejected(SectionFailed):
    """A reply was rejected (empty, invalid JSON, a section failing quality control): replaying
    it would fail the same way, so the next run asks again."""

    fresh = True
