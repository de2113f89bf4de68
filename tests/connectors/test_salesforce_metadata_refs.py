"""Every field a Salesforce metadata file names exists, with the type the connector expects.

The record page, compact layout, list views, report type, reports, permission sets and the bantPanel component
each name Opportunity (and Task) fields in their own dialect. A field renamed in one place and not the others
deploys with an error at best, and at worst (a list view filter, a report column) shows reps an empty page.
These tests read every one of those references and check it against the field metadata shipped in
config/salesforce, or, for standard fields, against an explicit allowlist.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.salesforce.settings import DEFAULT_FIELDS, DESCRIBE_TYPES, OUTPUT_KEYS

ROOT = Path(__file__).resolve().parents[2] / "config" / "salesforce" / "force-app" / "main" / "default"
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}

METADATA_TO_DESCRIBE = {
    "Text": "string",
    "LongTextArea": "textarea",
    "TextArea": "textarea",
    "Date": "date",
    "DateTime": "datetime",
    "Number": "double",
    "Picklist": "picklist",
    "Currency": "currency",
    "Checkbox": "boolean",
}
"""Field metadata <type> -> the type Salesforce's describe reports for it (what preflight checks)."""

STANDARD_FIELDS: dict[str, dict[str, str]] = {
    "Opportunity": {
        "Id": "id",
        "Name": "string",
        "StageName": "picklist",
        "Type": "picklist",
        "Amount": "currency",
        "CloseDate": "date",
        "IsClosed": "boolean",
        "OwnerId": "reference",
        "Owner": "reference",
        "AccountId": "reference",
        "Account": "reference",
        "LastModifiedById": "reference",
    },
    "Task": {
        "Id": "id",
        "Subject": "combobox",
        "ActivityDate": "date",
        "IsClosed": "boolean",
        "WhatId": "reference",
    },
}
"""Standard fields the metadata may name, with their describe types. Report types and reports name lookups by
relationship (Owner, Account); the API by id field (OwnerId, AccountId)."""

LIST_VIEW_COLUMNS = {
    "OPPORTUNITY.NAME": "Name",
    "OPPORTUNITY.STAGE_NAME": "StageName",
    "OPPORTUNITY.CLOSE_DATE": "CloseDate",
    "OPPORTUNITY.AMOUNT": "Amount",
    "OPPORTUNITY.CLOSED": "IsClosed",
    "ACCOUNT.NAME": "Account",
    "CORE.USERS.ALIAS": "Owner",
}
"""List views name standard fields by their own column names; only these are allowed (each was checked against
list views retrieved from real orgs). Custom fields go by API name."""

CUSTOM_FIELD_OBJECTS = {"Opportunity": "Opportunity", "Task": "Activity", "Event": "Activity"}
"""Where an object's custom fields are defined: Task and Event custom fields live on Activity."""


def _xml(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _texts(root: ET.Element, path: str) -> list[str]:
    return [(e.text or "").strip() for e in root.iterfind(path, NS)]


def shipped_fields() -> dict[tuple[str, str], ET.Element]:
    """(defining object, API name) -> the field's metadata, for every field-meta.xml shipped."""
    return {
        (path.parent.parent.name, path.name.removesuffix(".field-meta.xml")): _xml(path)
        for path in sorted((ROOT / "objects").glob("*/fields/*.field-meta.xml"))
    }


SHIPPED = shipped_fields()


def describe_type(sobject: str, field: str) -> str | None:
    """The describe type of a field the metadata may name; None when it neither ships nor is allowlisted."""
    if field.endswith("__c"):
        defined = SHIPPED.get((CUSTOM_FIELD_OBJECTS.get(sobject, sobject), field))
        if defined is None:
            return None
        return METADATA_TO_DESCRIBE[defined.findtext("m:type", namespaces=NS) or ""]
    return STANDARD_FIELDS.get(sobject, {}).get(field)


# ----- the references, one generator per kind of file; each yields (file, object, field)

Ref = tuple[str, str, str]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def flexipage_refs() -> Iterator[Ref]:
    for path in sorted((ROOT / "flexipages").glob("*.flexipage-meta.xml")):
        root = _xml(path)
        sobject = root.findtext("m:sobjectType", namespaces=NS) or ""
        for prop in root.iterfind(".//m:componentInstanceProperties/m:value", NS):
            for field in re.findall(r"\{!Record\.(\w+)\}", prop.text or ""):
                yield _rel(path), sobject, field
        for criteria in root.iterfind(".//m:criteria/m:leftValue", NS):
            for field in re.findall(r"\{!Record\.(\w+)\}", criteria.text or ""):
                yield _rel(path), sobject, field


def compact_layout_refs() -> Iterator[Ref]:
    for path in sorted((ROOT / "objects").glob("*/compactLayouts/*.compactLayout-meta.xml")):
        for field in _texts(_xml(path), "m:fields"):
            yield _rel(path), path.parent.parent.name, field


def _list_view_field(token: str) -> str:
    return (
        token
        if token.endswith("__c")
        else LIST_VIEW_COLUMNS.get(token, f"<unknown list view column {token}>")
    )


def list_view_refs() -> Iterator[Ref]:
    for path in sorted((ROOT / "objects").glob("*/listViews/*.listView-meta.xml")):
        root = _xml(path)
        sobject = path.parent.parent.name
        for token in _texts(root, "m:columns") + _texts(root, "m:filters/m:field"):
            yield _rel(path), sobject, _list_view_field(token)


def report_type_refs() -> Iterator[Ref]:
    for path in sorted((ROOT / "reportTypes").glob("*.reportType-meta.xml")):
        for column in _xml(path).iterfind("m:sections/m:columns", NS):
            table = column.findtext("m:table", namespaces=NS) or ""
            yield _rel(path), table, column.findtext("m:field", namespaces=NS) or ""


def _report_fields(root: ET.Element) -> list[str]:
    return (
        _texts(root, "m:columns/m:field")
        + _texts(root, "m:groupingsDown/m:field")
        + _texts(root, "m:groupingsAcross/m:field")
        + _texts(root, "m:filter/m:criteriaItems/m:column")
    )


def report_refs() -> Iterator[Ref]:
    for path in sorted((ROOT / "reports").glob("*/*.report-meta.xml")):
        for token in _report_fields(_xml(path)):
            sobject, _, field = token.partition("$")
            yield _rel(path), sobject, field


def permission_set_refs() -> Iterator[Ref]:
    for path in sorted((ROOT / "permissionsets").glob("*.permissionset-meta.xml")):
        for name in _texts(_xml(path), "m:fieldPermissions/m:field"):
            sobject, _, field = name.partition(".")
            yield _rel(path), sobject, field


LWC_JS = sorted((ROOT / "lwc").glob("*/*.js"))


def _gql_blocks(source: str) -> list[str]:
    return re.findall(r"gql`(.*?)`", source, flags=re.DOTALL)


GRAPHQL_WORDS = {"ASC", "DESC", "FIRST", "LAST", "ID", "String", "Int", "Boolean"}
"""Capitalised words in a GraphQL query that are enums or variable types, not fields."""


def lwc_refs() -> Iterator[Ref]:
    """`@salesforce/schema/Object.Field` imports, and the fields of each GraphQL record query."""
    for path in LWC_JS:
        source = path.read_text(encoding="utf-8")
        for sobject, field in re.findall(r"['\"]@salesforce/schema/(\w+)\.(\w+)['\"]", source):
            yield _rel(path), sobject, field
        for query in _gql_blocks(source):
            for sobject, body in _graphql_record_queries(query):
                for field in sorted(set(re.findall(r"\b([A-Z]\w*)\b", body)) - GRAPHQL_WORDS):
                    yield _rel(path), sobject, field


def _graphql_record_queries(query: str) -> list[tuple[str, str]]:
    """(object, its arguments and selection) for each record query under `uiapi { query { ... } }`."""
    found = []
    for match in re.finditer(r"query\s*\{\s*(\w+)\s*\(", query):
        sobject, start = match.group(1), match.end()
        depth, i = 1, start
        while depth and i < len(query):  # the arguments' closing parenthesis
            depth += {"(": 1, ")": -1}.get(query[i], 0)
            i += 1
        brace = query.index("{", i)
        depth, j = 1, brace + 1
        while depth and j < len(query):  # the selection's closing brace
            depth += {"{": 1, "}": -1}.get(query[j], 0)
            j += 1
        found.append((sobject, query[start:j]))
    return found


REF_SOURCES = {
    "flexipage": flexipage_refs,
    "compact layout": compact_layout_refs,
    "list view": list_view_refs,
    "report type": report_type_refs,
    "report": report_refs,
    "permission set": permission_set_refs,
    "lightning web component": lwc_refs,
}


def all_refs() -> list[tuple[str, Ref]]:
    return [(kind, ref) for kind, source in REF_SOURCES.items() for ref in source()]


# ----- the tests


@pytest.mark.parametrize("kind", sorted(set(REF_SOURCES) - {"flexipage"}))
def test_each_kind_of_metadata_file_is_read(kind: str) -> None:
    """Every kind ships at least one reference, so an empty glob (a moved folder) cannot pass silently. (The
    record page names no field today: test_flexipages_place_only_shipped_custom_components checks it.)"""
    assert list(REF_SOURCES[kind]()), f"no field references found in any {kind}"


def test_every_referenced_field_exists() -> None:
    """Each field any metadata file names is shipped (custom) or an allowlisted standard field."""
    missing = [
        f"{file}: {sobject}.{field} ({kind})"
        for kind, (file, sobject, field) in all_refs()
        if describe_type(sobject, field) is None
    ]
    assert not missing, "fields that neither ship nor are allowlisted:\n" + "\n".join(missing)


@pytest.mark.parametrize("key", sorted(k for k in DESCRIBE_TYPES if k in DEFAULT_FIELDS))
def test_default_fields_have_the_type_the_connector_expects(key: str) -> None:
    """The shipped (or standard) field of each canonical key has a describe type preflight accepts for it."""
    field = DEFAULT_FIELDS[key]
    found = describe_type("Opportunity", field)
    assert found is not None, f"{key}: {field} neither ships nor is allowlisted"
    assert found in DESCRIBE_TYPES[key], (
        f"{key}: {field} is {found}, the connector accepts {DESCRIBE_TYPES[key]}"
    )


def test_every_field_the_metadata_names_that_the_connector_maps_has_its_type() -> None:
    """A metadata file naming a field bant-sync maps (status, snooze until, ...) has that key's type."""
    by_field = {name: key for key, name in DEFAULT_FIELDS.items() if key in DESCRIBE_TYPES}
    wrong = []
    for kind, (file, sobject, field) in all_refs():
        key = by_field.get(field)
        if (
            sobject == "Opportunity"
            and key is not None
            and describe_type(sobject, field) not in DESCRIBE_TYPES[key]
        ):
            wrong.append(f"{file} ({kind}): {field} is {describe_type(sobject, field)}")
    assert not wrong, "\n".join(wrong)


def test_the_panel_reads_every_output_and_snooze_field() -> None:
    """bantPanel imports each output and both snooze fields, and nothing bant-sync does not map."""
    imported = {field for _, sobject, field in lwc_refs() if sobject == "Opportunity"}
    wanted = {DEFAULT_FIELDS[k] for k in (*OUTPUT_KEYS, "snooze_until", "snooze_reason")}
    assert imported == wanted


def test_the_panel_queries_the_open_task_by_its_key() -> None:
    """The GraphQL query reads Task and filters on the task key field the connector upserts by."""
    task_fields = {field for _, sobject, field in lwc_refs() if sobject == "Task"}
    assert {"WhatId", "IsClosed", "BANT_Sync_Key__c", "Subject", "ActivityDate"} <= task_fields


def test_the_graphql_reader_finds_fields_in_where_and_selection() -> None:
    """The reader of GraphQL queries sees both the filter and the selected fields (guards the parser)."""
    query = (
        "query q($id: ID) { uiapi { query { Task(where: { Foo__c: { eq: $id } }, first: 1) "
        "{ edges { node { Bar { value } } } } } } }"
    )
    assert _graphql_record_queries(query)[0][0] == "Task"
    body = _graphql_record_queries(query)[0][1]
    assert set(re.findall(r"\b([A-Z]\w*)\b", body)) - GRAPHQL_WORDS == {"Foo__c", "Bar"}


def _picklist_values(field: str) -> list[str]:
    return _texts(SHIPPED[("Opportunity", field)], ".//m:value/m:fullName")


def test_status_filters_use_real_status_values() -> None:
    """List view and report filters on the status name API values the picklist has."""
    status = DEFAULT_FIELDS["status"]
    values = set(_picklist_values(status))
    used = []
    for path in sorted((ROOT / "objects").glob("Opportunity/listViews/*.listView-meta.xml")):
        for f in _xml(path).iterfind("m:filters", NS):
            if f.findtext("m:field", namespaces=NS) == status:
                used.append((_rel(path), f.findtext("m:value", namespaces=NS) or ""))
    for path in sorted((ROOT / "reports").glob("*/*.report-meta.xml")):
        for c in _xml(path).iterfind("m:filter/m:criteriaItems", NS):
            if c.findtext("m:column", namespaces=NS) == f"Opportunity${status}":
                used.append((_rel(path), c.findtext("m:value", namespaces=NS) or ""))
    assert len(used) >= 5
    for file, value in used:
        assert set(value.split(",")) <= values, f"{file}: {value}"


def test_the_panel_has_a_badge_for_every_status() -> None:
    """bantPanel's badge table names exactly the status picklist's values."""
    source = (ROOT / "lwc" / "bantPanel" / "bantPanel.js").read_text(encoding="utf-8")
    table = source[
        source.index("const STATUSES = {") : source.index("};", source.index("const STATUSES = {"))
    ]
    assert re.findall(r"^\s+(\w+): \{ label:", table, flags=re.MULTILINE) == _picklist_values(
        DEFAULT_FIELDS["status"]
    )


def test_reports_use_the_shipped_report_type_and_only_its_columns() -> None:
    """A report names a custom report type as <name>__c, and reads only columns that report type offers."""
    types = {
        p.name.removesuffix(".reportType-meta.xml"): p
        for p in (ROOT / "reportTypes").glob("*.reportType-meta.xml")
    }
    reports = sorted((ROOT / "reports").glob("*/*.report-meta.xml"))
    assert reports
    for path in reports:
        root = _xml(path)
        report_type = root.findtext("m:reportType", namespaces=NS) or ""
        assert report_type.endswith("__c") and report_type.removesuffix("__c") in types, path.name
        rt = _xml(types[report_type.removesuffix("__c")])
        base = rt.findtext("m:baseObject", namespaces=NS)
        offered = {
            f"{c.findtext('m:table', namespaces=NS)}${c.findtext('m:field', namespaces=NS)}"
            for c in rt.iterfind("m:sections/m:columns", NS)
        }
        for token in _report_fields(root):
            assert token.startswith(f"{base}$") and token in offered, f"{path.name}: {token}"


def test_report_folders_exist_for_every_report() -> None:
    for path in sorted((ROOT / "reports").glob("*/*.report-meta.xml")):
        assert (ROOT / "reports" / f"{path.parent.name}.reportFolder-meta.xml").is_file(), path.parent.name


def test_compact_layouts_hold_no_long_text() -> None:
    """Salesforce refuses long and rich text areas in compact layouts."""
    for _, sobject, field in compact_layout_refs():
        assert describe_type(sobject, field) != "textarea", field


def test_flexipages_place_only_shipped_custom_components() -> None:
    """A component without a namespace on a record page is ours, and must ship as a Lightning web component
    that targets record pages of the page's object."""
    for path in sorted((ROOT / "flexipages").glob("*.flexipage-meta.xml")):
        root = _xml(path)
        sobject = root.findtext("m:sobjectType", namespaces=NS)
        ours = [n for n in _texts(root, ".//m:componentInstance/m:componentName") if ":" not in n]
        assert ours, path.name
        for name in ours:
            meta = ROOT / "lwc" / name / f"{name}.js-meta.xml"
            assert meta.is_file(), f"{path.name}: {name} does not ship"
            bundle = _xml(meta)
            assert "lightning__RecordPage" in _texts(bundle, "m:targets/m:target")
            assert sobject in _texts(bundle, ".//m:targetConfig/m:objects/m:object")
