"""Batched write-back and tasks: 207 rows read one by one, 400 narrowed, creates reconciled by key."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3.exceptions
from hubspot.crm.deals.exceptions import ApiException

from connectors.errors import SchemaDriftError
from connectors.hubspot.auth import StaticToken
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import status_properties, to_deal
from connectors.hubspot.ratelimit import RateLimiter
from connectors.hubspot.settings import DEFAULT_PROPERTIES, HubSpotSettings
from connectors.hubspot.tasks import TaskWriter
from connectors.hubspot.write import batch_update, read_results
from connectors.model import OutcomeKind, StatusWrite, TaskAction, TaskWrite
from connectors.registry import Intent
from rules.model import Status
from tests.connectors.hs_support import RawResponse

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _obj(obj_id: str, props: dict[str, str] | None = None) -> dict[str, Any]:
    stamp = NOW.isoformat().replace("+00:00", "Z")
    return {
        "id": obj_id,
        "properties": props or {},
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }


def _batch(results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    stamp = NOW.isoformat().replace("+00:00", "Z")
    return {"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp, **extra}


def test_207_rows_read_one_by_one() -> None:
    """A 207 body: ids in results are ok, ids named in errors carry HubSpot's category."""
    response = _batch(
        [_obj("1"), _obj("3")],
        numErrors=1,
        errors=[
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Property values were not valid",
                "context": {"ids": ["2"]},
                "errors": [],
                "links": {},
            }
        ],
    )
    rows = read_results(response, ["1", "2", "3", "4"], lambda r: r["id"])
    assert rows["1"].ok and rows["3"].ok
    assert not rows["2"].ok and rows["2"].code == "VALIDATION_ERROR"
    assert not rows["4"].ok and rows["4"].code == "NO_RESULT"


def test_200_response_all_ok() -> None:
    """A plain 200 batch response marks every row ok."""
    assert read_results(_batch([_obj("1")]), ["1"], lambda r: r["id"])["1"].ok


class FakeDealsBatch:
    """`update_with_http_info`: refuses the whole batch (400) when it holds a bad id, else 200."""

    def __init__(self, bad: set[str], missing_property: str | None = None) -> None:
        self.bad = bad
        self.missing_property = missing_property
        self.sizes: list[int] = []
        self.api_client = SimpleNamespace(configuration=SimpleNamespace(access_token=""), close=lambda: None)

    def update_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        ids = [row["id"] for row in body["inputs"]]
        self.sizes.append(len(ids))
        if self.missing_property:
            exc = ApiException(status=400, reason="Bad Request")
            exc.body = json.dumps(
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": f'Property "{self.missing_property}" does not exist',
                    "errors": [
                        {
                            "code": "PROPERTY_DOESNT_EXIST",
                            "context": {"propertyName": [self.missing_property]},
                        }
                    ],
                }
            )
            exc.headers = {}
            raise exc
        if self.bad & set(ids):
            exc = ApiException(status=400, reason="Bad Request")
            exc.body = json.dumps(
                {"status": "error", "category": "VALIDATION_ERROR", "message": "invalid value"}
            )
            exc.headers = {}
            raise exc
        return RawResponse(_batch([_obj(i) for i in ids]))


def _client(sdk: Any) -> HubSpotClient:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    from connectors.retry import RetryPolicy

    policy = RetryPolicy(max_attempts=3, sleep=sleep, rng=random.Random(3))
    limiter = RateLimiter(1000, 100, clock=lambda: now[0], sleep=sleep)
    return HubSpotClient(HubSpotSettings(), StaticToken("t"), policy, limiter, sdk=sdk)


def test_chunks_of_100_and_whole_batch_400_narrowed_to_the_bad_row() -> None:
    """250 rows go in chunks of ≤100; a batch refused for one bad row is split until only it is rejected."""
    api = FakeDealsBatch(bad={"137"})
    client = _client(SimpleNamespace(crm=SimpleNamespace(deals=SimpleNamespace(batch_api=api))))
    rows = [(str(i), {"bant_status": "qualified"}) for i in range(250)]
    results = batch_update(client, "deals_batch", rows, "deal")
    assert max(api.sizes[:3]) <= 100
    assert [i for i, r in results.items() if not r.ok] == ["137"]
    assert sum(1 for r in results.values() if r.ok) == 249
    assert client.calls <= 3 + 2 * 7


def test_missing_property_on_write_is_schema_drift() -> None:
    """A 400 saying a property does not exist stops with SchemaDriftError naming it; no row is rejected."""
    api = FakeDealsBatch(bad=set(), missing_property="bant_status")
    client = _client(SimpleNamespace(crm=SimpleNamespace(deals=SimpleNamespace(batch_api=api))))
    with pytest.raises(SchemaDriftError) as info:
        batch_update(client, "deals_batch", [("1", {"bant_status": "x"})], "deal")
    assert info.value.fields == ("bant_status",)


def test_deal_mapping_reads_inputs_and_flags() -> None:
    """Properties map to Deal fields; flags come from the output properties, missing split on ';'."""
    props = {
        "dealname": "Acme",
        "dealstage": "qualifiedtobuy",
        "pipeline": "default",
        "dealtype": "poc",
        "amount": "12000.50",
        "closedate": "2026-04-30T00:00:00.000Z",
        "hubspot_owner_id": "77",
        "hs_lastmodifieddate": "2026-03-02T08:59:59.123Z",
        "bant_budget": "TBD",
        "bant_authority": "",
        "bant_need": None,
        "bant_timing": "Q2",
        "bant_status": "poc_unqualified",
        "bant_missing": "budget;authority;need",
        "bant_score": "25",
        "bant_checked_at": "2026-03-01T10:00:00.000Z",
        "bant_flagged_since": "2026-02-20",
    }
    deal = to_deal("42", props, DEFAULT_PROPERTIES)
    assert deal.id == "42" and deal.owner_id == "77" and deal.deal_type == "poc"
    assert deal.close_date == date(2026, 4, 30)
    assert deal.modified_at == datetime(2026, 3, 2, 8, 59, 59, 123000, tzinfo=UTC)
    assert deal.budget == "TBD" and deal.authority == "" and deal.need is None
    assert deal.flags.missing == ("budget", "authority", "need")
    assert deal.flags.score == 25 and deal.flags.status == "poc_unqualified"
    assert deal.flagged_since == date(2026, 2, 20)


def test_status_properties_format() -> None:
    """A StatusWrite becomes HubSpot strings: ISO millis Z datetime, ISO date, ';'-joined missing."""
    write = StatusWrite("1", Status.NEEDS_QUALIFICATION, ("budget", "timing"), 50, NOW, None)
    props = status_properties(write, DEFAULT_PROPERTIES)
    assert props == {
        "bant_status": "needs_qualification",
        "bant_missing": "budget;timing",
        "bant_score": "50",
        "bant_checked_at": "2026-03-02T09:00:00.000Z",
        "bant_flagged_since": "",
    }


class FakeTasks:
    """In-memory HubSpot tasks with a unique bant_sync_key; can commit a create then drop the connection."""

    def __init__(self, drop_creates: int = 0) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.associations: dict[str, list[Any]] = {}
        self.drop_creates = drop_creates
        self.create_calls = 0
        self.api_client = SimpleNamespace(configuration=SimpleNamespace(access_token=""), close=lambda: None)

    def create_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        self.create_calls += 1
        results = []
        for row in body["inputs"]:
            key = row["properties"]["bant_sync_key"]
            assert all(t["bant_sync_key"] != key for t in self.tasks.values()), "duplicate task created"
            task_id = str(9000 + len(self.tasks))
            self.tasks[task_id] = dict(row["properties"])
            self.associations[task_id] = row["associations"]
            results.append(_obj(task_id, dict(row["properties"])))
        if self.drop_creates:
            self.drop_creates -= 1
            raise urllib3.exceptions.ProtocolError("Connection aborted.")
        return RawResponse(_batch(results), 201)

    def read_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        assert body["idProperty"] == "bant_sync_key"
        wanted = {row["id"] for row in body["inputs"]}
        found = [_obj(i, dict(t)) for i, t in self.tasks.items() if t["bant_sync_key"] in wanted]
        return RawResponse(_batch(found))

    def update_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        for row in body["inputs"]:
            self.tasks[row["id"]].update(row["properties"])
        results = [_obj(row["id"]) for row in body["inputs"]]
        return RawResponse(_batch(results))


def _task_writer(fake: FakeTasks, ledger: Any) -> tuple[TaskWriter, HubSpotClient]:
    sdk = SimpleNamespace(crm=SimpleNamespace(objects=SimpleNamespace(tasks=SimpleNamespace(batch_api=fake))))
    client = _client(sdk)
    writer = TaskWriter(client, ledger, "bant_sync_key")
    writer.association_type_id = 216
    return writer, client


def _create(deal: str) -> TaskWrite:
    return TaskWrite(
        TaskAction.CREATE,
        f"key-{deal}",
        deal,
        "77",
        "[bant-sync] confirm Budget",
        "Budget?",
        date(2026, 3, 5),
    )


def test_create_associates_in_the_same_call_and_confirms_the_ledger(hubspot_ledger: Any) -> None:
    """One batch/create call carries the task->deal association (type 216); the ledger holds the id."""
    fake = FakeTasks()
    writer, _c = _task_writer(fake, hubspot_ledger)
    outcomes = writer.apply([_create("1"), _create("2")], {"1": ("budget",), "2": ("budget",)})
    assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN, OutcomeKind.WRITTEN]
    assert fake.create_calls == 1
    assoc = fake.associations[outcomes[0].task_id or ""][0]
    assert assoc["to"] == {"id": "1"} and assoc["types"][0]["associationTypeId"] == 216
    assert hubspot_ledger.entries["key-1"].task_id == outcomes[0].task_id
    assert hubspot_ledger.entries["key-1"].state == "open"


def test_commit_then_drop_is_reconciled_by_key_without_duplicate(hubspot_ledger: Any) -> None:
    """A create applied but whose response was lost is found by key; nothing is created twice."""
    fake = FakeTasks(drop_creates=1)
    writer, _c = _task_writer(fake, hubspot_ledger)
    outcomes = writer.apply([_create("1"), _create("2")], {})
    assert all(o.kind is OutcomeKind.WRITTEN for o in outcomes)
    assert len(fake.tasks) == 2
    assert fake.create_calls == 1
    assert {e.task_id for e in hubspot_ledger.entries.values()} == set(fake.tasks)


def test_pending_intent_from_a_crash_is_confirmed_before_creating(hubspot_ledger: Any) -> None:
    """An intent left by a killed run whose task exists is confirmed, and the CREATE becomes an update."""
    fake = FakeTasks()
    fake.tasks["9000"] = {"bant_sync_key": "key-1", "hs_task_status": "NOT_STARTED"}
    hubspot_ledger.intend([Intent("key-1", "1", ("budget",))])
    writer, _c = _task_writer(fake, hubspot_ledger)
    outcomes = writer.apply([_create("1")], {"1": ("budget",)})
    assert outcomes[0].kind is OutcomeKind.WRITTEN and outcomes[0].task_id == "9000"
    assert fake.create_calls == 0
    assert len(fake.tasks) == 1


def test_update_and_complete_use_the_ledger_task_id(hubspot_ledger: Any) -> None:
    """UPDATE rewrites subject/body in place; COMPLETE sets COMPLETED; the ledger state follows."""
    fake = FakeTasks()
    writer, _c = _task_writer(fake, hubspot_ledger)
    created = writer.apply([_create("1")], {"1": ("budget",)})[0]
    update = TaskWrite(
        TaskAction.UPDATE, "key-1", "1", "77", "[bant-sync] confirm Timing", "Timing?", date(2026, 3, 6)
    )
    assert writer.apply([update], {"1": ("timing",)})[0].kind is OutcomeKind.WRITTEN
    assert fake.tasks[created.task_id or ""]["hs_task_subject"] == "[bant-sync] confirm Timing"
    complete = TaskWrite(TaskAction.COMPLETE, "key-1", "1", "77", "", "", date(2026, 3, 6))
    assert writer.apply([complete], {})[0].kind is OutcomeKind.WRITTEN
    assert fake.tasks[created.task_id or ""]["hs_task_status"] == "COMPLETED"
    assert hubspot_ledger.entries["key-1"].state == "completed"
    assert len(fake.tasks) == 1
