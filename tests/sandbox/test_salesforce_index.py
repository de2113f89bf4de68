"""SOQL served from the key indexes: `Key__c IN (...)` / `Id = '...'` read only the named records, with the
same rows, order and limits as a scan of the whole table."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import pytest

from sandbox import soql
from sandbox.clock import SandboxClock
from sandbox.salesforce.errors import SfError
from sandbox.salesforce.query import QueryService
from sandbox.salesforce.schema import TASK_KEY
from sandbox.salesforce.state import Record, SalesforceState
from sandbox.salesforce.values import to_json

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
SELECT = f"SELECT Id, {TASK_KEY}, Subject, Priority, IsClosed, CreatedDate FROM Task"


class Counted(dict[str, object]):
    """A record that notes every read of one of its fields in `examined`."""

    examined: ClassVar[set[int]] = set()

    def get(self, key: str, default: object = None) -> object:
        Counted.examined.add(id(self))
        return super().get(key, default)


def make_state(tasks: int, rng: random.Random | None = None) -> SalesforceState:
    """A state holding `tasks` tasks keyed deal-<n>:budget (random fields and some reordering with rng)."""
    state = SalesforceState(SandboxClock(START))
    template = dict.fromkeys(state.schemas["Task"].fields)
    records: list[Record] = []
    for n in range(tasks):
        rec = Counted(template)
        stamp = START + timedelta(minutes=n)
        rec.update(Id=state.next_id("Task"), Subject=f"Ask about budget {n}", Status="Not Started")
        rec.update(Priority="Normal", IsClosed=False, BANT_Sync_Key__c=f"deal-{n}:budget")
        rec.update(CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp)
        if rng is not None:
            rec.update(
                Subject=rng.choice([None, "Ask about budget", "ask the champion", "Chase"]),
                Priority=rng.choice(["High", "Normal", "Low"]),
                IsClosed=rng.random() < 0.3,
                CreatedDate=START + timedelta(days=rng.randint(0, 4)),
                ActivityDate=rng.choice([None, date(2026, 3, 1), date(2026, 4, 1)]),
                BANT_Sync_Key__c=rng.choice([f"deal-{n % 40}:budget", f"DEAL-{n % 40}:Budget", None, ""]),
            )
        records.append(rec)
    state.insert_seed("Task", records)
    return state


def lookup_query(keys: list[str]) -> str:
    quoted = ", ".join(f"'{key}'" for key in keys)
    return f"{SELECT} WHERE {TASK_KEY} IN ({quoted}) ORDER BY CreatedDate ASC"


def served(state: SalesforceState, text: str) -> tuple[int, list[dict[str, object]]]:
    """totalSize and the records (without attributes) as the sandbox's query endpoint serves them."""
    payload = QueryService(state).run(text, "59.0", 2000).payload
    assert isinstance(payload, dict)
    records = [{k: v for k, v in r.items() if k != "attributes"} for r in payload["records"]]
    return payload["totalSize"], records


def scanned(state: SalesforceState, text: str) -> tuple[int, list[dict[str, object]]]:
    """The same query run by the engine over every record of the table, in table order."""
    with state.lock:
        records = list(state.table("Task").values())
    result = soql.execute(soql.parse(text), records, state.schemas["Task"].soql_fields())
    return result.total_size, [{k: to_json(v) for k, v in row.items()} for row in result.rows]


def random_ids(rng: random.Random, state: SalesforceState) -> list[str]:
    """Task ids as a client may write them: 18 or 15 characters, a wrong suffix, wrong case, unknown."""
    with state.lock:
        rid = rng.choice(list(state.table("Task")))
    return [
        rng.choice([rid, rid[:15], rid[:15] + "AAA", rid.lower(), "00T000000000000AAA", "006000000000001AAA"])
        for _ in range(rng.randint(1, 4))
    ]


def random_keys(rng: random.Random) -> list[str]:
    keys = [rng.choice([f"deal-{rng.randint(0, 45)}:budget", f"Deal-{rng.randint(0, 45)}:BUDGET"])]
    return keys + [rng.choice(["deal-3:budget", "", "DEAL-7:budget"]) for _ in range(rng.randint(0, 3))]


def random_where(rng: random.Random, state: SalesforceState) -> str:
    def listed(values: list[str | None]) -> str:
        return ", ".join("null" if v is None else f"'{v}'" for v in values)

    keyed = [
        f"{TASK_KEY} IN ({listed([*random_keys(rng)])})",
        f"bant_sync_key__c = '{random_keys(rng)[0]}'",
        f"{TASK_KEY} IN ({listed([*random_keys(rng), None])})",
        f"Id IN ({listed([*random_ids(rng, state)])})",
        f"id = '{random_ids(rng, state)[0]}'",
    ]
    other = [
        "IsClosed = false",
        "Priority IN ('High', 'low')",
        "Subject LIKE 'ask%'",
        "ActivityDate < 2026-03-15",
        "Subject = null",
        f"{TASK_KEY} != 'deal-3:budget'",
        f"{TASK_KEY} NOT IN ('deal-4:budget', 'deal-5:BUDGET')",
    ]
    a, b, c = rng.choice(keyed), rng.choice(other), rng.choice(other)
    return rng.choice(
        [
            a,
            f"{a} AND {b}",
            f"{b} AND ({rng.choice(keyed)} AND {a})",
            f"({a} OR {b}) AND {c}",
            f"{a} AND ({b} OR {c})",
            f"NOT {b} AND {a}",
            f"{a} OR {b}",
            f"NOT ({a})",
        ]
    )


def random_query(rng: random.Random, state: SalesforceState) -> str:
    where = random_where(rng, state)
    if rng.random() < 0.15:
        return f"SELECT COUNT() FROM Task WHERE {where}" + rng.choice(["", " LIMIT 2"])
    keys = rng.sample(["CreatedDate", "Priority", "Subject", TASK_KEY, "Id"], rng.randint(0, 2))
    order = ", ".join(
        f"{key} {rng.choice(['', 'ASC', 'DESC'])} {rng.choice(['', 'NULLS FIRST', 'NULLS LAST'])}"
        for key in keys
    )
    limit = rng.choice(["", "", f" LIMIT {rng.randint(1, 5)}"])
    return f"{SELECT} WHERE {where}" + (f" ORDER BY {order}" if order else "") + limit


def shuffle_writes(rng: random.Random, state: SalesforceState) -> None:
    """Updates (which move a record to the end of its table), deletes and creates."""
    schema = state.schemas["Task"]
    with state.lock:
        for _ in range(60):
            rids = list(state.table("Task"))
            roll = rng.random()
            if roll < 0.6:
                key = rng.choice(
                    [f"deal-{rng.randint(0, 45)}:budget", f"DEAL-{rng.randint(0, 45)}:budget", None]
                )
                state.commit_update(
                    schema, rng.choice(rids), {TASK_KEY: key, "Priority": rng.choice(["High", "Low"])}
                )
            elif roll < 0.8:
                state.delete(schema, rng.choice(rids))
            else:
                fields: Record = {
                    TASK_KEY: f"deal-{rng.randint(0, 45)}:budget",
                    "Subject": "Ask",
                    "Priority": "High",
                }
                state.commit_create(schema, fields, START + timedelta(days=rng.randint(0, 4)))


@pytest.mark.parametrize("seed", range(6))
def test_indexed_queries_return_what_a_full_scan_returns(seed: int) -> None:
    """Oracle: random Id/sync-key queries over shuffled, mixed-case tasks serve exactly what a scan does."""
    rng = random.Random(seed)
    state = make_state(400, rng)
    shuffle_writes(rng, state)
    fields = state.schemas["Task"].soql_fields()
    probed = 0
    for _ in range(150):
        text = random_query(rng, state)
        probed += soql.index_probe(soql.parse(text), fields, state.indexed_fields("Task")) is not None
        assert served(state, text) == scanned(state, text), text
    assert probed >= 40


@pytest.mark.parametrize(
    "where",
    [f"{TASK_KEY} IN ({{keys}})", "Id IN ({ids})", f"IsClosed = false AND {TASK_KEY} IN ({{keys}})"],
    ids=["sync-key", "id", "in-an-and"],
)
def test_key_lookup_examines_only_the_records_it_names(where: str) -> None:
    """bant-sync's 200-key task lookup reads the named tasks only, not every task in the org."""
    state = make_state(3000)
    with state.lock:
        rids = list(state.table("Task"))
    picked = random.Random(7).sample(range(3000), 150)
    keys = ", ".join(
        [f"'DEAL-{n}:Budget'" for n in picked] + [f"'deal-{n}:budget'" for n in range(5000, 5050)]
    )
    ids = ", ".join(f"'{rids[n]}'" for n in picked)
    Counted.examined.clear()
    total, records = served(
        state, f"{SELECT} WHERE {where.format(keys=keys, ids=ids)} ORDER BY CreatedDate ASC"
    )
    assert total == 150 and len(Counted.examined) == 150
    assert [r[TASK_KEY] for r in records] == [f"deal-{n}:budget" for n in sorted(picked)]


def test_a_deleted_key_field_is_refused_and_served_from_the_index_once_restored() -> None:
    """A deleted key field is INVALID_FIELD; restored or renamed, its values are back in the index."""
    state = make_state(1000)
    state.update("Task", str(state.records("Task")[10]["Id"]), {TASK_KEY: "moved-10"})
    query = lookup_query(["deal-1:budget", "MOVED-10", "deal-10:budget"])
    state.delete_field("Task", TASK_KEY)
    with pytest.raises(SfError, match="No such column 'BANT_Sync_Key__c'"):
        served(state, query)
    state.restore_field("Task", TASK_KEY)
    assert served(state, query) == scanned(state, query)
    Counted.examined.clear()
    assert [r[TASK_KEY] for r in served(state, query)[1]] == ["deal-1:budget", "moved-10"]
    assert len(Counted.examined) == 2
    state.rename_field("Task", TASK_KEY, "Sync_Key__c")
    renamed = query.replace(TASK_KEY, "Sync_Key__c")
    Counted.examined.clear()
    assert [r["Sync_Key__c"] for r in served(state, renamed)[1]] == ["deal-1:budget", "moved-10"]
    assert len(Counted.examined) == 2
