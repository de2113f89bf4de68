"""What other clients rely on and bant-sync's own connector never looked at: full-URL paging links that keep
the request's parameters, and describe field entries with every key the real API sends."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from sandbox import Sandbox
from tests.sandbox.clients import hs_client, hs_headers, hs_info, hs_url, sf_client, sf_session

# The keys of every field entry of a real sObject describe (API v61.0), as captured from a real org in
# Airbyte's source-salesforce unit tests (airbytehq/airbyte, SalesforceFieldBuilder).
REAL_FIELD_KEYS = frozenset(
    [
        "aggregatable",
        "aiPredictionField",
        "autoNumber",
        "byteLength",
        "calculated",
        "calculatedFormula",
        "cascadeDelete",
        "caseSensitive",
        "compoundFieldName",
        "controllerName",
        "createable",
        "custom",
        "defaultValue",
        "defaultValueFormula",
        "defaultedOnCreate",
        "dependentPicklist",
        "deprecatedAndHidden",
        "digits",
        "displayLocationInDecimal",
        "encrypted",
        "externalId",
        "extraTypeInfo",
        "filterable",
        "filteredLookupInfo",
        "formulaTreatNullNumberAsZero",
        "groupable",
        "highScaleNumber",
        "htmlFormatted",
        "idLookup",
        "inlineHelpText",
        "label",
        "length",
        "mask",
        "maskType",
        "name",
        "nameField",
        "namePointing",
        "nillable",
        "permissionable",
        "picklistValues",
        "polymorphicForeignKey",
        "precision",
        "queryByDistance",
        "referenceTargetField",
        "referenceTo",
        "relationshipName",
        "relationshipOrder",
        "restrictedDelete",
        "restrictedPicklist",
        "scale",
        "searchPrefilterable",
        "soapType",
        "sortable",
        "type",
        "unique",
        "updateable",
        "writeRequiresMasterRead",
    ]
)


# The object-level keys of a real describe (v61.0, same source), and of an entry of the global describe.
REAL_OBJECT_KEYS = frozenset(
    [
        "actionOverrides",
        "activateable",
        "associateEntityType",
        "associateParentEntity",
        "childRelationships",
        "compactLayoutable",
        "createable",
        "custom",
        "customSetting",
        "deepCloneable",
        "defaultImplementation",
        "deletable",
        "deprecatedAndHidden",
        "extendedBy",
        "extendsInterfaces",
        "feedEnabled",
        "fields",
        "hasSubtypes",
        "implementedBy",
        "implementsInterfaces",
        "isInterface",
        "isSubtype",
        "keyPrefix",
        "label",
        "labelPlural",
        "layoutable",
        "listviewable",
        "lookupLayoutable",
        "mergeable",
        "mruEnabled",
        "name",
        "namedLayoutInfos",
        "networkScopeFieldName",
        "queryable",
        "recordTypeInfos",
        "replicateable",
        "retrieveable",
        "searchLayoutable",
        "searchable",
        "sobjectDescribeOption",
        "supportedScopes",
        "triggerable",
        "undeletable",
        "updateable",
        "urls",
    ]
)
REAL_GLOBAL_ENTRY_KEYS = REAL_OBJECT_KEYS - {
    "actionOverrides",
    "childRelationships",
    "compactLayoutable",
    "defaultImplementation",
    "extendedBy",
    "extendsInterfaces",
    "fields",
    "implementedBy",
    "implementsInterfaces",
    "listviewable",
    "lookupLayoutable",
    "namedLayoutInfos",
    "networkScopeFieldName",
    "recordTypeInfos",
    "searchLayoutable",
    "sobjectDescribeOption",
    "supportedScopes",
}


def _get(sb: Sandbox, url: str) -> dict[str, object]:
    response = requests.get(url, headers=hs_headers(sb), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_deal_list_links_are_full_urls_keeping_the_request_parameters(sb: Sandbox) -> None:
    """Following ``paging.next.link`` as is reads every deal once, each page with the asked properties."""
    first = _get(
        sb, hs_url(sb, "/crm/v3/objects/deals?limit=50&properties=dealname,bant_need&archived=false")
    )
    link = str(first["paging"]["next"]["link"])  # type: ignore[index]
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == hs_info(sb)["host"]
    assert parts.path == "/crm/v3/objects/deals"
    assert parse_qs(parts.query) == {
        "limit": ["50"],
        "properties": ["dealname,bant_need"],
        "archived": ["false"],
        "after": [first["paging"]["next"]["after"]],  # type: ignore[index]
    }
    seen, page = [], first
    while True:
        results = page["results"]
        assert isinstance(results, list)
        assert all(set(r["properties"]) >= {"dealname", "bant_need"} for r in results)
        seen += [r["id"] for r in results]
        if "paging" not in page:
            break
        page = _get(sb, str(page["paging"]["next"]["link"]))  # type: ignore[index]
    assert sorted(seen) == sorted(d["id"] for d in sb.hubspot.deals())
    assert len(seen) == len(set(seen))


def test_owner_list_links_are_full_urls_too(sb: Sandbox) -> None:
    first = _get(sb, hs_url(sb, "/crm/v3/owners/?limit=4"))
    link = str(first["paging"]["next"]["link"])  # type: ignore[index]
    assert link.startswith(hs_info(sb)["host"] + "/crm/v3/owners")
    assert parse_qs(urlsplit(link).query) == {"limit": ["4"], "after": ["4"]}
    rest = _get(sb, link)
    assert len(first["results"]) + len(rest["results"]) == 6 and "paging" not in rest  # type: ignore[arg-type]


def test_v4_association_lists_page_with_full_links(sb: Sandbox) -> None:
    from hubspot.crm.associations.v4 import AssociationSpec

    hs = hs_client(sb)
    deal = sb.hubspot.deals()[0]["id"]
    spec = [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=216)]
    tasks = []
    for i in range(3):
        task = hs.crm.objects.tasks.basic_api.create(
            {"properties": {"hs_task_subject": f"t{i}", "hs_timestamp": "2026-03-09T17:00:00Z"}}
        )
        hs.crm.associations.v4.basic_api.create("tasks", task.id, "deals", deal, spec)
        tasks.append(task.id)
    first = _get(sb, hs_url(sb, f"/crm/v4/objects/deals/{deal}/associations/tasks?limit=2"))
    link = str(first["paging"]["next"]["link"])  # type: ignore[index]
    assert link.startswith(hs_info(sb)["host"] + f"/crm/v4/objects/deals/{deal}/associations/tasks?")
    assert parse_qs(urlsplit(link).query) == {"limit": ["2"], "after": [tasks[1]]}
    rest = _get(sb, link)
    read = [str(r["toObjectId"]) for page in (first, rest) for r in page["results"]]  # type: ignore[attr-defined]
    assert read == tasks and "paging" not in rest


def test_every_describe_field_entry_has_the_real_key_set(sb: Sandbox) -> None:
    sf = sf_client(sb)
    for name in ("Opportunity", "Task", "User"):
        fields = sf.__getattr__(name).describe()["fields"]
        for entry in fields:
            assert set(entry) == REAL_FIELD_KEYS, (name, entry["name"], set(entry) ^ REAL_FIELD_KEYS)
        assert all(f["compoundFieldName"] is None for f in fields)


def test_describes_have_the_real_object_level_keys(sb: Sandbox) -> None:
    sf = sf_client(sb)
    opportunity = sf.Opportunity.describe()
    assert set(opportunity) == REAL_OBJECT_KEYS
    assert list(opportunity) == sorted(opportunity)
    assert [r["developerName"] for r in opportunity["recordTypeInfos"]] == ["Master"]
    entries = sf.describe()["sobjects"]
    assert {e["name"] for e in entries} >= {"Opportunity", "Task", "User", "Organization"}
    assert all(set(e) == REAL_GLOBAL_ENTRY_KEYS for e in entries)
    assert set(sf.Task.metadata()["objectDescribe"]) == REAL_GLOBAL_ENTRY_KEYS


def test_the_bulk_api_answers_as_an_org_without_it(sb: Sandbox) -> None:
    """dlt (and others) try the Bulk API first and fall back to REST queries on exactly this answer."""
    base = sf_client(sb).bulk_url
    token = sb.info["salesforce"]["access_token"]
    session = sf_session(sb)
    response = session.post(
        f"{base}job", headers={"X-SFDC-Session": token}, json={"operation": "query"}, timeout=10
    )
    assert response.status_code == 400
    assert response.json() == {
        "exceptionCode": "FeatureNotEnabled",
        "exceptionMessage": "Async API not enabled",
    }
    refused = session.post(f"{base}job", headers={"X-SFDC-Session": "nope"}, json={}, timeout=10)
    assert refused.json()["exceptionCode"] == "InvalidSessionId"
