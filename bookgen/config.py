"""The book configuration: checks beyond the JSON schema, the section table, fingerprints."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bookgen import paths
from bookgen.money.pricing import window_bounds
from bookgen.money.usage import load_schema
from bookgen.provider.redact import looks_like_key
from bookgen.validation import explain, first_error

SCHEMA_DIR = Path(__file__).parent / "schemas"
CONFIG_SCHEMA = SCHEMA_DIR / "config.schema.yaml"
OFFLINE_COMMAND = "snakemake --cores 2 --config provider=simulator"


class ConfigError(ValueError):
    """A configuration problem, with a message that says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Section:
    """One section of the book as the user specified it.

    ``id`` is its position (zero-padded): it names the files readers see, in book order
    (``output/section_05.md``). ``key`` is its identity: it names its bookkeeping (journal,
    history, failure note, lock), which therefore follows the section when sections are
    inserted, removed or reordered. The key is ``id-<slug>`` for an entry with an explicit
    ``id:`` (kept through a rename), else ``spec-<digest of its own entry>``.
    """

    id: str
    number: int
    title: str
    key_points: tuple[str, ...]
    words: int
    key: str = ""  # empty: derived from the entry (see above)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.entry_key())

    def entry_key(self) -> str:
        """The key its own entry gives it (``spec-<digest>``), whatever its ``id:``."""
        return f"spec-{_digest(self.spec())}"

    def spec(self) -> dict[str, Any]:
        return {"title": self.title, "key_points": list(self.key_points), "words": self.words}


def validate_config(config: dict[str, Any]) -> None:
    """Check ``config`` against ``schemas/config.schema.yaml`` and fill in its defaults, in place.

    Strings are read as YAML where the schema wants a boolean or a number (``--config`` hands
    ``response_cache=false`` over as ``'false'``). Raises ConfigError with one line: the field's
    path, what is wrong and, for a misspelt key or value, the closest allowed one. A key pasted
    into ``api_key_env`` is rejected first, without being echoed.
    """
    check_api_key_env(config)
    error = first_error(config, load_schema(CONFIG_SCHEMA.name))
    if error is not None:
        where, what = explain(error)
        field = f" in {where}" if where else ""
        raise ConfigError(
            f"config error{field}: {what}. Fix it in your config file or --config "
            f"(the schema: bookgen/schemas/{CONFIG_SCHEMA.name})."
        )


def sections_from_config(config: dict[str, Any]) -> list[Section]:
    """The section table, in book order, with zero-padded ids. Built once per distinct table:
    every job of a run asks for it, and a key is a digest of its entry (about 20 ms for 1,000
    sections, in every job)."""
    entries = tuple(
        (e["title"], tuple(e["key_points"]), e["words"], e.get("id")) for e in config["sections"]
    )
    try:
        return list(_section_table(entries))
    except TypeError:  # an unhashable value (a config not validated yet): build it anyway
        return list(_section_table.__wrapped__(entries))


@functools.lru_cache(maxsize=4)
def _section_table(entries: tuple[tuple[Any, ...], ...]) -> tuple[Section, ...]:
    return tuple(
        Section(
            id=paths.section_id(i, len(entries)),
            number=i,
            title=title.strip(),
            key_points=tuple(k.strip() for k in key_points),
            words=int(words),
            key=f"id-{sid}" if sid else "",
        )
        for i, (title, key_points, words, sid) in enumerate(entries, start=1)
    )


def resolve_prompt_paths(config: dict[str, Any], workflow_dir: str | Path) -> None:
    """Make template paths absolute: relative to the working directory if the file is there,
    else to the workflow's own folder (so ``--directory`` books reuse the shipped templates)."""
    for name, value in config["prompts"].items():
        path = Path(value)
        if not path.is_absolute() and not path.exists():
            candidate = Path(workflow_dir) / path
            if candidate.exists():
                path = candidate
        config["prompts"][name] = str(path.resolve()) if path.exists() else value


ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_api_key_env(config: dict[str, Any]) -> None:
    """Reject an ``api_key_env`` that is not a variable name, without echoing it: it is most
    likely the key itself, pasted by mistake (``validate_config`` runs it first)."""
    value = config.get("api_key_env")
    if not isinstance(value, str) or (ENV_NAME_RE.fullmatch(value) and not looks_like_key(value)):
        return
    looks = "it looks like an API key itself" if looks_like_key(value) else "it is no such name"
    raise ConfigError(
        f"config error in api_key_env: it must be the NAME of the environment variable that "
        f"holds the key, and {looks} (the value is not shown). Put the key in a variable "
        "(export DEEPSEEK_API_KEY=...) and set api_key_env: DEEPSEEK_API_KEY."
    )


def duplicate_title(entries: list[dict[str, Any]]) -> tuple[int, int] | None:
    """``(index, earlier index)`` of the first section entry whose title repeats an earlier
    one (ignoring case and spacing), or None."""
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        key = " ".join(entry["title"].split()).casefold()
        if key in seen:
            return i, seen[key]
        seen[key] = i
    return None


def duplicate_id(entries: list[dict[str, Any]]) -> tuple[int, int] | None:
    """``(index, earlier index)`` of the first section entry whose ``id`` repeats an earlier
    one, or None."""
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if entry.get("id"):
            if entry["id"] in seen:
                return i, seen[entry["id"]]
            seen[entry["id"]] = i
    return None


def check_config(config: dict[str, Any]) -> None:
    """Checks the schema cannot express. Raises ConfigError naming the field and the fix."""
    dup = duplicate_title(config["sections"])
    if dup:
        i, j = dup
        raise ConfigError(
            f"config error in sections[{i}].title: section {i + 1} has the same title as "
            f"section {j + 1} ({config['sections'][i]['title']!r}). Every section needs its own "
            "title; rename one of them or merge the two entries."
        )
    dup = duplicate_id(config["sections"])
    if dup:
        i, j = dup
        raise ConfigError(
            f"config error in sections[{i}].id: section {i + 1} has the same id as section "
            f"{j + 1} ({config['sections'][i]['id']!r}). An id names one section's bookkeeping; "
            "give each section its own id, or leave it out."
        )
    if not config["sections"] and not config.get("topic"):
        raise ConfigError(
            "config error in sections: the book has no sections. List them under `sections`, "
            "or give a `topic` (and `section_count`) to have the outline written first."
        )
    templates = (
        ("system", "section", "outline") if not config["sections"] else ("system", "section")
    )
    for name in templates:
        template = Path(config["prompts"][name])
        if not template.is_file():
            raise ConfigError(
                f"config error in prompts.{name}: template file {str(template)!r} does not exist "
                "(paths are relative to the book's working directory). Point prompts."
                f"{name} at an existing file or restore it from the bookgen repository."
            )
    for model, entry in config["prices"].items():
        for i, window in enumerate((entry.get("peak") or {}).get("hours_utc", [])):
            try:
                window_bounds(window)
            except ValueError as e:
                raise ConfigError(
                    f"config error in prices.{model}.peak.hours_utc[{i}]: {e}."
                ) from None
    gen = config["generation"]
    both = sorted(set(gen["omit"]) & set(gen["rename"]))
    if both:
        raise ConfigError(
            f"config error in generation.rename: {both[0]} is also in generation.omit; a field "
            "is either left out or renamed, not both."
        )
    if config["provider"] != "simulator" and config["base_url"].rstrip("/").endswith(
        "/chat/completions"
    ):
        raise ConfigError(
            "config error in base_url: give the API root (e.g. https://api.deepseek.com or "
            "http://127.0.0.1:8000/v1), not the /chat/completions endpoint."
        )


def missing_api_key_message(config: dict[str, Any]) -> str | None:
    """None when the run can authenticate; otherwise the error to show before any job starts."""
    if config["provider"] == "simulator":
        return None
    var = config["api_key_env"]
    if os.environ.get(var, "").strip():
        return None
    return (
        f"bookgen: the API key is missing: environment variable {var} is not set (or empty).\n"
        f"  Set it:            export {var}=<your {config['provider']} API key>\n"
        f"  Or use another:    --config api_key_env=OTHER_VARIABLE\n"
        f"  Or run offline:    {OFFLINE_COMMAND}\n"
        "No section was started and nothing was billed."
    )


def is_planned(config: dict[str, Any], section: Section) -> bool:
    """Whether a section is planned before it is written (``planning.min_words``)."""
    return section.words >= int(config["planning"]["min_words"])


def template_text(config: dict[str, Any], name: str) -> str:
    return Path(config["prompts"][name]).read_text(encoding="utf-8")


# Not max_tokens: a reply cut off by it is continued, so it decides how many calls a text takes,
# never the text (raising it, as the length error advises, must not re-bill the book).
GENERATION_KEYS_THAT_SHAPE_TEXT = ("temperature", "extra_body")


def book_fingerprint(config: dict[str, Any]) -> dict[str, str]:
    """The parts of every section's fingerprint that the whole book shares (computed once)."""
    gen = config["generation"]
    templates = [template_text(config, "system"), template_text(config, "section")]
    # An omitted temperature shapes the text too (the provider's default applies); listed only
    # when set, so books written before `omit` existed keep their fingerprints.
    shaping = sorted(k for k in gen.get("omit") or () if k in GENERATION_KEYS_THAT_SHAPE_TEXT)
    omitted = [f"omit={json.dumps(shaping)}"] if shaping else []
    return {
        "book": f"book settings #{_digest(config['book'])}",
        "model": f"model: {config['provider']}:{config['model']}",
        "generation": "generation: "
        + ", ".join(
            [
                *(
                    f"{k}={json.dumps(gen[k], sort_keys=True)}"
                    for k in GENERATION_KEYS_THAT_SHAPE_TEXT
                ),
                *omitted,
            ]
        ),
        "prompts": f"prompt templates #{_digest(templates)}",
    }


def section_fingerprint(shared: dict[str, str], section: Section) -> dict[str, str]:
    """What determines a section's text, as short self-describing strings.

    Used as Snakemake ``params``: when one changes, the section is regenerated and
    ``--dry-run`` prints the old and new value. The other sections' specs are left out on
    purpose (they reach this section's prompt only as orientation), and so are prices, retry
    and report settings and the code itself: none of them may re-bill a finished section.
    """
    return {"spec": spec_line(section), **shared}


def spec_line(section: Section) -> str:
    """The section's own entry as its fingerprint shows it (``section spec: Title | ...``)."""
    return (
        f"section spec: {section.title} | {'; '.join(section.key_points)} | {section.words} words"
    )


def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]
