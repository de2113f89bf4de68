"""The sandbox's SOQL engine: the subset bant-sync sends, Salesforce's semantics, and its refusals."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simple_salesforce.format import format_soql

from sandbox.soql import Compare, InList, SoqlError, execute, index_probe, parse, referenced_fields

FIELDS = {
    "Id": "id",
    "Name": "string",
    "Description": "textarea",
    "StageName": "picklist",
    "IsClosed": "boolean",
    "Amount": "currency",
    "Probability": "percent",
    "Rank__c": "int",
    "CloseDate": "date",
    "SystemModstamp": "datetime",
    "OwnerId": "reference",
}
STAMP = datetime(2026, 11, 27, 20, 54, 14, tzinfo=UTC)
EST = timezone(timedelta(hours=-5))


def oid(n: int) -> str:
    return f"006Ab000000000{n}AAA"


RECORDS: list[dict[str, object]] = [
    {"Id": oid(1), "Name": "Acme Renewal", "Description": "Line1\nLine2", "StageName": "Prospecting",
     "IsClosed": False, "Amount": 5000.0, "Probability": 10, "Rank__c": 3, "CloseDate": date(2026, 12, 1),
     "SystemModstamp": STAMP, "OwnerId": "005000000000001AAA"},
    {"Id": oid(2), "Name": "beta expansion", "Description": "50% off_deal", "StageName": "Negotiation",
     "IsClosed": False, "Amount": 12000.5, "Probability": 60, "Rank__c": 1, "CloseDate": date(2026, 11, 30),
     "SystemModstamp": STAMP.replace(microsecond=123000), "OwnerId": "005000000000002AAA"},
    {"Id": oid(3), "Name": "Cobalt", "Description": None, "StageName": "Closed Won", "IsClosed": True,
     "Amount": None, "Probability": 100, "Rank__c": None, "CloseDate": date(2026, 10, 1),
     "SystemModstamp": datetime(2026, 11, 28, tzinfo=UTC), "OwnerId": "005000000000001AAA"},
    {"Id": oid(4), "Name": None, "Description": "", "StageName": "Prospecting", "IsClosed": False,
     "Amount": 0, "Probability": 0, "Rank__c": 2, "CloseDate": None,
     "SystemModstamp": datetime(2026, 11, 26, 19, 0, tzinfo=EST), "OwnerId": "005000000000002AAA"},
    {"Id": oid(5), "Name": "", "Description": "TBD", "StageName": "closed lost", "IsClosed": True,
     "Amount": -250.0, "Probability": None, "Rank__c": 5, "CloseDate": date(2027, 1, 15),
     "SystemModstamp": STAMP, "OwnerId": None},
]  # fmt: skip


def run(soql: str, records: list[dict[str, object]] | None = None) -> list[dict[str, object]]:
    return execute(parse(soql), RECORDS if records is None else records, FIELDS).rows


def ids_where(condition: str) -> list[int]:
    rows = run(f"SELECT Id FROM Opportunity WHERE {condition}")
    return [int(str(row["Id"])[14]) for row in rows]


def ids_ordered(tail: str) -> list[int]:
    return [int(str(row["Id"])[14]) for row in run(f"SELECT Id FROM Opportunity {tail}")]


def error(soql: str, fields: Mapping[str, str] = FIELDS) -> SoqlError:
    with pytest.raises(SoqlError) as caught:
        execute(parse(soql), RECORDS, fields)
    return caught.value


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Name = 'acme renewal'", [1]),
        ("Name = 'Acme'", []),
        ("Name != 'Cobalt'", [1, 2, 4, 5]),
        ("Name <> 'COBALT'", [1, 2, 4, 5]),
        ("Name < 'b'", [1]),
        ("Amount < 5000", [4, 5]),
        ("Amount <= 5000", [1, 4, 5]),
        ("Amount > 5000", [2]),
        ("Amount >= 0", [1, 2, 4]),
        ("Amount > 1.2e4", [2]),
        ("Amount = -250", [5]),
        ("Amount = +0", [4]),
        ("Amount < -2.5E+2", []),
        ("Probability = 60.0", [2]),
        ("Rank__c = 2", [4]),
        ("rank__c IN (1, 3)", [1, 2]),
        ("Rank__c NOT IN (1, 3)", [3, 4, 5]),
        ("Rank__c IN (1, null)", [2, 3]),
        ("StageName IN ('prospecting', 'CLOSED LOST')", [1, 4, 5]),
        ("StageName NOT IN ('prospecting')", [2, 3, 5]),
        ("IsClosed = true", [3, 5]),
        ("IsClosed = FALSE", [1, 2, 4]),
        ("IsClosed != false", [3, 5]),
        ("CloseDate > 2026-11-30", [1, 5]),
        ("CloseDate = 2026-11-30", [2]),
        ("CloseDate <= 2026-11-30", [2, 3]),
        ("Id = '006Ab0000000001'", [1]),
        ("Id = '006Ab0000000001AAA'", [1]),
        ("Id = '006ab0000000001AAA'", []),
        ("Id > '006Ab0000000003AAA'", [4, 5]),
        ("Id IN ('006Ab0000000002', '006Ab0000000005AAA')", [2, 5]),
        ("OwnerId = '005000000000001'", [1, 3]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_comparison_operators(condition: str, expected: list[int]) -> None:
    """Each operator on each field type selects exactly the records Salesforce would."""
    assert ids_where(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("SystemModstamp = 2026-11-27T20:54:14Z", [1, 5]),
        ("SystemModstamp = 2026-11-27T20:54:14.000Z", [1, 5]),
        ("SystemModstamp = 2026-11-27T20:54:14+00:00", [1, 5]),
        ("SystemModstamp = 2026-11-27T15:54:14-05:00", [1, 5]),
        ("SystemModstamp = 2026-11-27T20:54:14.123Z", [2]),
        ("SystemModstamp > 2026-11-27T20:54:14Z", [2, 3]),
        ("SystemModstamp = 2026-11-27T00:00:00Z", [4]),
        ("SystemModstamp < 2026-11-27T01:00:00+01:00", []),
        ("SystemModstamp <= 2026-11-27T01:00:00+01:00", [4]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_datetime_literals_compare_as_instants(condition: str, expected: list[int]) -> None:
    """Datetime literals in Z, fractional and ±hh:mm forms compare by instant, not by text."""
    assert ids_where(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Name = null", [4, 5]),
        ("Name != null", [1, 2, 3]),
        ("Name = ''", [4, 5]),
        ("Name != ''", [1, 2, 3]),
        ("Description = null", [3, 4]),
        ("Amount = null", [3]),
        ("Amount != null", [1, 2, 4, 5]),
        ("Amount > null", []),
        ("Amount != 5000", [2, 3, 4, 5]),
        ("CloseDate = null", [4]),
        ("OwnerId = NULL", [5]),
        ("Name < 'zzz'", [1, 2, 3]),
        ("Name IN ('', 'cobalt')", [3, 4, 5]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_null_semantics(condition: str, expected: list[int]) -> None:
    """= null / != null test absence, != and NOT IN keep nulls, ranges skip them, '' text is null."""
    assert ids_where(condition) == expected


def test_missing_key_in_a_record_reads_as_null() -> None:
    """A record without the key behaves as if the field were null."""
    assert run("SELECT Id, Name FROM Opportunity WHERE Name = null", [{"Id": oid(9)}]) == [
        {"Id": oid(9), "Name": None}
    ]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Name LIKE 'acme%'", [1]),
        ("Name LIKE '%O%'", [2, 3]),
        ("Name LIKE 'C_balt'", [3]),
        ("Name LIKE 'C_lt'", []),
        ("Name LIKE '%'", [1, 2, 3]),
        ("Description LIKE '50\\% off\\_deal'", [2]),
        ("Description LIKE '50_ off_deal'", [2]),
        ("Description LIKE '5\\%'", []),
        ("Description LIKE 'line1%'", [1]),
        ("Description LIKE 'Line1\\nLine2'", [1]),
        ("Description LIKE 'a.c'", []),
        ("NOT Name LIKE 'a%'", [2, 3, 4, 5]),
        ("Id LIKE '006ab%'", [1, 2, 3, 4, 5]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_like(condition: str, expected: list[int]) -> None:
    """LIKE: '%' any run, '_' one char, backslash-escaped wildcards literal, case-insensitive."""
    assert ids_where(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("IsClosed = true OR Amount > 5000 AND Rank__c = 1", [2, 3, 5]),
        ("Amount > 5000 AND Rank__c = 1 OR IsClosed = true", [2, 3, 5]),
        ("(IsClosed = true OR Amount > 5000) AND Rank__c = 1", [2]),
        ("IsClosed = true AND Amount < 0 OR Rank__c = 3 AND Amount > 0", [1, 5]),
        ("NOT IsClosed = true", [1, 2, 4]),
        ("NOT NOT IsClosed = true", [3, 5]),
        ("NOT (Name = 'Cobalt' OR Amount < 0)", [1, 2, 4]),
        ("NOT Name = 'Cobalt' AND IsClosed = true", [5]),
        ("((Rank__c = 1))", [2]),
        ("isclosed = TRUE and (amount = NULL or RANK__C = 5)", [3, 5]),
        ("Amount > 0 AND Amount < 10000 AND StageName = 'prospecting'", [1]),
        ("Rank__c = 1 OR Rank__c = 2 OR Rank__c = 3", [1, 2, 4]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_logic_and_precedence(condition: str, expected: list[int]) -> None:
    """AND binds tighter than OR; NOT applies to the next test or parenthesised group."""
    assert ids_where(condition) == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("ORDER BY Amount", [3, 5, 4, 1, 2]),
        ("ORDER BY Amount DESC", [2, 1, 4, 5, 3]),
        ("ORDER BY Amount ASC NULLS LAST", [5, 4, 1, 2, 3]),
        ("ORDER BY Amount DESC NULLS FIRST", [3, 2, 1, 4, 5]),
        ("ORDER BY Name", [4, 5, 1, 2, 3]),
        ("ORDER BY IsClosed, Name DESC", [2, 1, 4, 3, 5]),
        ("ORDER BY SystemModstamp ASC, Id ASC", [4, 1, 5, 2, 3]),
        ("ORDER BY SystemModstamp DESC, Id DESC", [3, 2, 5, 1, 4]),
        ("ORDER BY StageName, Amount DESC NULLS LAST", [5, 3, 2, 1, 4]),
        ("ORDER BY OwnerId DESC, Id DESC", [4, 2, 3, 1, 5]),
        ("order by closedate nulls last limit 2", [3, 2]),
        ("ORDER BY Probability DESC LIMIT 3", [3, 2, 1]),
        ("LIMIT 2", [1, 2]),
        ("LIMIT 0", []),
        ("WHERE IsClosed = false ORDER BY Rank__c DESC LIMIT 1", [1]),
        ("", [1, 2, 3, 4, 5]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_order_by_and_limit(tail: str, expected: list[int]) -> None:
    """Multi-key ORDER BY with case-insensitive text and Salesforce null placement, then LIMIT."""
    assert ids_ordered(tail) == expected


@pytest.mark.parametrize(
    ("soql", "expected"),
    [
        ("SELECT COUNT() FROM Opportunity", 5),
        ("select count() from Opportunity where IsClosed = false", 3),
        ("SELECT COUNT() FROM Opportunity LIMIT 2", 2),
        ("SELECT COUNT() FROM Opportunity WHERE Name = 'nobody'", 0),
    ],
    ids=["all", "where", "limit", "none"],
)
def test_count(soql: str, expected: int) -> None:
    """COUNT() returns the number of matches (capped by LIMIT) as total_size and no rows."""
    query = parse(soql)
    result = execute(query, RECORDS, FIELDS)
    assert query.is_count
    assert (result.rows, result.total_size) == ([], expected)


def test_rows_follow_select_order_in_describe_case() -> None:
    """Rows hold the selected fields in SELECT order, keyed by the describe's spelling."""
    result = execute(
        parse("select name, ID, amount from opportunity where id = '006Ab0000000002'"), RECORDS, FIELDS
    )
    assert result.total_size == 1
    assert list(result.rows[0].items()) == [("Name", "beta expansion"), ("Id", oid(2)), ("Amount", 12000.5)]


def test_parse_exposes_object_count_and_limit() -> None:
    """parse() returns a frozen, hashable Query with sobject, is_count and limit as written."""
    query = parse("SELECT Id FROM Opportunity LIMIT 7")
    assert (query.sobject, query.is_count, query.limit) == ("Opportunity", False, 7)
    assert hash(query) == hash(parse("SELECT Id FROM Opportunity LIMIT 7"))
    with pytest.raises(AttributeError):
        query.limit = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("soql", "token"),
    [
        ("SELECT Id FRM Opportunity", "unexpected token: 'FRM'"),
        ("SELECT Id FROM Opportunity GROUP BY StageName", "unexpected token: 'GROUP'"),
        ("SELECT StageName FROM Opportunity HAVING COUNT(Id) > 1", "unexpected token: 'HAVING'"),
        ("SELECT Id, (SELECT Id FROM OpportunityLineItems) FROM Opportunity", "unexpected token: '('"),
        ("SELECT Id FROM Opportunity WHERE OwnerId IN (SELECT Id FROM User)", "unexpected token: 'SELECT'"),
        ("SELECT MAX(Amount) FROM Opportunity", "unexpected token: 'MAX'"),
        ("SELECT COUNT(Id) FROM Opportunity", "unexpected token: 'Id'"),
        ("SELECT FIELDS(ALL) FROM Opportunity", "unexpected token: 'FIELDS'"),
        (
            "SELECT Id FROM Opportunity WHERE DAY_ONLY(SystemModstamp) = 2026-11-27",
            "unexpected token: 'DAY_ONLY'",
        ),
        ("SELECT Owner.Name FROM Opportunity", "unexpected token: 'Owner.Name'"),
        ("SELECT Id FROM Opportunity WHERE Owner.Name = 'x'", "unexpected token: 'Owner.Name'"),
        ("SELECT Id FROM Opportunity ORDER BY Owner.Name", "unexpected token: 'Owner.Name'"),
        ("SELECT Id FROM Opportunity LIMIT 10 OFFSET 5", "unexpected token: 'OFFSET'"),
        ("SELECT Id FROM Opportunity OFFSET 5", "unexpected token: 'OFFSET'"),
        ("SELECT Id FROM Opportunity FOR UPDATE", "unexpected token: 'FOR'"),
        ("SELECT TYPEOF What WHEN Account THEN Name END FROM Event", "unexpected token: 'TYPEOF'"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = TODAY", "unexpected token: 'TODAY'"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = LAST_N_DAYS:30", "unexpected token: 'LAST_N_DAYS'"),
        ("SELECT Id FROM Opportunity WHERE Id = :recordId", "no viable alternative at character ':'"),
        ("SELECT Id FROM Opportunity WITH SECURITY_ENFORCED", "unexpected token: 'WITH'"),
        ("SELECT Id FROM Opportunity USING SCOPE Mine", "unexpected token: 'USING'"),
        ("SELECT Id FROM Opportunity WHERE StageName INCLUDES ('a')", "unexpected token: 'INCLUDES'"),
        ("SELECT Id, COUNT() FROM Opportunity", "unexpected token: 'COUNT'"),
        ("SELECT COUNT(), Id FROM Opportunity", "unexpected token: ','"),
        ("SELECT Id FROM Opportunity o", "unexpected token: 'o'"),
        ("SELECT Id FROM", "unexpected token: '<EOF>'"),
        ("SELECT FROM Opportunity", "unexpected token: 'FROM'"),
        ("SELECT Id, FROM Opportunity", "unexpected token: 'FROM'"),
        ("", "unexpected token: '<EOF>'"),
        ("UPDATE Opportunity SET Name = 'x'", "unexpected token: 'UPDATE'"),
        ("SELECT Id FROM Opportunity WHERE", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Opportunity WHERE Name = 'x", "mismatched character '<EOF>' expecting '''"),
        ('SELECT Id FROM Opportunity WHERE Name = "x"', "no viable alternative at character '\"'"),
        ("SELECT Id FROM Opportunity WHERE Name = 'a\\qb'", "Illegal character sequence '\\q'"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = 2026-13-01", "Invalid date: 2026-13-01"),
        ("SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-11-27T20:54:14", "Invalid datetime"),
        ("SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-11-27T25:00:00Z", "Invalid datetime"),
        ("SELECT Id FROM Opportunity WHERE Name IN ()", "unexpected token: ')'"),
        ("SELECT Id FROM Opportunity WHERE Name NOT LIKE 'a%'", "unexpected token: 'LIKE'"),
        ("SELECT Id FROM Opportunity WHERE Name == 'a'", "unexpected token: '='"),
        ("SELECT Id FROM Opportunity WHERE Name = 'a' AND", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Opportunity WHERE (Name = 'a'", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Opportunity WHERE Name = 'a')", "unexpected token: ')'"),
        ("SELECT Id FROM Opportunity WHERE Name LIKE 5", "unexpected token: '5'"),
        ("SELECT Id FROM Opportunity WHERE Amount IN (1, Name)", "unexpected token: 'Name'"),
        ("SELECT Id FROM Opportunity WHERE Amount = inf", "unexpected token: 'inf'"),
        ("SELECT Id FROM Opportunity LIMIT -1", "unexpected token: '-1'"),
        ("SELECT Id FROM Opportunity LIMIT 1.5", "unexpected token: '1.5'"),
        ("SELECT Id FROM Opportunity LIMIT '5'", "unexpected token: ''5''"),
        ("SELECT Id FROM Opportunity ORDER BY Name NULLS", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Opportunity LIMIT 5 ORDER BY Id", "unexpected token: 'ORDER'"),
        ("SELECT Id FROM Opportunity WHERE Name = 'a' WHERE Id = 'b'", "unexpected token: 'WHERE'"),
    ],
    ids=lambda v: (
        v.removeprefix("SELECT ")[:70] if isinstance(v, str) and v.startswith(("SELECT", "UPDATE")) else None
    ),
)
def test_malformed_queries_name_the_token(soql: str, token: str) -> None:
    """Anything outside the subset is MALFORMED_QUERY, the message naming where it went wrong."""
    with pytest.raises(SoqlError) as caught:
        parse(soql)
    assert caught.value.code == "MALFORMED_QUERY"
    assert token in caught.value.message


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Foo__c FROM Opportunity",
        "SELECT Id FROM Opportunity WHERE Foo__c = 1",
        "SELECT Id FROM Opportunity WHERE NOT (Id = 'x' OR Foo__c LIKE 'a')",
        "SELECT Id FROM Opportunity ORDER BY Foo__c",
        "SELECT COUNT() FROM Opportunity WHERE Foo__c IN (1)",
    ],
    ids=["select", "where", "nested", "order-by", "count"],
)
def test_unknown_field_is_invalid_field(soql: str) -> None:
    """A field the describe lacks, anywhere in the query, is INVALID_FIELD with Salesforce's text."""
    raised = error(soql)
    assert raised.code == "INVALID_FIELD"
    assert raised.message == (
        "No such column 'Foo__c' on entity 'Opportunity'. If you are attempting to use a custom field, be "
        "sure to append the '__c' after the custom field name. Please reference your WSDL or the describe "
        "call for the appropriate names."
    )


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("CloseDate = 2026-11-27T20:54:14Z", "'CloseDate' must be of type date and should not be enclosed"),
        ("CloseDate = '2026-11-27'", "'CloseDate' must be of type date and should not be enclosed"),
        ("SystemModstamp > 2026-11-27", "'SystemModstamp' must be of type dateTime"),
        ("Amount = '5'", "'Amount' must be of type currency and should not be enclosed"),
        ("Rank__c IN (1, 'two')", "'Rank__c' must be of type int and should not be enclosed"),
        ("Name = 5", "'Name' must be of type string and should be enclosed in quotes"),
        ("StageName = true", "'StageName' must be of type string"),
        ("IsClosed = 'true'", "'IsClosed' must be of type boolean"),
        ("Id = 5", "'Id' must be of type id"),
        ("Amount LIKE '5%'", "LIKE"),
        ("CloseDate LIKE '2026%'", "LIKE"),
    ],
    ids=lambda v: v if isinstance(v, str) and not v.startswith(("'", "LIKE")) else None,
)
def test_type_mismatch_is_invalid_type(condition: str, message: str) -> None:
    """A literal of the wrong kind for the field's describe type is INVALID_TYPE, naming the field."""
    raised = error(f"SELECT Id FROM Opportunity WHERE {condition}")
    assert raised.code == "INVALID_TYPE"
    assert message in raised.message


def test_duplicate_field_is_refused() -> None:
    """Selecting the same field twice (in any case) is refused, as Salesforce does."""
    raised = error("SELECT Id, Name, id FROM Opportunity")
    assert (raised.code, raised.message) == ("MALFORMED_QUERY", "duplicate field selected: Id")


@pytest.mark.parametrize(
    ("soql", "expected"),
    [
        (
            "SELECT Id FRM Opportunity",
            "\nSELECT Id FRM Opportunity\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FRM'",
        ),
        (
            "SELECT Id\nFROM Opportunity\nWHERE Bogus = 1",
            "\nWHERE Bogus = 1\n      ^\nERROR at Row:3:Column:7\nNo such column 'Bogus'",
        ),
    ],
    ids=["one-line", "multi-line"],
)
def test_salesforce_message_points_at_the_problem(soql: str, expected: str) -> None:
    """salesforce_message has the real envelope's line, caret and Row:Column position."""
    assert error(soql).salesforce_message.startswith(expected)


def test_referenced_fields() -> None:
    """referenced_fields names every field in SELECT, WHERE and ORDER BY; with a describe, in its case."""
    query = parse(
        "SELECT Id, name FROM Opportunity WHERE (IsClosed = false OR NOT amount IN (1)) "
        "AND stagename LIKE 'a%' ORDER BY systemmodstamp, Id"
    )
    assert referenced_fields(query) == {"Id", "name", "IsClosed", "amount", "stagename", "systemmodstamp"}
    assert referenced_fields(query, FIELDS) == {
        "Id",
        "Name",
        "IsClosed",
        "Amount",
        "StageName",
        "SystemModstamp",
    }
    with pytest.raises(SoqlError) as caught:
        referenced_fields(parse("SELECT Nope FROM Opportunity"), FIELDS)
    assert caught.value.code == "INVALID_FIELD"


class CountingFields(Mapping[str, str]):
    """A describe mapping that counts lookups, to show compilation does not repeat per record."""

    def __init__(self) -> None:
        self.lookups = 0

    def __getitem__(self, key: str) -> str:
        self.lookups += 1
        return FIELDS[key]

    def __iter__(self) -> Iterator[str]:
        return iter(FIELDS)

    def __len__(self) -> int:
        return len(FIELDS)


def test_where_is_compiled_once_not_walked_per_record() -> None:
    """Field resolution happens once per query: describe lookups do not grow with the record count."""
    query = parse("SELECT Id FROM Opportunity WHERE (Amount > 0 OR Name LIKE 'a%') AND NOT IsClosed = true")
    counts = []
    for copies in (1, 200):
        fields = CountingFields()
        execute(query, RECORDS * copies, fields)
        counts.append(fields.lookups)
    assert counts[0] == counts[1] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_keyset_paging_visits_every_open_record_once_in_order(seed: int) -> None:
    """The connector's keyset query, paged with LIMIT, returns each open record exactly once, in order."""
    rng = random.Random(seed)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    records: list[dict[str, object]] = [
        {"Id": f"006{n:012d}{rng.choice('ABC')}AA", "IsClosed": rng.random() < 0.3,
         "SystemModstamp": base + timedelta(seconds=rng.randint(0, 40))}
        for n in rng.sample(range(10**6), 300)
    ]  # fmt: skip
    template = (
        "SELECT Id, SystemModstamp FROM Opportunity WHERE IsClosed = false AND (SystemModstamp > {stamp} "
        "OR (SystemModstamp = {stamp} AND Id > {last})) ORDER BY SystemModstamp ASC, Id ASC LIMIT 7"
    )
    seen: list[object] = []
    stamp, last = base - timedelta(days=1), ""
    while True:
        page = execute(parse(format_soql(template, stamp=stamp, last=last)), records, FIELDS).rows
        if not page:
            break
        seen += [row["Id"] for row in page]
        stamp, last = page[-1]["SystemModstamp"], page[-1]["Id"]  # type: ignore[assignment]
    expected = sorted(
        (r for r in records if r["IsClosed"] is False), key=lambda r: (r["SystemModstamp"], r["Id"])
    )
    assert seen == [r["Id"] for r in expected]


def single_literal(soql: str) -> object:
    where = parse(soql).where
    assert isinstance(where, Compare)
    return where.value.value


@pytest.mark.parametrize(
    "text",
    ["it's", 'say "hi"', "back\\slash", "new\nline", "tab\there", "\r\n", "\b\f", "ünïcødé ✓ 日本", "🦆",
     "%_", "\\'", "'; DROP", "", " ", "\x00\x0b"],
)  # fmt: skip
def test_format_soql_strings_round_trip(text: str) -> None:
    """Every string format_soql quotes parses back to itself and matches the record holding it."""
    soql = format_soql("SELECT Id FROM Opportunity WHERE Name = {}", text)
    assert single_literal(soql) == text
    assert run(soql, [{"Id": oid(1), "Name": text}]) == [{"Id": oid(1)}]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_format_soql_round_trips_arbitrary_text(text: str) -> None:
    """Arbitrary text survives format_soql → parse, for =, and for LIKE with the :like spec."""
    soql = format_soql("SELECT Id FROM Opportunity WHERE Name = {}", text)
    assert single_literal(soql) == text
    records: list[dict[str, object]] = [
        {"Id": oid(1), "Name": text},
        {"Id": oid(2), "Name": "x" + text + "y"},
    ]
    assert run(soql, records) == [{"Id": oid(1)}]
    like = format_soql("SELECT Id FROM Opportunity WHERE Name LIKE '%{:like}%'", text)
    assert oid(2) in [row["Id"] for row in run(like, records)]
    assert run(format_soql("SELECT Id FROM Opportunity WHERE Name LIKE '{:like}'", text), records[1:]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=5), st.text())
def test_format_soql_lists_round_trip_for_in(values: list[str], other: str) -> None:
    """A list format_soql renders for IN parses to the same values and matches by membership."""
    soql = format_soql("SELECT Id FROM Opportunity WHERE Name IN {}", values)
    where = parse(soql).where
    assert isinstance(where, InList)
    assert [v.value for v in where.values] == values
    matched = run(soql, [{"Id": oid(1), "Name": other}])
    folded = {v.lower() or None for v in values}
    assert bool(matched) == ((other.lower() or None) in folded)


OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.tuples(st.just("Rank__c"), st.integers()),
        st.tuples(st.just("Amount"), st.floats(allow_nan=False, allow_infinity=False)),
        st.tuples(st.just("IsClosed"), st.booleans()),
        st.tuples(st.just("CloseDate"), st.dates()),
        st.tuples(
            st.just("SystemModstamp"),
            st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 1, 1), timezones=OFFSETS),
        ),
    )
)
def test_format_soql_values_round_trip(field_value: tuple[str, object]) -> None:
    """Numbers, booleans, dates and datetimes format_soql renders parse back and match their record."""
    field, value = field_value
    stored = value.replace(microsecond=0) if isinstance(value, datetime) else value
    soql = format_soql("SELECT Id FROM Opportunity WHERE {:literal} = {}", field, value)
    assert single_literal(soql) == stored
    assert run(soql, [{"Id": oid(1), field: stored}, {"Id": oid(2), field: None}]) == [{"Id": oid(1)}]


def test_format_soql_null_round_trips() -> None:
    """None renders as null and selects exactly the records lacking a value."""
    soql = format_soql("SELECT Id FROM Opportunity WHERE Amount = {}", None)
    assert single_literal(soql) is None
    assert ids_where("Amount = null") == [int(str(r["Id"])[14]) for r in run(soql)]


def test_query_is_reusable_against_changed_records() -> None:
    """One parsed Query can be executed again over new records (nothing cached from the last run)."""
    query = parse("SELECT Id FROM Opportunity WHERE Amount > 100 ORDER BY Amount DESC")
    assert [r["Id"] for r in execute(query, RECORDS, FIELDS).rows] == [oid(2), oid(1)]
    changed = [dict(r, Amount=-1) if r["Id"] == oid(2) else r for r in RECORDS]
    assert [r["Id"] for r in execute(query, changed, FIELDS).rows] == [oid(1)]


@pytest.mark.parametrize(
    ("where", "probe"),
    [
        ("Name IN ('Acme', 'BETA')", ("Name", {"acme", "beta"})),
        (f"Id = '{oid(1)}'", ("Id", {oid(1)[:15]})),
        (f"Name IN ('a', 'b') AND Id IN ('{oid(1)}')", ("Id", {oid(1)[:15]})),
        ("IsClosed = false AND (Amount > 1 AND name = 'a')", ("Name", {"a"})),
        ("Name = 5 AND Id = '006Ab0000000001'", ("Id", {"006Ab0000000001"})),
        ("Name = null", None),
        ("Name IN ('a', null)", None),
        ("Name IN ('a', '')", None),
        ("Name = 'a' OR Amount > 1", None),
        ("Name NOT IN ('a')", None),
        ("NOT Name = 'a'", None),
        ("Name != 'a'", None),
        ("StageName = 'a'", None),
    ],
)
def test_index_probe_takes_the_narrowest_indexed_conjunct_that_cannot_match_null(
    where: str, probe: tuple[str, set[object]] | None
) -> None:
    """Only a top-level `=`/IN on an indexed field, with no null or '' among its keys, is probed."""
    found = index_probe(parse(f"SELECT Id FROM Opportunity WHERE {where}"), FIELDS, {"Id", "Name"})
    assert (None if found is None else (found.field, set(found.keys))) == probe
