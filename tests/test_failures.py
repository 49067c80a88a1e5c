"""Every failure through the real snakemake CLI ends in a named cause and a clean retry: which
errors stop the run, replies that validation rejected, empty replies, unexpected exceptions."""

from __future__ import annotations

from tests.book import FAST, Book


def notes(book: Book) -> list[str]:
    return sorted(p.stem for p in (book.path / ".bookgen" / "failures").glob("*.json"))


def test_rejected_parameters_fail_their_sections_until_omitted_or_renamed(tmp_path):
    """OpenAI's reasoning models reject `temperature` and `max_tokens`: each section fails with
    the provider's message (the run is not stopped); generation.omit/rename make it work."""
    settings = {"formats": [], "simulator": {"reject_params": ["temperature", "max_tokens"]}}
    book = Book(tmp_path / "book", settings)
    proc = book.run("--cores", "2")
    assert proc.returncode != 0
    assert "Unsupported parameter: 'temperature' is not supported with this model" in proc.stderr
    assert "generation.omit" in proc.stderr
    assert not (book.path / ".bookgen" / "halt.json").exists()
    assert notes(book) == [f"section_{i:02d}" for i in range(1, 12)]  # each tried, none halted
    gen = {"omit": ["temperature"], "rename": {"max_tokens": "max_completion_tokens"}}
    book.set_overrides({"provider": "simulator", **FAST, **settings, "generation": gen})
    proc = book.run("--cores", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(book.sections()) == 11 and notes(book) == []
