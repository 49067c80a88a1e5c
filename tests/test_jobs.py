"""bookgen.jobs: what the rules' run: blocks call (their runs are in the pipeline tests)."""

from __future__ import annotations

import threading

from bookgen.jobs import release_exit


class Scheduler:
    """Stands in for Snakemake's scheduler, which starts this timer on every scheduling pass."""

    def _schedule_reevalutation(self, delay: float) -> threading.Timer:
        timer = threading.Timer(delay, lambda: None)
        timer.start()
        return timer


def test_release_exit_cancels_only_snakemakes_rescheduling_timers():
    leftover = Scheduler()._schedule_reevalutation(60)
    other = threading.Timer(60, lambda: None)
    other.start()
    try:
        release_exit()
        leftover.join(5)
        assert not leftover.is_alive(), "the interpreter would wait up to a minute for it"
        assert other.is_alive(), "a timer that is not Snakemake's was cancelled"
    finally:
        leftover.cancel()
        other.cancel()
