"""A framework file's [text] and [dates] tables: defaults, extending, turning off, and validation."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from rules import (
    DEFAULT_DATE_RULES,
    DEFAULT_TEXT_RULES,
    DateForm,
    Deal,
    Framework,
    FrameworkError,
    SlashOrder,
    evaluate,
    framework_from_mapping,
)

TODAY = date(2026, 11, 27)


def framework(**tables: Any) -> Framework:
    data: dict[str, Any] = {
        "name": "Test",
        "criteria": [
            {"name": "authority", "field": "authority", "checks": ["present"]},
            {"name": "timing", "field": "timing", "checks": ["date_not_past", "present"]},
        ],
        **tables,
    }
    return framework_from_mapping(data, "test.toml")


def missing(fw: Framework, authority: str = "Dana (CFO)", timing: str = "2027-01-15") -> tuple[str, ...]:
    return evaluate(Deal(id="D", authority=authority, timing=timing), fw, TODAY).missing


def test_omitted_tables_mean_the_defaults() -> None:
    """A framework without [text] or [dates] gets every default rule."""
    fw = framework()
    assert fw.text == DEFAULT_TEXT_RULES
    assert fw.dates == DEFAULT_DATE_RULES


def test_shipped_frameworks_spell_out_or_extend_the_defaults(bant: Framework, meddic: Framework) -> None:
    """BANT states the default rules explicitly; MEDDIC adds its own negations to the defaults."""
    assert bant.text == DEFAULT_TEXT_RULES
    assert bant.dates == DEFAULT_DATE_RULES
    assert meddic.text.negations > DEFAULT_TEXT_RULES.negations
    assert "no champion" in meddic.text.negations


def test_extra_lists_add_to_the_defaults() -> None:
    """extra_placeholders / extra_negations extend the lists; the defaults still apply."""
    fw = framework(text={"extra_placeholders": ["see notes"], "extra_negations": ["ask finance"]})
    assert missing(fw, authority="See notes.") == ("authority",)
    assert missing(fw, authority="Ask finance yet") == ("authority",)
    assert missing(fw, authority="TBD") == ("authority",)


def test_lists_replace_and_flags_turn_rules_off() -> None:
    """Setting a list replaces the default ([] empties it); false switches a shape rule off."""
    fw = framework(
        text={
            "placeholders": [],
            "negations": [],
            "reject_repeated_characters": False,
            "require_letters": False,
        }
    )
    for value in ("TBD", "no idea", "zzzzzz", "!!!!"):
        assert missing(fw, authority=value) == (), value


def test_the_older_top_level_placeholders_still_work() -> None:
    """A top-level `placeholders` list (before [text] existed) replaces the default placeholders."""
    fw = framework(placeholders=["pending"])
    assert missing(fw, authority="pending") == ("authority",)
    assert missing(fw, authority="TBD") == ()


def test_date_forms_can_be_narrowed() -> None:
    """[dates].formats picks the forms besides ISO; "iso" may be listed and is always read."""
    fw = framework(dates={"formats": ["iso", "quarter"], "slash_order": "day_first"})
    assert fw.dates.formats == frozenset({DateForm.QUARTER})
    assert fw.dates.slash_order is SlashOrder.DAY_FIRST
    assert missing(fw, timing="Q1 2024") == ("timing",)
    assert missing(fw, timing="Dec 2024") == ()


def test_every_problem_is_reported_with_its_key() -> None:
    """Mistakes in [text] and [dates] are all listed at once, each with its key and a suggestion."""
    with pytest.raises(FrameworkError) as info:
        framework(
            placeholders=["tbd"],
            text={
                "placeholders": ["tbd"],
                "negation": ["no idea"],
                "extra_negations": ["?", " "],
                "extra_placeholders": "tbd",
                "require_letters": "yes",
            },
            dates={"formats": ["quater"], "slash_order": "day-first", "order": 1},
        )
    problems = info.value.problems
    for expected in [
        "placeholders: set both here and in [text]: keep the one in [text]",
        "text.negation: unknown key (did you mean 'negations'?)",
        "text.extra_negations[0]: '?' has no letter or digit to match; list it under placeholders",
        "text.extra_negations[1]: is blank",
        "text.extra_placeholders: must be a list of strings",
        "text.require_letters: must be true or false",
        "dates.formats[0]: unknown date form 'quater' (did you mean 'quarter'?)",
        "dates.slash_order: must be 'month_first' or 'day_first' (did you mean 'day_first'?)",
        "dates.order: unknown key",
    ]:
        assert any(p.startswith(expected) for p in problems), (expected, problems)
