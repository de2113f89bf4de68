"""Junk text: placeholders and negations after normalising, one repeated character, no letters."""

from __future__ import annotations

import re
from datetime import date

import pytest

from rules import (
    DEFAULT_NEGATIONS,
    DEFAULT_PLACEHOLDERS,
    DEFAULT_TEXT_RULES,
    Framework,
    TextRules,
    evaluate,
    parse_check,
)
from rules.checks import compile_checks
from rules.model import Deal, Value
from rules.text import normalise
from tests.conftest import ROOT

TODAY = date(2026, 11, 27)
GOOD = {
    "budget": "85000",
    "authority": "Dana Whitfield (CFO)",
    "need": "Replace three nightly ETL jobs that miss SLAs",
    "timing": "2027-01-15",
}


def assess(bant: Framework, field: str, value: Value) -> tuple[tuple[str, ...], tuple[str, ...]]:
    result = evaluate(Deal(id="D", **{**GOOD, field: value}), bant, TODAY)  # type: ignore[arg-type]
    return result.missing, result.reasons


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("budget", "no budget yet", "Budget: 'no budget yet' says it is not known"),
        ("budget", "not sure yet", "Budget: 'not sure yet' says it is not known"),
        ("budget", "no idea", "Budget: 'no idea' says it is not known"),
        ("budget", "No idea at the moment.", "Budget: 'No idea at the moment.' says it is not known"),
        ("authority", "not sure", "Authority: 'not sure' says it is not known"),
        ("authority", "none yet", "Authority: 'none yet' says it is not known"),
        ("authority", "Don't know", "Authority: 'Don't know' says it is not known"),
        ("timing", "not decided", "Timing: 'not decided' says it is not known"),
        ("timing", "TBD for now", "Timing: 'TBD for now' says it is not known"),
        ("budget", "TBC", "Budget: 'TBC' is a placeholder"),
        ("budget", "TBA", "Budget: 'TBA' is a placeholder"),
        ("budget", "T.B.D.", "Budget: 'T.B.D.' is a placeholder"),
        ("authority", "N/A.", "Authority: 'N/A.' is a placeholder"),
        ("authority", " tbd ", "Authority: 'tbd' is a placeholder"),
        ("authority", "pending", "Authority: 'pending' is a placeholder"),
        ("authority", "Unknown yet", "Authority: 'Unknown yet' is a placeholder"),
        ("authority", "?", "Authority: '?' is a placeholder"),
        ("need", "a" * 20, "Need: 'aaaaaaaaaaaaaaaaaaaa' is one character repeated"),
        ("need", "x x x x x x x x x x", "Need: 'x x x x x x x x x x' is one character repeated"),
        ("authority", "zzz", "Authority: 'zzz' is one character repeated"),
        ("need", "!!!!!!!!!!!!!!!!!!!!", "Need: '!!!!!!!!!!!!!!!!!!!!' has no letters"),
        ("need", "1234567890123456", "Need: '1234567890123456' has no letters"),
        ("authority", "-/-", "Authority: '-/-' has no letters"),
        ("budget", "$$$", "Budget: '$$$' has no letters"),
    ],
)
def test_gaming_values_are_missing_with_a_reason_quoting_them(
    bant: Framework, field: str, value: str, reason: str
) -> None:
    """Each junk value makes its criterion missing, and the reason quotes what was typed."""
    assert assess(bant, field, value) == ((field,), (reason,))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("budget", "USD 50k approved"),
        ("budget", "120000"),
        ("budget", "$120,000"),
        ("budget", "approved in FY27 plan"),
        ("budget", "No budget constraints: 80k approved"),
        ("authority", "Maria Chen, CFO"),
        ("authority", "Nadia O'Neill (VP Ops)"),
        ("authority", "Zoë Ångström"),
        ("authority", "王伟"),
        ("authority", "Noah"),
        ("need", "Not just reporting: replace the nightly ETL"),
        ("need", "需要替换三个夜间ETL作业需要替换"),
        ("timing", "next quarter"),
        ("timing", "Decision by end of Q1 2027"),
    ],
)
def test_genuine_values_still_pass(bant: Framework, field: str, value: str) -> None:
    """Real answers, including ones that start like a negation, are not mistaken for junk."""
    assert assess(bant, field, value) == ((), ())


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("T.B.D.", "t b d"),
        ("  N/A. ", "n a"),
        ("Don't  know!", "dont know"),
        ("No-budget, yet", "no budget yet"),
        ("Q1 2027", "q1 2027"),
        ("___", ""),
    ],
)
def test_normalise(text: str, normal: str) -> None:
    """Normalising lowers case, drops apostrophes and turns punctuation runs into one space."""
    assert normalise(text) == normal


def test_present_accepts_a_number_or_date_without_letters() -> None:
    """For `present`, a number or a date is a value; for `min_length`, text needs letters."""
    present = compile_checks((parse_check("present"),))
    described = compile_checks((parse_check("min_length:5"),))
    assert present("120000", TODAY) is None
    assert present("31.12.2027", TODAY) is None
    assert present("!!!", TODAY) == "'!!!' has no letters"
    assert described("1234567", TODAY) == "'1234567' has no letters"


def test_only_typed_text_is_judged_for_shape() -> None:
    """A number delivered as a number is never 'without letters' or 'repeated'."""
    present = compile_checks((parse_check("present"),))
    assert present(111111, TODAY) is None


@pytest.mark.parametrize(
    ("rules", "value", "verdict"),
    [
        (TextRules(reject_repeated_characters=False), "a" * 20, None),
        (TextRules(require_letters=False), "!!!!!!!!", None),
        (TextRules(negations=frozenset()), "no idea", None),
        (TextRules(negations=frozenset(), fillers=frozenset()), "tbd for now", None),
        (TextRules(placeholders=frozenset()), "TBD", None),
        (TextRules(fillers=frozenset()), "not sure yet", None),
        (
            TextRules(negations=frozenset({"ask finance"})),
            "Ask finance!",
            "'Ask finance!' says it is not known",
        ),
        (
            TextRules(placeholders=frozenset({"see notes"})),
            "See notes.",
            "'See notes.' is a placeholder",
        ),
    ],
    ids=[
        "repeated-off",
        "letters-off",
        "negations-off",
        "fillers-and-negations-off",
        "placeholders-off",
        "fillers-off",
        "own-negation",
        "own-placeholder",
    ],
)
def test_each_rule_can_be_turned_off_or_replaced(rules: TextRules, value: str, verdict: str | None) -> None:
    """A framework's own text rules decide; each default rule can be switched off."""
    assert compile_checks((parse_check("present"),), rules)(value, TODAY) == verdict


def test_one_of_choices_are_never_junk_for_their_criterion() -> None:
    """A value a criterion lists in one_of is an answer there, even if it is a default negation elsewhere."""
    stance = compile_checks((parse_check("one_of:[yes, no, not sure]"),))
    assert stance("Not sure", TODAY) is None
    assert stance("no", TODAY) is None
    assert stance("TBD", TODAY) == "'TBD' is a placeholder"
    assert DEFAULT_TEXT_RULES.unknown("not sure") is not None


def test_the_readme_lists_the_default_phrases() -> None:
    """The rules page (docs/rules.md) lists exactly the default placeholders, negations and
    fillers, so the documentation cannot drift from the code."""
    readme = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    section = readme.split("# Qualification rules", 1)[1].split("\n## ", 1)[0]
    placeholders, negations = re.findall(r"Default list:\s*`([^`]*)`", section)
    (fillers,) = re.findall(r"a trailing filler aside\s*\(`([^`]*)`\)", section)

    def listed(text: str) -> set[str]:
        return {" ".join(item.split()) for item in text.split(",")}

    assert listed(placeholders) == DEFAULT_PLACEHOLDERS
    assert listed(negations) == DEFAULT_NEGATIONS
    assert listed(fillers) == DEFAULT_TEXT_RULES.fillers
