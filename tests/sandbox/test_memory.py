"""What a sandbox holds: only the CRMs it serves are seeded, and the structures a 100,000-deal run grows
(associations, search match lists) stay compact. Bytes are measured with tracemalloc on a small scale."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest
import requests
from hubspot import HubSpot
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from sandbox import SandboxOptions, soql
from sandbox.cli import main
from sandbox.hubspot.associations import AssociationStore
from sandbox.memory import release_free_memory
from tests.sandbox.clients import hs_client, sf_client
from tests.sandbox.conftest import Factory

LINKS = 2_000


def _open_deals(sf: Salesforce) -> int:
    return int(sf.query("SELECT COUNT() FROM Opportunity")["totalSize"])


def _hs_deals(hs: HubSpot) -> int:
    return len(hs.crm.deals.basic_api.get_page(limit=100).results)


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_a_sandbox_for_one_crm_seeds_only_its_deals_and_the_other_still_answers(
    make_sandbox: Factory, crm: str
) -> None:
    """The unserved CRM logs in, names its org / owners and answers with no deals (not an error)."""
    sb = make_sandbox(deals=30, crms=(crm,))
    sf, hs = sf_client(sb), hs_client(sb)
    assert _open_deals(sf) == (30 if crm == "salesforce" else 0)
    assert _hs_deals(hs) == (30 if crm == "hubspot" else 0)
    assert sf.query("SELECT Id FROM Organization")["totalSize"] == 1
    assert len(hs.crm.owners.owners_api.get_page().results) == 6
    assert len(sb.people(crm).deals()) == 30
    sb.reset()
    assert len(sb.people(crm).deals()) == 30
    assert _open_deals(sf) == (30 if crm == "salesforce" else 0)


@pytest.mark.parametrize("crms", [(), ("pipedrive",), ("hubspot", "zoho")])
def test_crms_must_name_salesforce_or_hubspot(crms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="crms"):
        SandboxOptions(crms=crms)


def test_the_crm_option_of_the_process_seeds_one_crm() -> None:
    """`python -m sandbox --deals N --crm hubspot`: HubSpot holds the deals, Salesforce none."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--deals", "25", "--crm", "hubspot"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        snapshot = requests.get(info["control"] + "/snapshot", timeout=10).json()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert len(snapshot["hubspot"]["deals"]) == 25
    assert snapshot["salesforce"]["Opportunity"] == []


def test_an_unknown_crm_option_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--crm", "pipedrive"])
    assert exit_info.value.code == 2
    assert "--crm" in capsys.readouterr().err


def _link_all(store: AssociationStore) -> None:
    for i in range(LINKS):
        store.link("tasks", str(20_000_000_001 + i), "deals", str(10_000_000_001 + i), 216)


def test_associations_cost_a_few_hundred_bytes_a_link() -> None:
    """A 100,000-deal first run links 57,000 tasks: at most 300 bytes a link both ways (the dict-of-sets
    store held about 1,100), ids included."""
    store = AssociationStore()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _link_all(store)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < LINKS * 300, f"{grown / LINKS:.0f} bytes a link"
    assert store.targets("deals", "10000000001", "tasks") == [("20000000001", {217})]


def test_associations_keep_their_behaviour() -> None:
    """Both directions, extra type ids kept per link, sorted targets, unlink and removal of a record."""
    store = AssociationStore()
    store.link("deals", "10", "tasks", "21", 217)
    store.link("deals", "10", "tasks", "3", 217)
    store.link("tasks", "21", "deals", "10", 99)
    assert store.targets("deals", "10", "tasks") == [("3", {217}), ("21", {217, 99})]
    assert store.targets("tasks", "21", "deals") == [("10", {216, 99})]
    assert store.targets("tasks", "21", "tasks") == []
    assert store.unlink("tasks", "21", "deals", "10") is True
    assert store.unlink("tasks", "21", "deals", "10") is False
    assert store.targets("deals", "10", "tasks") == [("3", {217})]
    store.link("tasks", "21", "deals", "10", 216)
    assert store.targets("tasks", "21", "deals") == [("10", {216})]
    store.remove_object("deals", "10")
    assert store.targets("tasks", "3", "deals") == store.targets("tasks", "21", "deals") == []
    store.link("notes", "1", "deals", "2", 5)
    assert store.targets("deals", "2", "notes") == [("1", {5})]
    store.clear()
    assert store.targets("notes", "1", "deals") == []


def test_releasing_free_memory_is_safe_to_call_anywhere() -> None:
    """glibc returns free heap pages; elsewhere it is a no-op that says so."""
    assert release_free_memory() in {True, False}


def test_a_finished_query_is_dropped_when_the_next_query_opens_a_locator(make_sandbox: Factory) -> None:
    """A result read to its last page stays readable (a retried page) until another query opens a
    locator; then it goes, rather than holding 100,000 rows until ten newer queries push it out. A query
    still being paged is kept."""
    sb = make_sandbox(deals=450, crms=("salesforce",))
    sf = sf_client(sb)
    small = {"Sforce-Query-Options": "batchSize=200"}
    done = sf.query("SELECT Id FROM Opportunity", headers=small)
    middle = sf.query_more(done["nextRecordsUrl"], identifier_is_url=True)
    last = sf.query_more(middle["nextRecordsUrl"], identifier_is_url=True)
    assert last["done"] and len(last["records"]) == 50
    again = sf.query_more(middle["nextRecordsUrl"], identifier_is_url=True)
    assert again["records"] == last["records"]
    open_one = sf.query("SELECT Id, Name FROM Opportunity", headers=small)
    sf.query("SELECT Id, Amount FROM Opportunity", headers=small)
    with pytest.raises(SalesforceError, match="INVALID_QUERY_LOCATOR"):
        sf.query_more(middle["nextRecordsUrl"], identifier_is_url=True)
    assert len(sf.query_more(open_one["nextRecordsUrl"], identifier_is_url=True)["records"]) == 200


def test_query_values_are_the_rows_of_execute_as_tuples() -> None:
    """The REST query's tuple rows hold what `execute`'s dict rows hold, in SELECT order."""
    fields = {"Id": "id", "Name": "string", "Amount": "currency"}
    records = [{"Id": f"006{i:015d}", "Name": f"Deal {i}", "Amount": float(i)} for i in range(5)]
    query = soql.parse("SELECT Name, Id FROM Opportunity WHERE Amount > 1 ORDER BY Amount DESC")
    columns, rows, total = soql.execute_values(query, records, fields)
    expected = soql.execute(query, records, fields)
    assert columns == ("Name", "Id") and total == expected.total_size == 3
    assert [dict(zip(columns, row, strict=True)) for row in rows] == expected.rows
    count = soql.parse("SELECT COUNT() FROM Opportunity WHERE Amount > 1")
    assert soql.execute_values(count, records, fields) == ((), [], 3)
