"""Junk text: values that fill a field without saying anything.

Hard gates in a CRM produce junk ("TBD", "T.B.D.", "no budget yet", "aaaaaaaaaaaaaaa") and we do not reward
it. Placeholders and negations are matched after normalising case, punctuation and spaces, so the obvious
variants of a listed phrase count too; the lists are data (a framework's `[text]` table) and so are the two
shape rules (one repeated character, no letters). Everything here is compiled once per framework: judging a
value costs a few string operations and set lookups.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PLACEHOLDERS: frozenset[str] = frozenset(
    {
        "tbd", "tbc", "tba", "tbs", "to be decided", "to be determined", "to be confirmed", "to be announced",
        "n/a", "na", "n/k", "not applicable", "not available", "none", "nil", "null", "nothing",
        "unknown", "unknown yet", "pending", "later", "idk", "dunno", "?", "-", "--", "x", "xx", "xxx",
        "test", "testing", "dummy", "placeholder", "sample", "asdf", "qwerty", "foo", "blah", "0",
    }
)  # fmt: skip
"""Stand-ins people type to get past a required field. Matched as the whole value after normalising."""

DEFAULT_NEGATIONS: frozenset[str] = frozenset(
    {
        "no", "nope", "no budget", "no budget allocated", "no money", "not budgeted", "unbudgeted",
        "no idea", "no clue", "not sure", "unsure", "dont know", "do not know", "not known",
        "not decided", "undecided", "no decision", "not defined", "undefined", "not set", "not specified",
        "unspecified", "not confirmed", "unconfirmed", "not clear", "unclear", "not identified",
        "not discussed", "not assigned", "nobody", "no one", "no contact", "no date", "no timeline",
        "no timeframe", "no deadline", "no need", "not yet", "pending approval", "awaiting approval",
        "not approved",
    }
)  # fmt: skip
"""Phrases that say the answer is not known. Matched as the whole value after normalising, ignoring a
trailing filler ("not sure yet", "no idea at the moment"). A placeholder followed by a filler ("none yet",
"tbd for now") counts as a negation too."""

DEFAULT_FILLERS: frozenset[str] = frozenset(
    {
        "yet", "so far", "for now", "at the moment", "atm", "right now", "currently", "at this point",
        "at this stage", "at this time", "still", "tbd", "tbc",
    }
)  # fmt: skip
"""Words ignored at the end of a value when matching negations (and placeholders followed by words)."""

PLACEHOLDER = "is a placeholder"
NOT_KNOWN = "says it is not known"
REPEATED = "is one character repeated"
NO_LETTERS = "has no letters"

MIN_REPEATED = 3
"""A run of at least this many of one character (spaces and punctuation aside) is not text: "aaa"."""

_APOSTROPHES = str.maketrans("", "", "'’`")
_NON_WORD = re.compile(r"[\W_]+")
_LETTER = re.compile(r"[^\W\d_]")


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped, every run of punctuation, symbols and spaces as one space:
    "Don't know." -> "dont know", " T.B.D. " -> "t b d"."""
    spaced = " ".join(text.lower().split())
    if spaced.replace(" ", "").isalnum():  # the common case, several times faster than the regex
        return spaced
    if "'" in spaced or "’" in spaced or "`" in spaced:
        spaced = spaced.translate(_APOSTROPHES)
    return _NON_WORD.sub(" ", spaced).strip()


def _compact(lower: str) -> str:
    """Only the letters and digits of lower-cased text: "a a-a!" -> "aaa"."""
    joined = "".join(lower.split())
    return joined if joined.isalnum() else _NON_WORD.sub("", joined)


def _filler_pattern(fillers: Iterable[str]) -> re.Pattern[str] | None:
    words = sorted({normalise(f) for f in fillers} - {""}, key=lambda w: (-len(w), w))
    if not words:
        return None
    return re.compile("(?: (?:" + "|".join(re.escape(w) for w in words) + "))+$")


@dataclass(frozen=True, slots=True)
class TextRules:
    """What counts as junk text for one framework (its `[text]` table). Lists hold phrases as written; the
    matching forms are derived once. `unknown` applies to every value before any check; `junk` to free
    text judged by `present` or `min_length`."""

    placeholders: frozenset[str] = DEFAULT_PLACEHOLDERS
    negations: frozenset[str] = DEFAULT_NEGATIONS
    fillers: frozenset[str] = DEFAULT_FILLERS
    reject_repeated_characters: bool = True
    require_letters: bool = True
    _symbols: frozenset[str] = dataclasses.field(init=False, compare=False, repr=False)
    _keys: frozenset[str] = dataclasses.field(init=False, compare=False, repr=False)
    _phrases: frozenset[str] = dataclasses.field(init=False, compare=False, repr=False)
    _filler: re.Pattern[str] | None = dataclasses.field(init=False, compare=False, repr=False)
    _tails: frozenset[str] = dataclasses.field(init=False, compare=False, repr=False)
    _heads: frozenset[str] = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Placeholders compare without any spaces ("T.B.D." -> "tbd", "N/A." -> "na"); those made only of
        # symbols ("?", "--") have no such key and compare as written.
        keys = {normalise(p).replace(" ", "") for p in self.placeholders}
        symbols = {p.strip().lower() for p in self.placeholders if not normalise(p)}
        object.__setattr__(self, "_keys", frozenset(keys - {""}))
        object.__setattr__(self, "_symbols", frozenset(symbols - {""}))
        phrases = frozenset({normalise(n) for n in self.negations} - {""})
        object.__setattr__(self, "_phrases", phrases)
        # The first two letters or digits of every listed phrase: most genuine values start differently and
        # are cleared without being normalised at all.
        heads = {key[:2] for key in keys} | {phrase.replace(" ", "")[:2] for phrase in phrases}
        object.__setattr__(self, "_heads", frozenset(heads - {""}))
        object.__setattr__(self, "_filler", _filler_pattern(self.fillers))
        # The last word of each filler: a value not ending in one of them skips the filler regex.
        object.__setattr__(self, "_tails", frozenset(normalise(f).rpartition(" ")[2] for f in self.fillers))

    def without(self, choices: frozenset[str]) -> TextRules:
        """These rules minus `choices`: a value a criterion's `one_of` lists is never junk for it."""
        listed = {normalise(c) for c in choices}
        placeholders = frozenset(p for p in self.placeholders if normalise(p) not in listed)
        negations = frozenset(n for n in self.negations if normalise(n) not in listed)
        if placeholders == self.placeholders and negations == self.negations:
            return self
        return dataclasses.replace(self, placeholders=placeholders, negations=negations)

    def unknown(self, text: str) -> str | None:
        """PLACEHOLDER or NOT_KNOWN when the (stripped, non-blank) text says nothing, else None."""
        lower = text.lower()
        head = lower[:2]
        if head.isalnum():
            if head not in self._heads:
                return None
            spaced = normalise(text)
        else:
            spaced = normalise(text)
            if not spaced:
                return PLACEHOLDER if lower in self._symbols else None
            if spaced.replace(" ", "")[:2] not in self._heads:
                return None
        if spaced.replace(" ", "") in self._keys:
            return PLACEHOLDER
        if spaced in self._phrases:
            return NOT_KNOWN
        if self._filler is not None and spaced[spaced.rfind(" ") + 1 :] in self._tails:
            core = self._filler.sub("", spaced)
            if core != spaced and (core in self._phrases or core.replace(" ", "") in self._keys):
                return NOT_KNOWN
        return None

    def junk(self, text: str) -> str | None:
        """REPEATED or NO_LETTERS when free text is only one character, or has no letter at all (a caller
        exempts text that reads as a number or a date); None otherwise."""
        lower = text.lower()
        pair = lower[:2]
        # Two different letters or digits first: not a repeated character, without building the compact form.
        if self.reject_repeated_characters and not (len(pair) == 2 and pair.isalnum() and pair[0] != pair[1]):
            compact = _compact(lower)
            if len(compact) >= MIN_REPEATED and compact.count(compact[0]) == len(compact):
                return REPEATED
        # islower() is true when there is a cased letter; letters without case (CJK, Arabic) need the regex.
        if self.require_letters and not lower.islower() and _LETTER.search(lower) is None:
            return NO_LETTERS
        return None


DEFAULT_TEXT_RULES = TextRules()
