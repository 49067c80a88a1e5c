"""Config validation (schema + checks the schema cannot express) and fingerprints."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from bookgen.config import (
    ConfigError,
    book_fingerprint,
    check_config,
    missing_api_key_message,
    section_fingerprint,
    sections_from_config,
    validate_config,
)
from bookgen.writing.prompts import check_templates
from tests.conftest import REPO


def raw_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def schema_error(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


def test_demo_config_is_valid_and_has_eleven_sections(demo_config):
    check_config(demo_config)
    check_templates(demo_config)
    sections = sections_from_config(demo_config)
    assert [s.id for s in sections] == [f"{i:02d}" for i in range(1, 12)]
    assert all(s.key_points and s.words >= 1000 for s in sections)


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda c: c["sections"][1].pop("title"), ["title", "sections"]),
        (lambda c: c["sections"][2].__setitem__("words", -5), ["words", "-5"]),
        (lambda c: c["sections"][2].__setitem__("words", "many"), ["words", "many"]),
        (lambda c: c.__setitem__("colour", "blue"), ["colour"]),
        (lambda c: c["sections"][0].__setitem__("keypoints", ["x"]), ["keypoints"]),
        (lambda c: c.__setitem__("provider", "deepsek"), ["provider", "deepsek"]),
        (lambda c: c.__setitem__("api_key_env", "sk-123 secret"), ["api_key_env"]),
        (lambda c: c["book"].pop("audience"), ["audience"]),
        (lambda c: c["prices"]["deepseek-flash"].pop("output"), ["output"]),
    ],
)
def test_schema_errors_name_the_field(mutate, names):
    config = raw_config()
    mutate(config)
    message = schema_error(config)
    for name in names:
        assert name in message


def test_duplicate_section_titles_are_rejected(demo_config):
    config = copy.deepcopy(demo_config)
    config["sections"][4]["title"] = "  transistors and LOGIC gates "
    with pytest.raises(ConfigError, match=r"sections\[4\]\.title.*same title as section 2"):
        check_config(config)


def test_missing_template_is_rejected(demo_config):
    config = copy.deepcopy(demo_config)
    config["prompts"]["section"] = "nowhere/section.md"
    with pytest.raises(ConfigError, match=r"prompts\.section.*does not exist"):
        check_config(config)


def test_unknown_template_placeholder_is_rejected(demo_config, tmp_path):
    config = copy.deepcopy(demo_config)
    bad = tmp_path / "s.md"
    bad.write_text("Write $title for $readers")
    config["prompts"]["section"] = str(bad)
    with pytest.raises(ConfigError, match=r"prompts.section.*\$readers"):
        check_templates(config)


def test_missing_key_message_names_variable_and_offline_command(demo_config, monkeypatch):
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    message = missing_api_key_message(demo_config)
    assert "DEEPSEEK_API_KEY" in message
    assert "--config provider=simulator" in message
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-abc")
    assert missing_api_key_message(demo_config) is None
    assert missing_api_key_message({**demo_config, "provider": "simulator"}) is None


def test_fingerprint_changes_only_with_what_shapes_the_text(demo_config):
    sections = sections_from_config(demo_config)
    base = section_fingerprint(book_fingerprint(demo_config), sections[4])

    def fp(config, index=4):
        return section_fingerprint(book_fingerprint(config), sections_from_config(config)[index])

    changed = copy.deepcopy(demo_config)
    changed["sections"][4]["key_points"].append("a new point")
    assert fp(changed)["spec"] != base["spec"]
    assert fp(changed, 3) == section_fingerprint(book_fingerprint(demo_config), sections[3])

    for key, value in [("model", "deepseek-v4-pro"), ("provider", "openai")]:
        assert fp({**demo_config, key: value})["model"] != base["model"]
    hot = copy.deepcopy(demo_config)
    hot["generation"]["temperature"] = 1.0
    assert fp(hot)["generation"] != base["generation"]

    # Prices, retry settings, timeouts and the base URL do not shape the text.
    cheap = copy.deepcopy(demo_config)
    cheap["prices"]["deepseek-flash"]["output"] = 0.01
    cheap["retry"]["max_attempts"] = 2
    cheap["generation"]["timeout_s"] = 5
    cheap["base_url"] = "http://127.0.0.1:9/v1"
    assert fp(cheap) == base


def test_section_ids_widen_for_long_books(demo_config):
    config = copy.deepcopy(demo_config)
    config["sections"] = [
        {"title": f"Part {i}", "key_points": ["x"], "words": 100} for i in range(120)
    ]
    ids = [s.id for s in sections_from_config(config)]
    assert ids[0] == "001" and ids[-1] == "120" and ids == sorted(ids)


def test_the_section_table_follows_every_edit_of_the_config():
    entries = [{"title": f"Part {i}", "key_points": ["x"], "words": 100} for i in (1, 2)]
    config = {"sections": entries}
    first = sections_from_config(config)
    assert sections_from_config(config) == first
    sections_from_config(config).clear()  # each caller gets a list of its own
    assert sections_from_config(config) == first
    config["sections"][0]["title"] = "Part one"  # edited in place
    edited = sections_from_config(config)
    assert edited[0].title == "Part one" and edited[0].key != first[0].key
    assert edited[1] == first[1]
    config["sections"][1]["id"] = "two"
    assert sections_from_config(config)[1].key == "id-two"


def set_peak_hours(config: dict, hours: list[str]) -> dict:
    config["prices"]["deepseek-flash"]["peak"]["hours_utc"] = hours
    return config


@pytest.mark.parametrize("window", ["22:00-24:30", "24:30-02:00", "25:00-02:00", "10:60-11:00"])
def test_an_impossible_peak_time_is_rejected_by_the_schema(window):
    message = schema_error(set_peak_hours(raw_config(), ["06:00-10:00", window]))
    assert "hours_utc" in message and "deepseek-flash" in message and window in message
    # ...and the field's description (printed in pieces by pprint) says what is allowed.
    assert "so 24:30 is not a time" in re.sub(r"'\s+'", "", message)


def test_a_peak_window_that_wraps_midnight_is_valid(demo_config):
    config = set_peak_hours(raw_config(), ["22:00-02:00", "20:00-24:00"])
    validate_config(config)
    check_config(set_peak_hours(copy.deepcopy(demo_config), ["22:00-02:00"]))


def test_an_empty_peak_window_is_rejected(demo_config):
    config = set_peak_hours(copy.deepcopy(demo_config), ["06:00-10:00", "10:00-10:00"])
    with pytest.raises(
        ConfigError, match=r"prices\.deepseek-flash\.peak\.hours_utc\[1\]: '10:00-10:00' starts"
    ):
        check_config(config)


@pytest.mark.parametrize("value", ["now", "off_peak"])
def test_schedule_takes_now_or_off_peak(value):
    config = raw_config()
    config["schedule"] = value
    validate_config(config)
    config["schedule"] = "tonight"
    assert "schedule" in schema_error(config) and "tonight" in schema_error(config)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c.update(respons_cache=False), "unknown key 'respons_cache' (did you mean "),
        (lambda c: c["generation"].update(max_token=9000), "in generation: unknown key "),
        (lambda c: c.update(provider="deepsek"), "(did you mean 'deepseek'?)"),
        (lambda c: c["qc"].update(on_fail="warm"), "in qc.on_fail: 'warm' is not one of"),
    ],
)
def test_schema_errors_are_one_short_line_with_a_hint(mutate, expected):
    config = raw_config()
    config.setdefault("generation", {})
    config.setdefault("qc", {})
    mutate(config)
    message = schema_error(config)
    assert expected in message
    assert "\n" not in message and len(message) < 400


def test_a_pasted_key_is_never_echoed():
    config = raw_config()
    config["api_key_env"] = "sk-live-0123456789abcdef"
    message = schema_error(config)
    assert "api_key_env" in message and "sk-live" not in message


def test_strings_are_read_as_the_types_the_schema_asks_for():
    """``--config`` hands values over as strings (``response_cache=false`` is ``'false'``)."""
    config = raw_config()
    config.update(
        response_cache="false",
        budget_usd="null",
        generation={"max_tokens": "16000", "temperature": "0.3"},
        book={**config["book"], "title": "1984"},
    )
    validate_config(config)
    assert config["response_cache"] is False and config["budget_usd"] is None
    assert config["generation"]["max_tokens"] == 16000
    assert config["generation"]["temperature"] == 0.3
    assert config["generation"]["max_continuations"] == 4  # defaults are filled in
    assert config["book"]["title"] == "1984"  # a string where the schema wants one
    config["response_cache"] = "perhaps"
    assert "response_cache: 'perhaps' is not of type 'boolean'" in schema_error(config)


def test_defaults_are_copies_not_the_schema_itself():
    first, second = raw_config(), raw_config()
    validate_config(first)
    first["generation"]["extra_body"]["thinking"] = "x"
    validate_config(second)
    assert second["generation"]["extra_body"] == {}
