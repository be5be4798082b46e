"""HubSpot contacts through hubspot-api-client: list, search, batch read/update."""

from __future__ import annotations

import pytest
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectInput,
)
from hubspot.crm.contacts.exceptions import ApiException

from sandbox.testing import SandboxHandle


def _search(hs, groups, after=None, limit=200, sorts=None, properties=None):
    return hs.crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(
            filter_groups=groups,
            sorts=sorts or [],
            limit=limit,
            after=after,
            properties=properties or ["email", "lastmodifieddate"],
        )
    )


def test_list_pages_to_the_end_and_archived_apart(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    expected = sb.admin.expected("hubspot")
    seen, after = [], None
    while True:
        page = hs.crm.contacts.basic_api.get_page(
            limit=100, after=after, properties=["email", "lifecyclestage"]
        )
        seen += [c.id for c in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == expected["contacts"]
    assert all(not c.archived for c in page.results)
    archived = hs.crm.contacts.basic_api.get_page(limit=100, archived=True)
    assert [c.id for c in archived.results] == expected["archived_contacts"]
    assert all(c.archived and c.archived_at is not None for c in archived.results)


def test_search_pages_by_modstamp_to_the_end(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    groups = [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}]
    sorts = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    seen, after, total = [], None, None
    while True:
        page = _search(hs, groups, after=after, sorts=sorts)
        total = page.total
        seen += page.results
        if page.paging is None:
            break
        after = page.paging.next.after
    assert total == len(seen) == len(sb.admin.expected("hubspot")["contacts"])
    stamps = [c.properties["lastmodifieddate"] for c in seen]
    assert stamps == sorted(stamps)


def test_search_filters_on_id_and_time_window(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    ids = sb.admin.expected("hubspot")["contacts"][:5]
    page = _search(
        hs, [{"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": ids}]}]
    )
    assert sorted(c.id for c in page.results) == sorted(ids)
    first = _search(
        hs, [], limit=1, sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    ).results[0]
    stamp = first.properties["lastmodifieddate"]
    window = _search(
        hs,
        [
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": stamp},
                    {"propertyName": "lastmodifieddate", "operator": "LTE", "value": stamp},
                ]
            }
        ],
    )
    assert first.id in [c.id for c in window.results]
    gt = _search(
        hs,
        [{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": ids[-1]}]}],
        limit=1,
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
    )
    assert int(gt.results[0].id) > int(ids[-1])


def test_search_cap_answers_400(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    with pytest.raises(ApiException) as err:
        _search(hs, [], after="9900", limit=200)
    assert err.value.status == 400
    assert '"category": "VALIDATION_ERROR"' in err.value.body.replace('":"', '": "')
    assert _search(hs, [], after="9800", limit=200).results == []  # within the cap: fine


def test_search_refuses_oversized_pages_and_unknown_properties(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    for groups, limit in (
        ([], 201),
        ([{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}], 10),
    ):
        with pytest.raises(ApiException) as err:
            _search(hs, groups, limit=limit)
        assert err.value.status == 400


def test_batch_read_reports_missing_ids_as_207(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    ids = sb.admin.expected("hubspot")["contacts"][:3]
    out = hs.crm.contacts.batch_api.read(
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in [*ids, "1"]],
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert sorted(r.id for r in out.results) == sorted(ids)
    assert out.errors[0].category == "OBJECT_NOT_FOUND"
    assert out.errors[0].context == {"ids": ["1"]}


def test_batch_update_writes_and_reports_per_record_errors(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    ids = sb.admin.expected("hubspot")["contacts"][10:13]
    out = hs.crm.contacts.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(
                    id=i, properties={"mqlsync_score": "57", "mqlsync_grade": "B"}
                )
                for i in [*ids, "2"]
            ]
        )
    )
    assert sorted(r.id for r in out.results) == sorted(ids)
    assert out.errors[0].context == {"ids": ["2"]}
    stored = sb.admin.hubspot_contact(ids[0])["properties"]
    assert stored["mqlsync_score"] == "57" and stored["mqlsync_grade"] == "B"


def test_batch_update_refuses_unknown_property_and_over_100(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    ids = sb.admin.expected("hubspot")["contacts"]
    for inputs in (
        [SimplePublicObjectBatchInput(id=ids[0], properties={"nope": "1"})],
        [SimplePublicObjectBatchInput(id=i, properties={"mqlsync_grade": "A"}) for i in ids[:101]],
    ):
        with pytest.raises(ApiException) as err:
            hs.crm.contacts.batch_api.update(
                batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
                    inputs=inputs
                )
            )
        assert err.value.status == 400


def _stage(sb: SandboxHandle, cid: str) -> str | None:
    return sb.admin.hubspot_contact(cid)["properties"]["lifecyclestage"]


def test_lifecycle_backward_move_ignored_then_done_in_two_steps(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    cid = sb.admin.expected("hubspot")["contacts"][20]
    api = hs.crm.contacts.basic_api
    api.update(
        cid,
        simple_public_object_input=SimplePublicObjectInput(
            properties={"lifecyclestage": "salesqualifiedlead"}
        ),
    )
    # HubSpot answers 200 and keeps the stage: a plain set never moves it backward.
    kept = api.update(
        cid,
        simple_public_object_input=SimplePublicObjectInput(properties={"lifecyclestage": "lead"}),
    )
    assert kept.properties["lifecyclestage"] == "salesqualifiedlead"
    assert _stage(sb, cid) == "salesqualifiedlead"
    api.update(
        cid, simple_public_object_input=SimplePublicObjectInput(properties={"lifecyclestage": ""})
    )
    assert _stage(sb, cid) is None
    api.update(
        cid,
        simple_public_object_input=SimplePublicObjectInput(properties={"lifecyclestage": "lead"}),
    )
    assert _stage(sb, cid) == "lead"


def test_lifecycle_backward_move_in_a_batch_is_ignored(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    a, b = sb.admin.expected("hubspot")["contacts"][30:32]
    batch = hs.crm.contacts.batch_api
    batch.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[SimplePublicObjectBatchInput(id=a, properties={"lifecyclestage": "customer"})]
        )
    )
    out = batch.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(
                    id=a, properties={"lifecyclestage": "lead", "mqlsync_grade": "A"}
                ),
                SimplePublicObjectBatchInput(id=b, properties={"mqlsync_grade": "C"}),
            ]
        )
    )
    assert not getattr(out, "errors", None)  # a 200, not a 207
    by_id = {r.id: r.properties for r in out.results}
    assert by_id[a]["lifecyclestage"] == "customer" and by_id[a]["mqlsync_grade"] == "A"
    assert _stage(sb, a) == "customer"


def test_writes_move_lastmodifieddate_forward(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    cid = sb.admin.expected("hubspot")["contacts"][40]
    before = sb.admin.hubspot_contact(cid)["properties"]["lastmodifieddate"]
    hs.crm.contacts.basic_api.update(
        cid,
        simple_public_object_input=SimplePublicObjectInput(
            properties={"mqlsync_reasons": "pricing x2"}
        ),
    )
    after = sb.admin.hubspot_contact(cid)["properties"]["lastmodifieddate"]
    assert after > before
    recent = _search(
        hs, [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": after}]}]
    )
    assert cid in [c.id for c in recent.results]


def test_search_slices_by_id_range_like_a_full_scan(sb: SandboxHandle) -> None:
    hs = sb.hubspot_client()
    ids = sb.admin.expected("hubspot")["contacts"]
    lo, hi = ids[100], ids[160]
    sliced = _search(
        hs,
        [
            {
                "filters": [
                    {"propertyName": "hs_object_id", "operator": "GTE", "value": lo},
                    {"propertyName": "hs_object_id", "operator": "LT", "value": hi},
                    {"propertyName": "lifecyclestage", "operator": "NEQ", "value": "customer"},
                ]
            }
        ],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        properties=["lifecyclestage"],
    )
    expected = [
        i
        for i in ids[100:160]
        if sb.admin.hubspot_contact(i)["properties"]["lifecyclestage"] != "customer"
    ]
    assert [c.id for c in sliced.results] == expected
    # A value the index cannot use is still applied as a filter.
    odd = _search(
        hs,
        [{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": f"{hi}.5"}]}],
        limit=1,
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
    )
    assert int(odd.results[0].id) > int(hi)
