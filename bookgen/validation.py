"""Checking a document against a JSON schema the way a person wants to hear about it.

``validate_with_defaults`` fills the schema's defaults in place (as ``snakemake.utils.validate``
does), first reading strings as YAML where the schema asks for a boolean, number or null
(``--config response_cache=false`` arrives as the string ``'false'``), and ``explain`` turns the
most relevant error into one line: the field's path, what is wrong, and a "did you mean" hint
from the names allowed at that level.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterator
from typing import Any

import jsonschema
import yaml
from jsonschema import validators

SCALAR_TYPES = {
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def _fill_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterator:
    """The ``properties`` keyword, setting each absent property to (a copy of) its default."""
    if isinstance(instance, dict):
        for name, sub in properties.items():
            if "default" in sub and name not in instance:
                instance[name] = copy.deepcopy(sub["default"])
    yield from validators.Draft202012Validator.VALIDATORS["properties"](
        validator, properties, instance, schema
    )


DefaultFillingValidator = validators.extend(
    validators.Draft202012Validator, {"properties": _fill_defaults}
)


def path_str(path: Any) -> str:
    """``sections[2].words`` for the path ``("sections", 2, "words")``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _coerced(value: str, schema: dict[str, Any]) -> Any:
    """``value`` read as YAML when the schema wants a scalar it spells; else ``value``."""
    wanted = schema.get("type")
    wanted = [wanted] if isinstance(wanted, str) else (wanted or [])
    if "string" in wanted or not any(t in SCALAR_TYPES for t in wanted):
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if any(SCALAR_TYPES[t](parsed) for t in wanted if t in SCALAR_TYPES) else value


def coerce_strings(data: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """``data`` with strings read as the boolean, number or null its schema asks for (in place
    for containers; the new value is returned for a scalar)."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if isinstance(data, str):
        return _coerced(data, schema)
    if isinstance(data, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in data.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                data[key] = coerce_strings(value, sub, root)
    elif isinstance(data, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(data):
            data[i] = coerce_strings(value, schema["items"], root)
    return data


def first_error(data: Any, schema: dict[str, Any], **kw: Any) -> jsonschema.ValidationError | None:
    """Coerce, fill defaults and validate ``data`` in place; the most relevant error, or None."""
    coerce_strings(data, schema)
    errors = DefaultFillingValidator(schema, **kw).iter_errors(data)
    return jsonschema.exceptions.best_match(errors)


def _did_you_mean(word: Any, choices: list[Any]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def explain(error: jsonschema.ValidationError) -> tuple[str, str]:
    """``(where, what)``: the field's path and one line on what is wrong, with a hint."""
    where = path_str(error.absolute_path)
    schema, instance = error.schema, error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        unknown = [k for k in instance if k not in allowed]
        hints = [_did_you_mean(k, allowed) for k in unknown]
        what = "; ".join(f"unknown key {k!r}{h}" for k, h in zip(unknown, hints, strict=True))
        return where, what if all(hints) else f"{what}. Allowed here: {', '.join(allowed)}"
    if error.validator == "enum":
        options = ", ".join(map(str, error.validator_value))
        return (
            where,
            f"{instance!r} is not one of {options}{_did_you_mean(instance, error.validator_value)}",
        )
    if error.validator == "required":
        return where, error.message
    if schema.get("writeOnly"):  # a field a secret may be pasted into: never echo the value
        message = f"the value does not match {error.validator} {error.validator_value}"
    else:
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    description = (schema.get("description") or "").strip().rstrip(".")
    return where, message + (f" ({description})" if description else "")
