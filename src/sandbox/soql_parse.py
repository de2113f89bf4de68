"""Recursive-descent parser for the SOQL subset the sandbox serves.

Grammar (keywords case-insensitive):
    query   := SELECT (COUNT '(' ')' | field (',' field)*) FROM name [WHERE or] [ORDER BY key (',' key)*]
               [LIMIT integer]
    or      := and (OR and)*            and := not (AND not)*            not := NOT not | '(' or ')' | test
    test    := field op value | field [NOT] IN '(' value (',' value)* ')' | field LIKE 'string'
    key     := field [ASC|DESC] [NULLS (FIRST|LAST)]
Everything else (GROUP BY, OFFSET, subqueries, functions, relationship paths, date literals such as TODAY,
bind variables) is refused with MALFORMED_QUERY naming the token, as the real API does.
"""

from __future__ import annotations

from sandbox.soql_ast import (
    And,
    Compare,
    CompareOp,
    Condition,
    FieldRef,
    InList,
    Like,
    Not,
    Or,
    OrderKey,
    Query,
    SoqlError,
)
from sandbox.soql_lex import Token, like_regex, literal, tokenize, unexpected

# Words that can never be a field name; the unsupported ones are here so they fail where they stand.
_RESERVED = frozenset(
    "SELECT FROM WHERE AND OR NOT IN LIKE ORDER BY LIMIT NULL TRUE FALSE GROUP HAVING OFFSET FOR UPDATE "  # noqa: SIM905
    "TYPEOF WITH USING INCLUDES EXCLUDES".split()
)
_NOT_AN_OBJECT = frozenset({"SELECT", "FROM", "WHERE", "LIMIT"})
_OPS: dict[str, CompareOp] = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self, token: Token | None = None) -> SoqlError:
        return unexpected(self.text, token or self.peek)

    def expect_word(self, word: str) -> None:
        if not self.peek.is_word(word):
            raise self.fail()
        self.pos += 1

    def expect_punct(self, punct: str) -> None:
        if self.peek.kind != "punct" or self.peek.text != punct:
            raise self.fail()
        self.pos += 1

    def field(self) -> FieldRef:
        token = self.take()
        if token.kind != "ident" or token.text.upper() in _RESERVED or "." in token.text:
            raise self.fail(token)
        if self.peek.text == "(":
            raise self.fail(token)
        return FieldRef(token.text, token.offset)

    def query(self) -> Query:
        self.expect_word("SELECT")
        fields: list[FieldRef] = []
        is_count = self.peek.is_word("COUNT") and self.tokens[self.pos + 1].text == "("
        if is_count:
            self.pos += 2
            self.expect_punct(")")
        else:
            fields.append(self.field())
            while self.peek.text == ",":
                self.pos += 1
                fields.append(self.field())
        self.expect_word("FROM")
        sobject = self.take()
        if sobject.kind != "ident" or "." in sobject.text or sobject.is_word(*_NOT_AN_OBJECT):
            raise self.fail(sobject)
        where = None
        if self.peek.is_word("WHERE"):
            self.pos += 1
            where = self.disjunction()
        order_by = self.order_by() if self.peek.is_word("ORDER") else ()
        limit = None
        if self.peek.is_word("LIMIT"):
            self.pos += 1
            token = self.take()
            if token.kind != "number" or not token.text.isdigit():
                raise self.fail(token)
            limit = int(token.text)
        if self.peek.kind != "eof":
            raise self.fail()
        return Query(self.text, sobject.text, tuple(fields), is_count, where, order_by, limit)

    def order_by(self) -> tuple[OrderKey, ...]:
        self.pos += 1
        self.expect_word("BY")
        keys: list[OrderKey] = []
        while True:
            field = self.field()
            descending = self.peek.is_word("DESC")
            if descending or self.peek.is_word("ASC"):
                self.pos += 1
            nulls_first = not descending
            if self.peek.is_word("NULLS"):
                self.pos += 1
                if not self.peek.is_word("FIRST", "LAST"):
                    raise self.fail()
                nulls_first = self.take().is_word("FIRST")
            keys.append(OrderKey(field, descending, nulls_first))
            if self.peek.text != ",":
                return tuple(keys)
            self.pos += 1

    def disjunction(self) -> Condition:
        parts = [self.conjunction()]
        while self.peek.is_word("OR"):
            self.pos += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Condition:
        parts = [self.negation()]
        while self.peek.is_word("AND"):
            self.pos += 1
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def negation(self) -> Condition:
        if self.peek.is_word("NOT"):
            self.pos += 1
            return Not(self.negation())
        if self.peek.text == "(" and self.peek.kind == "punct":
            self.pos += 1
            inner = self.disjunction()
            self.expect_punct(")")
            return inner
        return self.test()

    def test(self) -> Condition:
        field = self.field()
        token = self.take()
        if token.kind == "op":
            return Compare(field, _OPS[token.text], literal(self.text, self.take()))
        negated = token.is_word("NOT")
        if negated:
            token = self.take()
        if token.is_word("IN"):
            self.expect_punct("(")
            values = [literal(self.text, self.take())]
            while self.peek.text == ",":
                self.pos += 1
                values.append(literal(self.text, self.take()))
            self.expect_punct(")")
            return InList(field, tuple(values), negated)
        if token.is_word("LIKE") and not negated:
            pattern = self.take()
            if pattern.kind != "string":
                raise self.fail(pattern)
            value = literal(self.text, pattern)
            return Like(field, value, like_regex(value.raw))
        raise self.fail(token)


def parse(text: str) -> Query:
    """Parse one SOQL query of the supported subset, or raise SoqlError(MALFORMED_QUERY)."""
    return _Parser(text).query()
