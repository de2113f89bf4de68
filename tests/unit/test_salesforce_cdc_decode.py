"""Decoding Salesforce change events: Avro payloads, field bitmaps, and which changes are echoes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.salesforce.cdc_decode import (
    ChangeEvent,
    DecodeError,
    EventSchema,
    SchemaCache,
    bitmap_fields,
    deal_change,
    echo_fields,
    is_echo,
    output_field_names,
)
from connectors.salesforce.settings import DEFAULT_FIELDS, OUTPUT_KEYS

HEADER_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "ChangeEventHeader",
    "fields": [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": {"type": "array", "items": "string"}},
        {
            "name": "changeType",
            "type": {
                "type": "enum",
                "name": "ChangeType",
                "symbols": [
                    "CREATE",
                    "UPDATE",
                    "DELETE",
                    "UNDELETE",
                    "GAP_CREATE",
                    "GAP_UPDATE",
                    "GAP_DELETE",
                    "GAP_UNDELETE",
                    "GAP_OVERFLOW",
                    "SNAPSHOT",
                ],
            },
        },
        {"name": "changeOrigin", "type": "string"},
        {"name": "transactionKey", "type": "string"},
        {"name": "sequenceNumber", "type": "int"},
        {"name": "commitTimestamp", "type": "long"},
        {"name": "commitNumber", "type": "long"},
        {"name": "commitUser", "type": "string"},
        {"name": "nulledFields", "type": {"type": "array", "items": "string"}},
        {"name": "diffFields", "type": {"type": "array", "items": "string"}},
        {"name": "changedFields", "type": {"type": "array", "items": "string"}},
    ],
}


def _optional(name: str, kind: Any) -> dict[str, Any]:
    return {"name": name, "type": ["null", kind], "default": None}


ADDRESS = {
    "type": "record",
    "name": "Address",
    "fields": [_optional("Street", "string"), _optional("City", "string"), _optional("Country", "string")],
}
SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "OpportunityChangeEvent",
    "namespace": "com.sforce.eventbus",
    "fields": [
        {"name": "ChangeEventHeader", "type": HEADER_SCHEMA},  # 0
        _optional("Name", "string"),  # 1
        _optional("StageName", "string"),  # 2
        _optional("Amount", "double"),  # 3
        _optional("CloseDate", {"type": "int", "logicalType": "date"}),  # 4
        _optional("LastModifiedDate", {"type": "long", "logicalType": "timestamp-millis"}),  # 5
        _optional("LastModifiedById", "string"),  # 6
        _optional("SystemModstamp", {"type": "long", "logicalType": "timestamp-millis"}),  # 7
        _optional("BANT_Budget__c", "string"),  # 8
        _optional("BANT_Status__c", "string"),  # 9
        _optional("BANT_Score__c", "double"),  # 10
        _optional("BANT_Checked_At__c", {"type": "long", "logicalType": "timestamp-millis"}),  # 11
        _optional("Shipping", ADDRESS),  # 12: a compound field, for nested bitmaps
    ],
}
COMMIT_MS = 1_764_547_200_123  # 2025-12-01T00:00:00.123Z
OWN = echo_fields(output_field_names(DEFAULT_FIELDS, OUTPUT_KEYS))


def _payload(
    change_type: str = "UPDATE",
    changed: list[str] | None = None,
    origin: str = "com/salesforce/api/soap/62.0;client=SfdcInternalAPI/",
    record_ids: list[str] | None = None,
    **values: Any,
) -> bytes:
    header = {
        "entityName": "Opportunity",
        "recordIds": record_ids if record_ids is not None else ["006000000000001AAA"],
        "changeType": change_type,
        "changeOrigin": origin,
        "transactionKey": "0001a2b3-c4d5",
        "sequenceNumber": 1,
        "commitTimestamp": COMMIT_MS,
        "commitNumber": 1234567890,
        "commitUser": "005000000000001AAA",
        "nulledFields": [],
        "diffFields": [],
        "changedFields": changed or [],
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(SCHEMA), {"ChangeEventHeader": header, **values})
    return buffer.getvalue()


def _schema() -> EventSchema:
    return EventSchema("schema-1", json.dumps(SCHEMA))


def _event(change_type: str, changed: tuple[str, ...], origin: str = "") -> ChangeEvent:
    return ChangeEvent(b"\x01", "Opportunity", ("006A",), change_type, origin, datetime.now(UTC), changed)


def test_a_bitmaps_bits_name_the_schemas_fields_least_significant_first() -> None:
    names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
    assert bitmap_fields("0x1", names) == ["a"]
    assert bitmap_fields("0x05", names) == ["a", "c"]
    assert bitmap_fields("0x100", names) == ["i"]  # bit 8: beyond the first byte
    assert bitmap_fields("0x0", names) == []
    assert bitmap_fields("0X82", names) == ["b", "h"]


@pytest.mark.parametrize("bitmap", ["05", "0xZZ", "0x200", ""])
def test_a_bitmap_that_is_not_hex_or_names_a_field_the_schema_lacks_is_refused(bitmap: str) -> None:
    with pytest.raises(DecodeError):
        bitmap_fields(bitmap, ["a", "b", "c", "d", "e", "f", "g", "h", "i"])


def test_an_update_decodes_with_its_changed_field_names_and_commit_time() -> None:
    # Amount (3), LastModifiedDate (5) and BANT_Budget__c (8): bits 3, 5 and 8 = 0x128
    payload = _payload(changed=["0x128"], Amount=125000.0, BANT_Budget__c="approved")
    event = _schema().decode(b"\x00\x00\x00\x00\x00\x00\x00\x2a", payload)
    assert event.replay_id.hex() == "000000000000002a"
    assert event.entity == "Opportunity"
    assert event.record_ids == ("006000000000001AAA",)
    assert event.change_type == "UPDATE"
    assert event.changed_fields == ("Amount", "LastModifiedDate", "BANT_Budget__c")
    assert event.commit_time == datetime(2025, 12, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert event.commit_time.tzinfo is not None


def test_a_compound_fields_nested_bitmap_names_its_children_under_the_parent() -> None:
    # top level: LastModifiedDate (5); Shipping (12) -> City (1) and Country (2)
    event = _schema().decode(b"\x01", _payload(changed=["0x20", "12-0x6"]))
    assert event.changed_fields == ("LastModifiedDate", "Shipping.City", "Shipping.Country")


def test_a_nested_bitmap_on_a_field_that_is_not_compound_is_refused() -> None:
    with pytest.raises(DecodeError, match="compound"):
        _schema().decode(b"\x01", _payload(changed=["3-0x1"]))


def test_a_payload_that_does_not_match_its_schema_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="schema-1"):
        _schema().read(b"\xff\xff\xff")
    with pytest.raises(DecodeError, match="not an Avro record schema"):
        EventSchema("bad", "{not json")


def test_schemas_are_fetched_once_per_schema_id() -> None:
    fetched: list[str] = []

    def fetch(schema_id: str) -> str:
        fetched.append(schema_id)
        return json.dumps(SCHEMA)

    cache = SchemaCache(fetch)
    assert cache.get("a") is cache.get("a")
    cache.get("b")
    assert fetched == ["a", "b"] and len(cache) == 2


def test_a_change_whose_origin_names_bant_sync_is_an_echo_whatever_it_changed() -> None:
    origin = "com/salesforce/api/rest/62.0;client=bant-sync"
    assert is_echo(_event("UPDATE", ("BANT_Budget__c",), origin), OWN)
    assert is_echo(_event("CREATE", (), origin), OWN)
    assert not is_echo(
        _event("UPDATE", ("BANT_Budget__c",), "com/salesforce/api/rest/62.0;client=bant-sync2"), OWN
    )
    assert not is_echo(_event("UPDATE", ("BANT_Budget__c",), "com/salesforce/api/rest/62.0"), OWN)


def test_an_update_of_only_output_and_system_fields_is_an_echo_from_any_origin() -> None:
    outputs = ("BANT_Status__c", "BANT_Score__c", "BANT_Checked_At__c", "LastModifiedDate", "SystemModstamp")
    assert is_echo(_event("UPDATE", outputs), OWN)
    assert is_echo(_event("UPDATE", ("bant_status__c", "LastModifiedById")), OWN)  # case-insensitive
    assert not is_echo(_event("UPDATE", (*outputs, "BANT_Budget__c")), OWN)
    assert not is_echo(_event("UPDATE", ("Shipping.City",)), OWN)


def test_creates_deletes_gaps_and_updates_without_fields_are_never_echoes_by_their_fields() -> None:
    for change_type in ("CREATE", "DELETE", "UNDELETE", "GAP_UPDATE", "GAP_CREATE", "GAP_OVERFLOW"):
        assert not is_echo(_event(change_type, ()), OWN), change_type
    assert not is_echo(_event("UPDATE", ()), OWN)


def test_the_echo_fields_follow_the_connections_mapping() -> None:
    mapping = {**DEFAULT_FIELDS, "status": "Qualification_State__c"}
    own = echo_fields(output_field_names(mapping, OUTPUT_KEYS))
    assert is_echo(_event("UPDATE", ("Qualification_State__c",)), own)
    assert not is_echo(_event("UPDATE", ("BANT_Status__c",)), own)


def test_a_decoded_event_becomes_one_deal_change_keyed_by_its_replay_id() -> None:
    payload = _payload(changed=["0x120"], record_ids=["006A", "006B"], origin="x;client=bant-sync")
    change = deal_change(_schema().decode(bytes.fromhex("00ff"), payload), OWN)
    assert change.event_id == "00ff"
    assert change.deal_ids == ("006A", "006B")
    assert change.echo is True
    assert change.occurred_at == datetime(2025, 12, 1, 0, 0, 0, 123000, tzinfo=UTC)


def _upstream_positions(bitmap: str) -> list[int]:
    """forcedotcom/pub-sub-api's ChangeEventHeaderUtility: the hex digits as bits, reversed, then the
    positions of the ones (its `BitArray(hex=...).bin[::-1]`, without the bitstring package)."""
    bits = "".join(f"{int(digit, 16):04b}" for digit in bitmap[2:])
    return [i for i, bit in enumerate(bits[::-1]) if bit == "1"]


@given(st.sets(st.integers(min_value=0, max_value=len(SCHEMA["fields"]) - 1)), st.integers(0, 3))
def test_bitmaps_read_as_the_upstream_utility_reads_them(positions: set[int], padding: int) -> None:
    names = [str(f["name"]) for f in SCHEMA["fields"]]
    value = sum(1 << i for i in positions)
    bitmap = "0x" + "0" * padding + (f"{value:X}" if value else "0")
    assert bitmap_fields(bitmap, names) == [names[i] for i in _upstream_positions(bitmap)]
    assert bitmap_fields(bitmap, names) == [names[i] for i in sorted(positions)]
