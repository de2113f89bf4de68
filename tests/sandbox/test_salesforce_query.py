"""SOQL over REST through simple-salesforce: paging, batch-size header, snapshots, value formats, errors."""

from __future__ import annotations

import re

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound
from simple_salesforce.format import format_soql

from sandbox import Sandbox
from tests.sandbox.clients import sf_client
from tests.sandbox.conftest import Factory

SF_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


@pytest.fixture
def big(make_sandbox: Factory) -> Sandbox:
    return make_sandbox(deals=2500)


def test_default_page_is_2000_and_next_records_url_pages_the_rest(big: Sandbox) -> None:
    """2,500 records come back as a 2,000-record page with nextRecordsUrl, then a final 500."""
    sf = sf_client(big)
    first = sf.query("SELECT Id FROM Opportunity")
    assert (first["totalSize"], len(first["records"]), first["done"]) == (2500, 2000, False)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert (len(second["records"]), second["done"]) == (500, True)
    assert "nextRecordsUrl" not in second
    ids = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Opportunity")]
    assert len(ids) == len(set(ids)) == 2500


@pytest.mark.parametrize(
    ("asked", "served"),
    [("batchSize=500", 500), ("batchSize=50", 200), ("batchSize=5000", 2000)],
    ids=["honoured", "raised-to-200", "capped-at-2000"],
)
def test_batch_size_header_is_honoured_within_200_to_2000(big: Sandbox, asked: str, served: int) -> None:
    """Sforce-Query-Options: batchSize=N sets the page size, clamped to 200..2000."""
    page = sf_client(big).query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": asked})
    assert len(page["records"]) == served


def test_count_query_returns_only_the_total(sf: Salesforce, sb: Sandbox) -> None:
    """SELECT COUNT() answers totalSize with no records."""
    result = sf.query("SELECT COUNT() FROM Opportunity WHERE IsClosed = false")
    expected = sum(1 for r in sb.salesforce.records("Opportunity") if not r["IsClosed"])
    assert (result["totalSize"], result["records"], result["done"]) == (expected, [], True)


def test_values_and_attributes_are_serialised_the_salesforce_way(sf: Salesforce) -> None:
    """Datetimes as 2026-03-02T09:00:00.000+0000, dates as YYYY-MM-DD, attributes with type and url."""
    record = sf.query("SELECT Id, CloseDate, SystemModstamp, Amount, IsClosed FROM Opportunity LIMIT 1")[
        "records"
    ][0]
    assert SF_DATETIME.match(record["SystemModstamp"])
    assert re.match(r"^\d{4}-\d\d-\d\d$", record["CloseDate"])
    assert isinstance(record["Amount"], float) and isinstance(record["IsClosed"], bool)
    assert record["attributes"] == {
        "type": "Opportunity",
        "url": f"/services/data/v59.0/sobjects/Opportunity/{record['Id']}",
    }
    assert len(record["Id"]) == 18 and record["Id"].startswith("006")


def test_later_pages_come_from_the_snapshot_taken_by_the_query(big: Sandbox) -> None:
    """A record edited after the first page is served as it was when the query ran."""
    sf = sf_client(big)
    first = sf.query("SELECT Id, Name FROM Opportunity ORDER BY Name")
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)["records"]
    second = sf.query("SELECT Id, Name FROM Opportunity ORDER BY Name")
    target = rest[0]
    big.salesforce.update("Opportunity", target["Id"], {"Name": "Renamed after the query ran"})
    again = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)["records"]
    assert again[0] == target


def test_a_cursor_query_sees_exactly_the_records_changed_after_it(sb: Sandbox, sf: Salesforce) -> None:
    """The connector's incremental query (SystemModstamp > cursor) returns only later edits, in order."""
    sb.clock.freeze()
    cursor = sb.clock.now()
    open_ids = [r["Id"] for r in sb.salesforce.records("Opportunity") if not r["IsClosed"]][:3]
    for record_id in open_ids:
        sb.clock.advance(1)
        sb.salesforce.update("Opportunity", record_id, {"BANT_Need__c": "Now a proper need statement"})
    soql = format_soql(
        "SELECT Id, SystemModstamp FROM Opportunity WHERE IsClosed = false AND SystemModstamp > {} "
        "ORDER BY SystemModstamp ASC, Id ASC",
        cursor,
    )
    assert [r["Id"] for r in sf.query_all(soql)["records"]] == open_ids


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELEC Id FROM Opportunity", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
        ("SELECT Id FROM Opportunity WHERE Amount = 'lots'", "INVALID_TYPE"),
    ],
    ids=["typo", "unsupported-clause", "unknown-field", "unknown-object", "wrong-literal-type"],
)
def test_query_errors_come_in_the_salesforce_envelope(sf: Salesforce, soql: str, code: str) -> None:
    """Bad SOQL is a 400 with [{"errorCode", "message"}], which simple-salesforce raises as malformed."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.status == 400
    assert caught.value.content[0]["errorCode"] == code
    assert caught.value.content[0]["message"]


def test_an_unknown_query_locator_is_rejected(sf: Salesforce) -> None:
    """A nextRecordsUrl the sandbox never issued gets INVALID_QUERY_LOCATOR."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more("01g0000000000000000-2000")
    assert caught.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


@pytest.mark.parametrize("version", ["59.0", "60.0", "61.0", "62.0"])
def test_api_versions_59_to_62_are_served(sb: Sandbox, version: str) -> None:
    """Every supported API version answers queries under its own path."""
    result = sf_client(sb, version=version).query("SELECT Id FROM User LIMIT 1")
    assert result["records"][0]["attributes"]["url"].startswith(f"/services/data/v{version}/")


def test_an_older_api_version_is_not_found(sb: Sandbox) -> None:
    """v58.0 paths are 404 NOT_FOUND."""
    with pytest.raises(SalesforceResourceNotFound):
        sf_client(sb, version="58.0").query("SELECT Id FROM User")


@pytest.mark.parametrize("clock_set_back", [False, True], ids=["in-order", "clock-set-back"])
def test_modstamp_bounded_queries_match_a_full_scan(big: Sandbox, clock_set_back: bool) -> None:
    """Queries bounded below by SystemModstamp read only the table tail; rows equal an unbounded scan."""
    sf = sf_client(big)
    big.clock.freeze()
    cursor = big.clock.now()
    ids = [str(r["Id"]) for r in big.salesforce.records("Opportunity")]
    for step, record_id in enumerate(ids[::250]):
        big.clock.advance(-3600 if clock_set_back and step == 3 else 1)
        big.salesforce.update("Opportunity", record_id, {"BANT_Score__c": step})
    for template in (
        "SELECT Id FROM Opportunity WHERE SystemModstamp > {stamp} ORDER BY SystemModstamp, Id",
        "SELECT Id FROM Opportunity WHERE IsClosed = false AND (SystemModstamp > {stamp} OR "
        "(SystemModstamp = {stamp} AND Id > '006')) ORDER BY SystemModstamp, Id",
    ):
        bounded = sf.query_all(format_soql(template.replace("{stamp}", "{0}"), cursor))["records"]
        unbounded = sf.query_all(
            format_soql(
                "SELECT Id FROM Opportunity WHERE NOT SystemModstamp <= {} ORDER BY SystemModstamp, Id",
                cursor,
            )
        )["records"]
        assert [r["Id"] for r in bounded] == [r["Id"] for r in unbounded] and bounded


def test_a_field_deleted_after_the_query_is_left_out_of_its_later_pages(big: Sandbox) -> None:
    """A selected field deleted between pages is absent from the next page's records (the other fields
    are served), a new query naming it is INVALID_FIELD, and once restored it is served again."""
    sf = sf_client(big)
    first = sf.query("SELECT Id, Name, BANT_Budget__c FROM Opportunity")
    assert all("BANT_Budget__c" in r for r in first["records"])
    big.salesforce.delete_field("Opportunity", "BANT_Budget__c")
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)["records"]
    assert rest and all("BANT_Budget__c" not in r and "Name" in r and "Id" in r for r in rest)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, BANT_Budget__c FROM Opportunity")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    big.salesforce.restore_field("Opportunity", "BANT_Budget__c")
    again = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)["records"]
    assert all("BANT_Budget__c" in r for r in again)
