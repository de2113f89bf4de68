"""Batched write-back and tasks: 207 rows read one by one, 400 narrowed, tasks found by key, created
without duplicates, written field by field; the portal id from the account details."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3.exceptions
from hubspot.crm.deals.exceptions import ApiException

from connectors.errors import ConfigurationError, SchemaDriftError
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.auth import StaticToken
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import deal_table, status_properties, to_deal
from connectors.hubspot.ratelimit import RateLimiter
from connectors.hubspot.settings import DEFAULT_PROPERTIES, HubSpotSettings
from connectors.hubspot.tasks import TaskWriter
from connectors.hubspot.write import batch_update, read_results
from connectors.model import CrmTask, OutcomeKind, StatusWrite, TaskAction, TaskField, TaskWrite
from connectors.registry import ConnectorContext
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
        "bant_reasons": "Budget: 'TBD' is a placeholder — What budget is set aside?",
        "bant_snooze_until": "2026-03-20",
        "bant_snooze_reason": "Budget cycle starts in April",
        "hs_updated_by_user_id": "9001",
    }
    deal = to_deal("42", props, deal_table(DEFAULT_PROPERTIES))
    assert deal.id == "42" and deal.owner_id == "77" and deal.deal_type == "poc"
    assert deal.close_date == date(2026, 4, 30)
    assert deal.modified_at == datetime(2026, 3, 2, 8, 59, 59, 123000, tzinfo=UTC)
    assert deal.budget == "TBD" and deal.authority == "" and deal.need is None
    assert deal.flags.missing == ("budget", "authority", "need")
    assert deal.flags.score == 25 and deal.flags.status == "poc_unqualified"
    assert deal.flagged_since == date(2026, 2, 20)
    assert deal.flags.reasons == "Budget: 'TBD' is a placeholder — What budget is set aside?"
    assert (deal.snooze_until, deal.snooze_reason) == (date(2026, 3, 20), "Budget cycle starts in April")
    assert deal.modified_by == "9001"


def test_status_properties_format() -> None:
    """A StatusWrite becomes HubSpot strings: ISO millis Z datetime, ISO date, ';'-joined missing."""
    reasons = "Budget: missing — What budget is set aside?\nTiming: missing — By when?"
    write = StatusWrite("1", Status.NEEDS_QUALIFICATION, ("budget", "timing"), 50, NOW, None, reasons)
    props = status_properties(write, deal_table(DEFAULT_PROPERTIES))
    assert props == {
        "bant_status": "needs_qualification",
        "bant_missing": "budget;timing",
        "bant_score": "50",
        "bant_checked_at": "2026-03-02T09:00:00.000Z",
        "bant_flagged_since": "",
        "bant_reasons": reasons,
    }


class FakeTasks:
    """In-memory HubSpot tasks with a unique bant_sync_key. `drops` says, per create call, how many of its
    rows are committed before the connection drops (the answer is lost); later calls answer normally."""

    def __init__(self, drops: tuple[int, ...] = ()) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.associations: dict[str, list[Any]] = {}
        self.drops = list(drops)
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.api_client = SimpleNamespace(configuration=SimpleNamespace(access_token=""), close=lambda: None)

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [body for name, body in self.log if name == method]

    def create_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        self.log.append(("create", body))
        commit = self.drops.pop(0) if self.drops else None
        results = []
        for row in body["inputs"][:commit]:
            key = row["properties"]["bant_sync_key"]
            assert all(t["bant_sync_key"] != key for t in self.tasks.values()), "duplicate task created"
            task_id = str(9000 + len(self.tasks))
            self.tasks[task_id] = dict(row["properties"])
            self.associations[task_id] = row["associations"]
            results.append(_obj(task_id, dict(row["properties"])))
        if commit is not None:
            raise urllib3.exceptions.ProtocolError("Connection aborted.")
        return RawResponse(_batch(results), 201)

    def read_with_http_info(self, body: dict[str, Any], **kwargs: Any) -> Any:
        self.log.append(("read", {**body, "archived": kwargs.get("archived")}))
        wanted = {row["id"] for row in body["inputs"]}
        found = [_obj(i, dict(t)) for i, t in self.tasks.items() if t["bant_sync_key"] in wanted]
        return RawResponse(_batch(found))

    def update_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        self.log.append(("update", body))
        for row in body["inputs"]:
            self.tasks[row["id"]].update(row["properties"])
        results = [_obj(row["id"]) for row in body["inputs"]]
        return RawResponse(_batch(results))


def _task_writer(fake: FakeTasks) -> TaskWriter:
    sdk = SimpleNamespace(crm=SimpleNamespace(objects=SimpleNamespace(tasks=SimpleNamespace(batch_api=fake))))
    writer = TaskWriter(_client(sdk), "bant_sync_key")
    writer.association_type_id = 216
    return writer


def _write(
    deal: str,
    action: TaskAction = TaskAction.CREATE,
    task_id: str | None = None,
    fields: frozenset[TaskField] = frozenset(),
) -> TaskWrite:
    return TaskWrite(
        action,
        f"key-{deal}",
        deal,
        "77",
        "[bant-sync] confirm Budget",
        "Budget?",
        date(2026, 3, 5),
        task_id=task_id,
        fields=fields,
    )


def test_create_sends_every_owned_property_and_the_association_in_one_call() -> None:
    """One batch/create call: each task carries its key, content, noon-UTC due date, owner, NOT_STARTED
    status and the task->deal association (type 216)."""
    fake = FakeTasks()
    outcomes = _task_writer(fake).apply([_write("1"), _write("2")])
    assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN, OutcomeKind.WRITTEN]
    assert [o.task_id for o in outcomes] == ["9000", "9001"]
    (body,) = fake.calls("create")
    assert body["inputs"][0] == {
        "properties": {
            "bant_sync_key": "key-1",
            "hs_task_subject": "[bant-sync] confirm Budget",
            "hs_task_body": "Budget?",
            "hs_task_priority": "HIGH",
            "hs_timestamp": "2026-03-05T12:00:00.000Z",
            "hubspot_owner_id": "77",
            "hs_task_status": "NOT_STARTED",
            "hs_task_type": "TODO",
        },
        "associations": [
            {
                "to": {"id": "1"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}],
            }
        ],
    }
    assert fake.calls("read") == []


@pytest.mark.parametrize(
    ("drops", "log", "resent"),
    [
        ((2,), ["create", "read"], []),
        ((0,), ["create", "read", "create"], ["key-1", "key-2"]),
        ((1,), ["create", "read", "create"], ["key-2"]),
    ],
    ids=["all-committed", "none-committed", "first-committed"],
)
def test_a_create_whose_answer_was_lost_is_looked_up_before_it_is_resent(
    drops: tuple[int, ...], log: list[str], resent: list[str]
) -> None:
    """The connection drops after a create call: before retrying, the chunk's keys are read by idProperty
    and only the tasks HubSpot does not hold are sent again; no task is ever created twice."""
    fake = FakeTasks(drops)
    outcomes = _task_writer(fake).apply([_write("1"), _write("2")])
    assert [name for name, _ in fake.log] == log
    assert [[r["properties"]["bant_sync_key"] for r in b["inputs"]] for b in fake.calls("create")[1:]] == (
        [resent] if resent else []
    )
    assert all(o.kind is OutcomeKind.WRITTEN for o in outcomes)
    assert sorted(o.task_id or "" for o in outcomes) == sorted(fake.tasks) and len(fake.tasks) == 2


def test_a_create_that_never_gets_an_answer_is_uncertain() -> None:
    """When every attempt drops before committing, each row is REJECTED with code UNCERTAIN (looked up by
    key next run), after max_attempts creates, each but the first preceded by a lookup."""
    fake = FakeTasks(drops=(0, 0, 0))
    outcomes = _task_writer(fake).apply([_write("1")])
    assert [(o.kind, o.code) for o in outcomes] == [(OutcomeKind.REJECTED, "UNCERTAIN")]
    assert [name for name, _ in fake.log] == ["create", "read", "create", "read", "create"]
    assert fake.tasks == {}


def test_find_reads_keys_by_id_property_100_at_a_time() -> None:
    """find sends tasks/batch/read with idProperty = the key property, the task properties it maps and
    archived=false, at most 100 distinct keys per call; each task found becomes a CrmTask."""
    fake = FakeTasks()
    fake.tasks["9000"] = {
        "bant_sync_key": "key-0007",
        "hs_task_status": "COMPLETED",
        "hs_task_subject": "s",
        "hs_timestamp": "2026-03-05T12:00:00.000Z",
        "hubspot_owner_id": "77",
        "hs_task_priority": "HIGH",
    }
    fake.tasks["9001"] = {
        "bant_sync_key": "key-0008",
        "hs_task_status": "NOT_STARTED",
        "hubspot_owner_id": "",
    }
    keys = [f"key-{i:04d}" for i in range(250)]
    found = _task_writer(fake).find(keys + keys[:5])
    reads = fake.calls("read")
    assert [len(body["inputs"]) for body in reads] == [100, 100, 50]
    assert [row["id"] for body in reads for row in body["inputs"]] == keys
    assert {body["idProperty"] for body in reads} == {"bant_sync_key"}
    assert reads[0]["archived"] == "false"
    assert sorted(reads[0]["properties"]) == sorted(
        [
            "bant_sync_key",
            "hs_task_status",
            "hs_task_subject",
            "hs_task_priority",
            "hs_timestamp",
            "hubspot_owner_id",
        ]
    ), "a lookup reads what the worker compares, not the task body"
    assert found == {
        "key-0007": CrmTask("9000", "key-0007", False, "s", date(2026, 3, 5), "77", "HIGH"),
        "key-0008": CrmTask("9001", "key-0008", True),
    }


@pytest.mark.parametrize(
    ("write", "sent"),
    [
        (
            _write("1", TaskAction.UPDATE, "9000", frozenset({TaskField.SUBJECT})),
            {"hs_task_subject": "[bant-sync] confirm Budget"},
        ),
        (
            _write("1", TaskAction.UPDATE, "9000", frozenset({TaskField.DESCRIPTION, TaskField.DUE})),
            {"hs_task_body": "Budget?", "hs_timestamp": "2026-03-05T12:00:00.000Z"},
        ),
        (_write("1", TaskAction.UPDATE, "9000", frozenset({TaskField.KEY})), {"bant_sync_key": "key-1"}),
        (
            _write("1", TaskAction.REOPEN, "9000", frozenset({TaskField.PRIORITY})),
            {"hs_task_priority": "HIGH", "hs_task_status": "NOT_STARTED"},
        ),
        (_write("1", TaskAction.REOPEN, "9000"), {"hs_task_status": "NOT_STARTED"}),
        (_write("1", TaskAction.COMPLETE, "9000"), {"hs_task_status": "COMPLETED"}),
        (
            _write("1", TaskAction.COMPLETE, "9000", frozenset({TaskField.KEY})),
            {"bant_sync_key": "key-1", "hs_task_status": "COMPLETED"},
        ),
    ],
    ids=[
        "update-subject",
        "update-body-and-due",
        "rekey",
        "reopen-with-priority",
        "reopen",
        "complete",
        "complete-and-rekey",
    ],
)
def test_writes_by_id_send_only_the_properties_named(write: TaskWrite, sent: dict[str, str]) -> None:
    """UPDATE, REOPEN and COMPLETE send only the properties of `write.fields`, REOPEN with hs_task_status
    NOT_STARTED and COMPLETE with COMPLETED: a rep's other edits stay."""
    fake = FakeTasks()
    fake.tasks["9000"] = {"bant_sync_key": "key-1", "hs_task_status": "COMPLETED"}
    (outcome,) = _task_writer(fake).apply([write])
    (body,) = fake.calls("update")
    assert body["inputs"] == [{"id": "9000", "properties": sent}]
    assert (outcome.kind, outcome.task_id) == (OutcomeKind.WRITTEN, "9000")


def test_a_write_by_id_without_a_task_id_is_invalid() -> None:
    """An UPDATE that names no task id is INVALID (NO_TASK_ID) and sends nothing."""
    fake = FakeTasks()
    (outcome,) = _task_writer(fake).apply(
        [_write("1", TaskAction.UPDATE, None, frozenset({TaskField.SUBJECT}))]
    )
    assert (outcome.kind, outcome.code) == (OutcomeKind.INVALID, "NO_TASK_ID")
    assert fake.log == []


def test_create_update_complete_and_reopen_keep_one_task() -> None:
    """A task's life in one portal: created, its subject rewritten, completed, reopened — always one task."""
    fake = FakeTasks()
    writer = _task_writer(fake)
    (created,) = writer.apply([_write("1")])
    task_id = created.task_id
    update = replace(
        _write("1", TaskAction.UPDATE, task_id, frozenset({TaskField.SUBJECT})), subject="Timing?"
    )
    complete = _write("1", TaskAction.COMPLETE, task_id)
    reopen = _write("1", TaskAction.REOPEN, task_id)
    seen = []
    for write in (update, complete, reopen):
        assert writer.apply([write])[0].kind is OutcomeKind.WRITTEN
        task = fake.tasks[task_id or ""]
        seen.append((task["hs_task_subject"], task["hs_task_status"]))
    assert seen == [("Timing?", "NOT_STARTED"), ("Timing?", "COMPLETED"), ("Timing?", "NOT_STARTED")]
    assert writer.find(["key-1"])["key-1"].is_open
    assert len(fake.tasks) == 1


class FakeApiClient:
    """The SDK's ApiClient as AccountInfoApi uses it: `call_api` recorded and answered with a raw body."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.configuration = SimpleNamespace(access_token="")
        self.requests: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        self.requests.append((args, kwargs))
        return RawResponse(self.payload)

    def close(self) -> None:
        pass


def _account_sdk(api_client: FakeApiClient) -> Any:
    return SimpleNamespace(
        crm=SimpleNamespace(owners=SimpleNamespace(owners_api=SimpleNamespace(api_client=api_client)))
    )


def test_account_info_is_a_get_of_the_details_endpoint() -> None:
    """The portal id comes from GET /account-info/v3/details, sent through the SDK's ApiClient with the
    token, as JSON, and counted as an API call."""
    api_client = FakeApiClient({"portalId": 24681357, "timeZone": "US/Eastern"})
    client = _client(_account_sdk(api_client))
    assert client.call_json("other", "account_info", "details") == {
        "portalId": 24681357,
        "timeZone": "US/Eastern",
    }
    ((args, kwargs),) = api_client.requests
    assert args[:2] == ("/account-info/v3/details", "GET")
    assert kwargs["auth_settings"] == ["oauth2"] and kwargs["_preload_content"] is False
    assert api_client.configuration.access_token == "t"
    assert client.calls == 1


def _connector(api_client: FakeApiClient, monkeypatch: pytest.MonkeyPatch) -> HubSpotConnector:
    """A connector on a fake SDK whose deal/task preflight checks pass (they are not the subject)."""
    monkeypatch.setattr("connectors.hubspot.connector.preflight", lambda client, settings: 216)
    context = ConnectorContext("hs", {"access_token": "t"}, lambda: NOW, lambda _s: None)
    return HubSpotConnector(HubSpotSettings(), context, sdk=_account_sdk(api_client))


def test_identity_names_the_portal_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """identity is `hubspot:<portalId>`, read on first use (no full preflight needed) and never asked
    again, preflight included."""
    api_client = FakeApiClient({"portalId": 24681357})
    connector = _connector(api_client, monkeypatch)
    assert connector.identity == "hubspot:24681357"
    assert connector.tasks.association_type_id is None
    connector.preflight()
    assert connector.identity == "hubspot:24681357"
    assert len(api_client.requests) == 1
    assert connector.tasks.association_type_id == 216


def test_account_details_without_a_portal_id_stop_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    """Account details that carry no portalId are a ConfigurationError, never an identity."""
    connector = _connector(FakeApiClient({"timeZone": "US/Eastern"}), monkeypatch)
    with pytest.raises(ConfigurationError, match="portalId"):
        connector.preflight()
