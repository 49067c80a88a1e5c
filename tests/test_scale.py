"""A long book under a flaky provider, and the API concurrency cap independent of --cores."""

from __future__ import annotations

from bookgen.money.usage import TOKEN_FIELDS
from bookgen.simulator import Simulator
from tests.book import Book
from tests.loopback import LoopbackSimulator

TRANSIENT = [
    "http_429",
    "http_500",
    "http_503",
    "drop",
    "eof",
    "error_chunk",
    "insufficient_system_resource",
    "finish_length",
]


def small_sections(n: int, words: int = 80) -> list[dict]:
    return [
        {"title": f"Chapter {i}", "key_points": [f"point {i}"], "words": words}
        for i in range(1, n + 1)
    ]


def test_hundred_sections_with_ten_percent_faults_reconcile_with_the_bill(tmp_path):
    faults = [
        {"kind": kind, "rate": 0.0125, "rate_mode": "hash", "retry_after": 0.01}
        if kind == "http_429"
        else {"kind": kind, "rate": 0.0125, "rate_mode": "hash"}
        for kind in TRANSIENT
    ]
    book = Book(
        tmp_path / "long",
        {
            "provider": "simulator",
            "sections": small_sections(100),
            "retry": {"max_attempts": 10, "initial_delay_s": 0.01, "max_delay_s": 0.05},
            "simulator": {"seed": 7, "faults": faults},
        },
    )
    proc = book.run("--cores", "8", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(book.sections()) == 100
    report = book.json("output/cost_report.json")
    assert report["totals"]["sections"] == 100
    assert report["totals"]["failed_calls"] > 0, "the fault schedule injected nothing"
    bill = Simulator({}, state_dir=book.path / ".bookgen" / "simulator").ledger_totals()
    for field in TOKEN_FIELDS:
        assert report["totals"][field] == bill[field], field


def _failed_with_429(book: Book) -> int:
    return sum(
        1
        for path in (book.path / ".bookgen" / "calls").glob("*.jsonl")
        for line in path.read_text().splitlines()
        if '"http_status": 429' in line
    )


def test_api_resource_caps_concurrent_requests_below_cores(tmp_path):
    """--cores 6 runs six sections, but --resources api=2 keeps requests within a provider limit
    of two open requests; with api=6 the same provider answers 429."""
    # Each request stays open ~1.5 s, so six sections started together overlap for sure.
    sim_config = {"concurrency_limit": 2, "ttft_s": 1.0, "tokens_per_s": 500}
    key = {"DEEPSEEK_API_KEY": "sk-cap-test"}
    results = {}
    for cap in (2, 6):
        with LoopbackSimulator(tmp_path / f"sim{cap}", sim_config) as sim:
            book = Book(
                tmp_path / f"cap{cap}",
                {
                    "provider": "deepseek",
                    "base_url": sim.base_url,
                    "sections": small_sections(6, words=150),
                    "retry": {"max_attempts": 40, "initial_delay_s": 0.05, "max_delay_s": 0.5},
                },
            )
            proc = book.run("--cores", "6", "--resources", "api=" + str(cap), env=key)
            assert proc.returncode == 0, proc.stderr[-3000:]
            results[cap] = _failed_with_429(book)
    assert results[2] == 0
    assert results[6] > 0
