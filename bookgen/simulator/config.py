"""Simulator configuration: the JSON Schema check and typed dataclasses."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from bookgen.simulator.defects import DefectRule
from bookgen.simulator.rules import SelectorRule
from bookgen.validation import coerce_strings, explain

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "simulator.schema.yaml"

HTTP_KINDS = frozenset(
    {"http_429", "http_500", "http_503", "http_402", "http_401", "http_400_model", "http_422"}
)
STREAM_KINDS = frozenset(
    {
        "drop",
        "eof",
        "error_chunk",
        "finish_length",
        "content_filter",
        "insufficient_system_resource",
        "malformed_chunk",
        "empty_reply",
    }
)
FAULT_KINDS = HTTP_KINDS | STREAM_KINDS | {"queued"}


@dataclass(frozen=True, kw_only=True)
class FaultRule(SelectorRule):
    """One fault rule; see ``simulator.schema.yaml`` for the meaning of each field."""

    KINDS: ClassVar[frozenset[str]] = FAULT_KINDS
    LABEL: ClassVar[str] = "fault"

    after_fraction: float = 0.5
    retry_after: float | str | None = None
    retry_after_ms: float | None = None
    duration_s: float = 1.0
    message: str | None = None


@dataclass
class SimulatorConfig:
    """Validated simulator settings (defaults match the schema)."""

    seed: int = 0
    usage_shape: str = "deepseek"
    words_factor: float = 1.0
    default_words: int = 600
    thinking: bool = False
    reasoning_fraction: float = 0.1
    ttft_s: float = 0.0
    tokens_per_s: float | None = None
    chunk_tokens: int = 1
    keepalive_interval_s: float = 0.2
    concurrency_limit: int | None = None
    prefix_cache: bool = True
    models: list[str] = field(default_factory=lambda: ["deepseek-flash", "deepseek-v4-pro"])
    reject_unknown_models: bool = False
    reject_params: list[str] = field(default_factory=list)
    context_window: int | None = None
    json_requires_word: bool = True
    system_fingerprint: str = "fp_bookgen_sim"
    rate_mode: str = "sequence"
    faults: list[FaultRule] = field(default_factory=list)
    defects: list[DefectRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.faults = [
            f if isinstance(f, FaultRule) else _fault_from_dict(f, i)
            for i, f in enumerate(self.faults)
        ]
        self.defects = [
            d if isinstance(d, DefectRule) else _rule_from_dict(DefectRule, d, f"defects[{i}]")
            for i, d in enumerate(self.defects)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (faults as dicts without unset fields)."""
        d = dataclasses.asdict(self)
        for key in ("faults", "defects"):
            d[key] = [
                {k: (list(v) if isinstance(v, tuple) else v) for k, v in f.items() if v is not None}
                for f in d[key]
            ]
        return d


@functools.cache
def load_schema() -> dict[str, Any]:
    """The simulator config JSON Schema (draft 2020-12)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: about 9x faster
    return yaml.load(SCHEMA_PATH.read_text(encoding="utf-8"), Loader=loader)


def _fault_from_dict(d: dict[str, Any], index: int) -> FaultRule:
    return _rule_from_dict(FaultRule, d, f"faults[{index}]")


def _rule_from_dict(cls: type, d: dict[str, Any], where: str) -> Any:
    if d.get("section") is not None and d.get("sections") is not None:
        raise ValueError(
            f"invalid simulator config at '{where}': both 'section' and 'sections' given. "
            "Fix: keep only one of them."
        )
    try:
        return cls(**d)
    except TypeError as exc:
        raise ValueError(f"invalid simulator config at '{where}': {exc}") from exc


def validate_config(d: dict[str, Any] | None) -> SimulatorConfig:
    """Check ``d`` against the schema and build a :class:`SimulatorConfig`.

    Raises ValueError naming the bad field and how to fix it.
    """
    import jsonschema

    d = {} if d is None else d
    if not isinstance(d, dict):
        raise ValueError(
            f"invalid simulator config: expected a mapping, got {type(d).__name__}. "
            "Fix: write the settings as key: value pairs."
        )
    schema = load_schema()
    coerce_strings(d, schema)  # --config simulator={tokens_per_s: 300} arrives as '300'
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(d))
    if error is not None:
        where, what = explain(error)
        raise ValueError(
            f"invalid simulator config at '{where or '<top level>'}': {what}. "
            "Fix: see bookgen/schemas/simulator.schema.yaml"
        )
    names = {f.name for f in dataclasses.fields(SimulatorConfig)}
    kwargs = {k: v for k, v in d.items() if k in names}
    return SimulatorConfig(**kwargs)


def coerce_config(config: dict[str, Any] | SimulatorConfig | None) -> SimulatorConfig:
    """Accept a dict (validated), a SimulatorConfig, or None (defaults)."""
    if isinstance(config, SimulatorConfig):
        return config
    return validate_config(config)


def load_config_file(path: str | Path) -> SimulatorConfig:
    """Read a YAML/JSON simulator config file (a top-level ``simulator:`` key is unwrapped)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if (
        isinstance(data, dict)
        and set(data) == {"simulator"}
        and isinstance(data["simulator"], dict)
    ):
        data = data["simulator"]
    return validate_config(data)
