"""The SOQL subset's lexer and literals: string escapes, LIKE patterns, number/date/datetime values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from sandbox.soql_ast import SoqlError, Value

TokenKind = Literal["string", "datetime", "date", "number", "ident", "op", "punct", "bad", "eof"]

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.]*(?:Z|[+-][0-9:]+)?)
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    |(?P<op>!=|<>|<=|>=|=|<|>)
    |(?P<punct>[(),])""",
    re.VERBOSE | re.DOTALL | re.ASCII,
)
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})", re.ASCII)
# Quoted string escapes: developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
# sforce_api_calls_soql_select_quotedstringescapes.htm (\_ and \% are meant for LIKE patterns).
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_ESCAPES |= {k.upper(): v for k, v in _ESCAPES.items() if k.isalpha()} | {"%": "%", "_": "_"}


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    offset: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


def _malformed(text: str, offset: int, message: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", message, text, offset)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == "'":
                raise _malformed(text, len(text), "mismatched character '<EOF>' expecting '''")
            tokens.append(Token("bad", text[pos], pos))
            pos += 1
            continue
        kind = match.lastgroup
        if kind != "ws":
            assert kind is not None
            tokens.append(Token(kind, match.group(), pos))  # type: ignore[arg-type]
        pos = match.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens


def _decode_string(text: str, token: Token) -> str:
    """The string literal's value, or MALFORMED_QUERY for a backslash SOQL does not define."""
    raw = token.text[1:-1]
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            nxt = raw[i + 1]
            if nxt not in _ESCAPES:
                sequence = "\\" + nxt
                message = (
                    f"Invalid string literal '{raw}'. Illegal character sequence '{sequence}' in string"
                    " literal."
                )
                raise _malformed(text, token.offset + 1 + i, message)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def like_regex(raw: str) -> str:
    """Translate a LIKE pattern's source text (escapes undecoded) to a regex: '%' → '.*', '_' → '.'."""
    parts: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            parts.append(re.escape(_ESCAPES.get(raw[i + 1], raw[i + 1])))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(parts)


def literal(text: str, token: Token) -> Value:
    kind, raw, at = token.kind, token.text, token.offset
    if kind == "string":
        return Value("string", _decode_string(text, token), raw[1:-1], at)
    if kind == "number":
        number: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
        return Value("number", number, raw, at)
    if kind == "date":
        try:
            return Value("date", date.fromisoformat(raw), raw, at)
        except ValueError:
            raise _malformed(text, at, f"Invalid date: {raw}") from None
    if kind == "datetime":
        try:
            if not _DATETIME.fullmatch(raw):
                raise ValueError(raw)
            instant = datetime.fromisoformat(raw).astimezone(UTC)
        except ValueError:
            raise _malformed(text, at, f"Invalid datetime: {raw}") from None
        return Value("datetime", instant, raw, at)
    if token.is_word("TRUE", "FALSE"):
        return Value("boolean", raw.upper() == "TRUE", raw, at)
    if token.is_word("NULL"):
        return Value("null", None, raw, at)
    raise unexpected(text, token)


def unexpected(text: str, token: Token) -> SoqlError:
    if token.kind == "bad":
        return _malformed(text, token.offset, f"no viable alternative at character '{token.text}'")
    return _malformed(text, token.offset, f"unexpected token: '{token.text}'")
