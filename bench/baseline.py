"""The seed's design, as a baseline: N worker threads, each writing one section at a time.

Same prompts (``bookgen.writing.prompts``), same client (``bookgen.provider.client``), same
endpoint as the book; no build graph, no journal, no cache, no report. A long section
(``planning.min_words``) is planned first and then written in parts one after another, each seeing
the text so far, as the seed did (the plan and the parts as ``bookgen.writing.planning`` makes and
groups them). Run it the way the original tool ran:

    python -m bench.baseline --book DIR --workers 2

``DIR`` is a book directory (``config/config.yaml`` plus an optional ``overrides.yaml``, as
``tests.book.Book`` lays out); sections land in ``DIR/baseline/section_NN.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from bookgen.config import Section, resolve_prompt_paths, sections_from_config, template_text
from bookgen.provider.client import make_client, stream_call
from bookgen.writing.planning import check_plan, group_parts, is_planned, joined, normalise_plan
from bookgen.writing.prompts import part_messages, plan_messages, planned_task, section_messages
from bookgen.writing.structured import JSON_MODE, parse_reply


def load_book_config(book: Path) -> dict[str, Any]:
    """``config/config.yaml`` with ``overrides.yaml`` merged over it (nested keys merged)."""
    config = yaml.safe_load((book / "config" / "config.yaml").read_text(encoding="utf-8"))
    overrides = book / "overrides.yaml"
    if overrides.exists():
        _merge(config, yaml.safe_load(overrides.read_text(encoding="utf-8")) or {})
    config.setdefault("simulator", {})
    resolve_prompt_paths(config, book)
    return config


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def generate(book: Path, workers: int) -> float:
    """Write every section of the book with ``workers`` threads; returns the seconds taken."""
    t0 = time.monotonic()
    config = load_book_config(book)
    sections = sections_from_config(config)
    system, task = template_text(config, "system"), template_text(config, "section")
    gen = config["generation"]
    client = make_client(config, book / ".bookgen")
    out_dir = book / "baseline"
    out_dir.mkdir(parents=True, exist_ok=True)

    words_per_call = int(config["planning"]["words_per_call"])

    def call(section: Section, messages: list[dict[str, str]], **options: Any) -> str:
        request = {
            "model": config["model"],
            "messages": messages,
            "temperature": gen["temperature"],
            "max_tokens": gen["max_tokens"],
            **options,
        }
        out = stream_call(client, request)
        if out.error or out.finish_reason != "stop":
            raise RuntimeError(f"section {section.id}: {out.error or out.finish_reason}")
        return out.text.strip()

    def write(section: Section) -> None:
        base = section_messages(system, task, config["book"], sections, section)
        if is_planned(config, section):  # the plan, then its parts one after another
            data = parse_reply(
                call(section, plan_messages(base, section), **JSON_MODE), "plan.schema.yaml"
            )
            check_plan(data)
            plan = normalise_plan(data, section)
            prefix, groups = planned_task(base, plan), group_parts(plan, words_per_call)
            texts: list[str] = []
            for number, group in enumerate(groups, 1):
                so_far = joined(texts)
                ask = part_messages(prefix, section.title, so_far, number, len(groups), group)
                texts.append(call(section, ask))
            text = joined(texts)
        else:
            text = call(section, base)
        (out_dir / f"section_{section.id}.md").write_text(text + "\n")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(write, s) for s in sections]:
            future.result()
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("--book", type=Path, required=True, help="book directory")
    parser.add_argument("--workers", type=int, default=2, help="sections written at once")
    args = parser.parse_args(argv)
    seconds = generate(args.book, args.workers)
    print(f"baseline: {args.workers} workers, {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
