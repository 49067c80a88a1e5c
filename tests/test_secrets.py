"""The API key is written nowhere, whatever the provider says: a gateway that quotes the key in
its 401 (or in a mid-stream error) and a key pasted into the config by mistake."""

from __future__ import annotations

import pytest

from bookgen.config import ConfigError, check_api_key_env
from bookgen.provider.redact import REDACTED, looks_like_key, redact
from tests.book import Book
from tests.loopback import LoopbackSimulator

SECRET = "sk-bookgen-ECHOED-4b8e2f71d09a"
# What some gateways answer: the key quoted back in full.
ECHO = "Incorrect API key provided: {api_key}. You can find your API key in your account."


def assert_key_nowhere(book: Book, secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text
    roots = [book.path / root for root in ("output", ".bookgen", ".snakemake")]
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def test_redact_removes_the_key_and_anything_key_shaped():
    text = f"Incorrect API key provided: {SECRET}; sent Bearer abc.def-123 and sk-proj-****xyz9"
    out = redact(text, [SECRET])
    assert SECRET not in out and "abc.def-123" not in out and "sk-proj" not in out
    assert out.startswith(f"Incorrect API key provided: {REDACTED}")
    assert redact("a short value none", ["none"]) == "a short value none"  # not a secret
    assert redact(None, [SECRET]) is None


def test_a_key_quoted_by_the_provider_is_written_nowhere(tmp_path):
    faults = [
        {"kind": "error_chunk", "section": 1, "times": 1, "message": f"upstream: {ECHO}"},
        {"kind": "http_401", "section": 2, "message": ECHO},
    ]
    with LoopbackSimulator(tmp_path / "sim", {"faults": faults}) as sim:
        book = Book(tmp_path / "book", {"provider": "deepseek", "base_url": sim.base_url})
        env = {"DEEPSEEK_API_KEY": SECRET}
        first = book.run("output/section_01.md", "--cores", "1", env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        proc = book.run("--cores", "2", env=env)
    assert proc.returncode != 0
    assert "API key was rejected" in proc.stderr and f"provided: {REDACTED}" in proc.stderr
    assert (book.path / ".bookgen" / "halt.json").exists()
    assert_key_nowhere(book, SECRET, first.stdout, first.stderr, proc.stdout, proc.stderr)
    # Section 01's mid-stream error quoted the key too: retried, and on record without it.
    calls = book.json("output/usage/section_01.json")["calls"]
    assert f"upstream: Incorrect API key provided: {REDACTED}" in calls[0]["error"]


@pytest.mark.parametrize("pasted", [SECRET, "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"])
def test_a_key_pasted_into_api_key_env_is_named_not_echoed(tmp_path, pasted):
    with pytest.raises(ConfigError, match="api_key_env") as info:
        check_api_key_env({"api_key_env": pasted})
    assert pasted not in str(info.value)
    check_api_key_env({"api_key_env": "OPENROUTER_API_KEY"})
    assert looks_like_key(pasted) and not looks_like_key("DEEPSEEK_API_KEY")

    book = Book(tmp_path / "book")
    proc = book.run("--dry-run", "--config", f"api_key_env={pasted}")
    assert proc.returncode != 0
    assert "config error in api_key_env" in proc.stderr
    assert pasted not in proc.stdout + proc.stderr
    estimate = book.bookgen("estimate", "--config", f"api_key_env={pasted}")
    assert estimate.returncode != 0 and pasted not in estimate.stdout + estimate.stderr
