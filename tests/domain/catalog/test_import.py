"""Catalog import: all-or-nothing validation with a report, versions, publish and suspend."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from core.audit import AuditEvent
from domain.catalog.errors import InvalidTransition, ItemSuspended, NothingToPublish, VersionNotFound
from domain.catalog.export import export_catalog
from domain.catalog.importing import import_catalog
from domain.catalog.models import Bundle, Category, ServiceItem, ServiceItemVersion
from domain.catalog.publishing import publish_item, set_item_status
from domain.catalog.versions import pin_current, version_document
from domain.operators.audit_log import Actor
from tests.domain.catalog.factories import ID_CARD, bundle, document, item, marriage_item

ACTOR = Actor(type="operator", id="op-1")


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _problems(report) -> set[tuple[str, str]]:
    return {(p.path, p.code) for p in report.problems}


def test_a_valid_import_creates_draft_versions_invisible_until_published(app, db_session):
    report = import_catalog(db_session, ACTOR, document(item(), marriage_item()), dry_run=False)
    assert report.ok, report.problems
    assert set(report.items.values()) == {"created"}
    rows = db_session.scalars(select(ServiceItem)).all()
    assert {r.status for r in rows} == {"draft"} and {r.published_version for r in rows} == {None}
    assert app.extensions["yiwang"].catalog.snapshot().entries == []

    publish_item(db_session, ACTOR, item()["code"])
    entries = app.extensions["yiwang"].catalog.snapshot().entries
    assert [e["code"] for e in entries] == [item()["code"]]


def test_dry_run_reports_changes_and_writes_nothing(db_session):
    report = import_catalog(db_session, ACTOR, document(item()), dry_run=True)
    assert report.ok and report.dry_run and report.items == {item()["code"]: "created"}
    assert _count(db_session, ServiceItem) == 0 and _count(db_session, Category) == 0


def test_every_problem_is_reported_with_its_path_and_nothing_is_imported(db_session):
    bad_code = item(code="11440100MB2C99999U3000105004001")  # basic code does not match the tail
    bad_uscc = item("000105004002", implementing_body={"name": "某局", "uscc": "11440100MB2C99999A"})
    unknown_ecert = item("000105004003")
    unknown_ecert["materials"][0]["ecert_types"] = ["11100000000019713D999"]
    bad_schema = item("000105004004")
    bad_schema["form"]["schema"]["properties"]["reason"]["properties"]["kind"]["type"] = "strin"
    duplicate = item()
    bad_region = item("000105004005", region="990100")
    bad_type = item("000105004006", type="11", visits=-1)
    doc = document(item(), duplicate, bad_code, bad_uscc, unknown_ecert, bad_schema, bad_region, bad_type)
    doc["reference"]["ecert_types"].append({"code": "11100000000019713X001", "name": "坏类型"})

    report = import_catalog(db_session, ACTOR, doc, dry_run=False)
    found = _problems(report)
    assert ("items[1].code", "duplicate") in found
    assert ("items[2].code", "invalid_code") in found
    assert ("items[3].implementing_body.uscc", "invalid_code") in found
    assert ("items[4].materials[0].ecert_types[0]", "unknown_ecert_type") in found
    assert any(
        path.startswith("items[5].form.schema") and code == "invalid_form_schema" for path, code in found
    )
    assert ("items[6].region", "invalid_code") in found
    assert ("items[7].type", "invalid") in found and ("items[7].visits", "invalid") in found
    assert ("reference.ecert_types[3].code", "invalid_code") in found
    subjects = {p.subject for p in report.problems if p.path.startswith("items[4]")}
    assert subjects == {unknown_ecert["code"]}
    assert _count(db_session, ServiceItem) == 0 and _count(db_session, Category) == 0


@pytest.mark.parametrize("tail", ["身份", "０１", "²³", "٠١"])
def test_an_implementation_code_is_ascii_letters_and_digits_only(db_session, tail):
    """A 10-character basic code leaves two characters of the 实施编码 unchecked by the other
    rules; str.isalnum() let Chinese, full-width and other non-ASCII characters through there."""
    odd = item("0001050040")
    odd["code"] = odd["code"][:29] + tail
    report = import_catalog(db_session, ACTOR, document(odd), dry_run=True)
    assert ("items[0].code", "invalid_code") in _problems(report)
    assert item("0001050040")["code"].isascii()  # the same item with ASCII digits there is fine
    assert import_catalog(db_session, ACTOR, document(item("0001050040")), dry_run=True).ok


@pytest.mark.parametrize("region", ["44０１００", "44٠١٠٠"])
def test_a_region_code_is_six_ascii_digits(db_session, region):
    report = import_catalog(db_session, ACTOR, document(item(region=region)), dry_run=True)
    assert ("items[0].region", "invalid_code") in _problems(report)


def test_form_hints_and_prefill_must_name_real_fields_and_sources(db_session):
    doc = item()
    doc["form"]["ui"]["order"].append("applicant.nickname")
    doc["form"]["ui"]["fields"]["reason.kind"]["enum_labels"]["lost"] = {"zh": "遗失"}
    doc["form"]["prefill"]["reason.kind"] = "shared.unknown.field"
    doc["form"]["schema"]["properties"]["extra"] = {"$ref": "https://example.com/schema.json"}
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    found = _problems(report)
    assert ("items[0].form.ui.order[4]", "unknown_form_field") in found
    assert ("items[0].form.ui.fields.reason.kind.enum_labels.lost", "unknown_form_field") in found
    assert ("items[0].form.prefill.reason.kind", "unknown_source") in found
    assert ("items[0].form.schema", "invalid_form_schema") in found  # remote $ref refused


@pytest.mark.parametrize("source", [[], ["identity.name"], {}, {"a": "b"}, 3, None])
def test_a_prefill_source_that_is_not_a_string_is_a_problem_not_a_crash(db_session, source):
    doc = item()
    doc["form"]["prefill"]["applicant.name"] = source
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    assert ("items[0].form.prefill.applicant.name", "unknown_source") in _problems(report)


def test_unknown_fields_and_wrong_types_are_problems_not_crashes(db_session):
    for junk in (None, [], "x", 1, {"items": "nope"}, {"items": [None, 3, "x"]}, {"surprise": 1}):
        report = import_catalog(db_session, ACTOR, junk, dry_run=False)
        assert not report.ok
    weird = item(
        materials=[{"id": "A B", "name": "", "requirement": "maybe", "originals": "1"}], fee={"charged": 1}
    )
    report = import_catalog(db_session, ACTOR, document(weird), dry_run=True)
    found = _problems(report)
    assert ("items[0].materials[0].id", "invalid") in found
    assert ("items[0].materials[0].name", "required") in found
    assert ("items[0].materials[0].requirement", "invalid") in found
    assert ("items[0].materials[0].originals", "invalid") in found
    assert ("items[0].fee.charged", "invalid") in found


@pytest.mark.parametrize("amount", ["NaN", "sNaN", "Infinity", "1e99999999", "-5", "0", "1.234", "1,000"])
def test_a_fee_amount_is_plain_yuan_or_a_problem(db_session, amount):
    """Decimal reads NaN, Infinity and exponents (1e99999999 formats to 100 MB): each was a
    crash or worse; now the item's report names the field."""
    odd = item(fee={"charged": True, "amount": amount, "basis": "《收费标准》"})
    report = import_catalog(db_session, ACTOR, document(odd), dry_run=True)
    assert ("items[0].fee.amount", "invalid") in _problems(report)


def test_a_fee_amount_in_yuan_is_kept_with_two_decimals(db_session):
    fine = item(fee={"charged": True, "amount": "12.5", "basis": "《收费标准》"})
    report = import_catalog(db_session, ACTOR, document(fine, publish=True), dry_run=False)
    assert report.ok, report.problems
    version = db_session.scalars(select(ServiceItemVersion)).one()
    assert version.document["fee"]["amount"] == "12.50"


def test_an_application_pinned_to_v1_keeps_v1_after_v2_is_published(app, db_session):
    code = item()["code"]
    import_catalog(db_session, ACTOR, document(item(), publish=True), dry_run=False)
    pin = pin_current(db_session, code)
    assert pin.version == 1

    changed = item(fee={"charged": False}, keywords=["换身份证", "身份证过期"])
    report = import_catalog(db_session, ACTOR, document(changed), dry_run=False)
    assert report.items[code] == "new_version"
    event = db_session.scalars(
        select(AuditEvent).where(AuditEvent.action == "catalog.item.new_version")
    ).one()
    assert event.details["changed_fields"] == ["fee", "keywords"] and event.actor_id == "op-1"
    # The draft is not visible yet: the published version is still 1.
    assert pin_current(db_session, code).version == 1
    publish_item(db_session, ACTOR, code)

    assert pin_current(db_session, code).version == 2
    assert version_document(db_session, pin.code, pin.version)["fee"]["charged"] is True
    assert version_document(db_session, code, 2)["fee"]["charged"] is False
    states = dict(db_session.execute(select(ServiceItemVersion.version, ServiceItemVersion.state)).all())
    assert states == {1: "retired", 2: "published"}
    # Re-importing the same content changes nothing; a draft is never readable by citizens.
    again = import_catalog(db_session, ACTOR, document(changed), dry_run=False)
    assert again.items[code] == "unchanged"
    with pytest.raises(NothingToPublish):
        publish_item(db_session, ACTOR, code)
    import_catalog(db_session, ACTOR, document(item(name="居民身份证换领（新）")), dry_run=False)
    with pytest.raises(VersionNotFound):
        version_document(db_session, code, 3)


def test_a_draft_is_updated_in_place_until_published(db_session):
    code = item()["code"]
    import_catalog(db_session, ACTOR, document(item()), dry_run=False)
    report = import_catalog(db_session, ACTOR, document(item(visits=0, online_depth=4)), dry_run=False)
    assert report.items[code] == "draft_updated"
    assert _count(db_session, ServiceItemVersion) == 1


def test_suspend_hides_the_item_and_refuses_new_applications(app, db_session):
    code = item()["code"]
    import_catalog(db_session, ACTOR, document(item(), publish=True), dry_run=False)
    set_item_status(db_session, ACTOR, code, suspend=True, reason="系统升级")
    assert app.extensions["yiwang"].catalog.snapshot().entries == []
    with pytest.raises(ItemSuspended):
        pin_current(db_session, code)
    with pytest.raises(InvalidTransition):
        set_item_status(db_session, ACTOR, code, suspend=True, reason="again")
    set_item_status(db_session, ACTOR, code, suspend=False, reason="恢复")
    assert pin_current(db_session, code).version == 1
    actions = db_session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == code)).all()
    assert {
        "catalog.item.created",
        "catalog.item.publish",
        "catalog.item.suspend",
        "catalog.item.resume",
    } <= set(actions)
    assert set(db_session.scalars(select(AuditEvent.actor_id).where(AuditEvent.target_id == code))) == {
        "op-1"
    }


def test_bundle_items_may_share_a_group_only_when_defined_identically(db_session):
    a, b = item(), marriage_item()
    ok = import_catalog(
        db_session,
        ACTOR,
        document(a, b, bundles=[bundle([a["code"], b["code"]])], publish=True),
        dry_run=False,
    )
    assert ok.ok, ok.problems
    assert ok.bundles["YJS-TEST"] == "created+published"

    clash = copy.deepcopy(b)
    clash["form"]["schema"]["properties"]["applicant"]["properties"]["name"]["maxLength"] = 50
    doc = document(a, clash, bundles=[bundle([a["code"], b["code"]])])
    report = import_catalog(db_session, ACTOR, doc, dry_run=True)
    assert ("bundles[0].items", "form_conflict") in _problems(report)
    missing = import_catalog(
        db_session, ACTOR, document(bundles=[bundle(["X" * 31, a["code"]])]), dry_run=True
    )
    assert ("bundles[0].items[0]", "unknown_item") in _problems(missing)


def test_export_round_trips_through_import_unchanged(db_session):
    import_catalog(db_session, ACTOR, document(item(), marriage_item(), publish=True), dry_run=False)
    exported = export_catalog(db_session)
    report = import_catalog(db_session, ACTOR, exported, dry_run=True)
    assert report.ok, report.problems
    assert set(report.items.values()) == {"unchanged"}
    assert ID_CARD in {e["code"] for e in exported["reference"]["ecert_types"]}


def test_an_item_change_that_would_break_a_stored_bundle_form_is_refused(db_session):
    a, b = item(), marriage_item()
    doc = document(a, b, bundles=[bundle([a["code"], b["code"]])], publish=True)
    assert import_catalog(db_session, ACTOR, doc, dry_run=False).ok
    clash = copy.deepcopy(b)
    clash["form"]["schema"]["properties"]["applicant"]["properties"]["phone"]["pattern"] = "^\\d+$"
    report = import_catalog(db_session, ACTOR, document(clash), dry_run=False)
    assert {(p.path, p.code, p.subject) for p in report.problems} == {
        ("bundle YJS-TEST", "form_conflict", "YJS-TEST")
    }


def test_one_item_of_a_published_bundle_is_not_published_alone_into_a_conflicting_form(db_session):
    """Both items get a new applicant group together, as drafts; publishing one alone would give
    the published bundle two definitions of it, and its merged form would keep the old one (the
    new item's field not asked). Published together, or with the bundle suspended, it goes."""
    from domain.catalog.errors import BundleFormConflict
    from domain.catalog.publishing import set_bundle_status

    a, b = item(), marriage_item()
    first = document(a, b, bundles=[bundle([a["code"], b["code"]])], publish=True)
    assert import_catalog(db_session, ACTOR, first, dry_run=False).ok
    new_a, new_b = copy.deepcopy(a), copy.deepcopy(b)
    for changed in (new_a, new_b):
        changed["form"]["schema"]["properties"]["applicant"]["properties"]["phone"]["pattern"] = "^1\\d{10}$"
    assert import_catalog(db_session, ACTOR, document(new_a, new_b), dry_run=False).ok  # drafts agree
    with pytest.raises(BundleFormConflict) as refused:
        publish_item(db_session, ACTOR, a["code"])
    db_session.rollback()
    assert refused.value.details["conflicts"][0]["bundle"] == "YJS-TEST"
    assert "applicant" in refused.value.details["conflicts"][0]["problem"]
    assert db_session.scalar(select(ServiceItem.published_version).where(ServiceItem.code == a["code"])) == 1
    alone = import_catalog(db_session, ACTOR, document(new_a, publish=True), dry_run=True)
    assert ("bundle YJS-TEST", "form_conflict") in _problems(alone)
    together = import_catalog(db_session, ACTOR, document(new_a, new_b, publish=True), dry_run=False)
    assert together.ok, together.problems
    # With the bundle suspended an item may go first; the bundle resumes once the other follows.
    newer_a, newer_b = copy.deepcopy(new_a), copy.deepcopy(new_b)
    for changed in (newer_a, newer_b):
        changed["form"]["schema"]["properties"]["applicant"]["properties"]["phone"]["pattern"] = (
            "^1[3-9]\\d{9}$"
        )
    assert import_catalog(db_session, ACTOR, document(newer_a, newer_b), dry_run=False).ok
    set_bundle_status(db_session, ACTOR, "YJS-TEST", suspend=True, reason="表单调整")
    publish_item(db_session, ACTOR, a["code"])
    with pytest.raises(BundleFormConflict):
        set_bundle_status(db_session, ACTOR, "YJS-TEST", suspend=False, reason="恢复")
    db_session.rollback()
    publish_item(db_session, ACTOR, b["code"])
    set_bundle_status(db_session, ACTOR, "YJS-TEST", suspend=False, reason="恢复")


def test_a_bundle_cannot_be_published_over_draft_items(db_session):
    a, b = item(), marriage_item()
    assert import_catalog(db_session, ACTOR, document(a, b), dry_run=False).ok
    report = import_catalog(
        db_session, ACTOR, document(bundles=[bundle([a["code"], b["code"]])], publish=True), dry_run=False
    )
    assert {p.path for p in report.problems} == {"bundles[0].items[0]", "bundles[0].items[1]"}


def test_an_import_does_not_publish_a_bundle_over_a_suspended_item(db_session):
    """Publishing a new version leaves a suspended item suspended: a bundle over it, published in
    the same import, would be shown as published to operators while no citizen can start it."""
    card, marriage = item(), marriage_item()
    assert import_catalog(db_session, ACTOR, document(card, marriage), dry_run=False).ok
    publish_item(db_session, ACTOR, card["code"])
    publish_item(db_session, ACTOR, marriage["code"])
    set_item_status(db_session, ACTOR, marriage["code"], suspend=True, reason="系统升级")

    doc = document(card, marriage, bundles=[bundle([card["code"], marriage["code"]])], publish=True)
    report = import_catalog(db_session, ACTOR, doc, dry_run=False)
    assert [(p.path, p.code) for p in report.problems] == [("bundles[0].items[1]", "item_suspended")]
    assert db_session.scalar(select(Bundle).where(Bundle.code == "YJS-TEST")) is None  # nothing written


def test_a_suspended_item_problem_points_at_its_bundle_and_says_suspended(db_session):
    card, marriage = item(), marriage_item()
    assert import_catalog(db_session, ACTOR, document(card, marriage), dry_run=False).ok
    publish_item(db_session, ACTOR, card["code"])
    publish_item(db_session, ACTOR, marriage["code"])
    set_item_status(db_session, ACTOR, marriage["code"], suspend=True, reason="系统升级")
    broken = bundle([card["code"]], code="YJS-BAD", region="bad")  # bundles[0]: a problem of its own
    good = bundle([card["code"], marriage["code"]])  # bundles[1]: over the suspended item
    doc = document(card, marriage, bundles=[broken, good], publish=True)
    report = import_catalog(db_session, ACTOR, doc, dry_run=True)
    [suspended] = [p for p in report.problems if p.code == "item_suspended"]
    assert suspended.path == "bundles[1].items[1]"  # the editor is sent to the right bundle
    assert suspended.as_dict("zh")["message"] == "事项已暂停办理"
    assert suspended.as_dict("en")["message"] == "The item is suspended"


def test_a_routine_reimport_passes_while_a_published_bundles_item_is_suspended(db_session):
    card, marriage = item(), marriage_item()
    doc = document(card, marriage, bundles=[bundle([card["code"], marriage["code"]])], publish=True)
    assert import_catalog(db_session, ACTOR, doc, dry_run=False).ok
    set_item_status(db_session, ACTOR, marriage["code"], suspend=True, reason="系统升级")
    again = import_catalog(db_session, ACTOR, doc, dry_run=False)
    assert again.ok, again.problems
    assert again.bundles == {"YJS-TEST": "unchanged"}


def test_a_large_import_is_accepted_in_one_document(db_session):
    many = [item(f"{900000000000 + n:012d}", f"测试事项{n}") for n in range(250)]
    report = import_catalog(db_session, ACTOR, document(*many), dry_run=True)
    assert report.ok, report.problems[:3]
    assert len(report.items) == 250


def test_a_material_keeps_its_english_name_and_may_go_without_one(app, client, db_session):
    named = item()
    named["materials"][0]["name_en"] = "Current resident identity card"
    assert import_catalog(db_session, ACTOR, document(named), dry_run=False).ok
    publish_item(db_session, ACTOR, named["code"])
    shown = client.get(f"/v1/services/{named['code']}").get_json()["materials"]
    assert [(m["name"], m.get("name_en")) for m in shown[:2]] == [
        ("原居民身份证", "Current resident identity card"),
        ("居民户口簿", None),  # none in the catalog
    ]
    again = import_catalog(db_session, ACTOR, document(named), dry_run=True)
    assert again.items == {named["code"]: "unchanged"}
    wrong = item()
    wrong["materials"][0]["name_en"] = 7
    report = import_catalog(db_session, ACTOR, document(wrong), dry_run=True)
    assert ("items[0].materials[0].name_en", "invalid") in _problems(report)


@pytest.mark.parametrize("digits", ["٠٠١", "００１", "001\n"])
def test_an_ecert_type_code_ends_in_three_ascii_digits(db_session, digits):
    """GB/T 36901: the issuer's USCC and three digits, ASCII only, and nothing after them."""
    doc = document(item())
    doc["reference"]["ecert_types"].append({"code": ID_CARD[:18] + digits, "name": "怪码证照", "issuer": "x"})
    report = import_catalog(db_session, ACTOR, doc, dry_run=True)
    assert any(path.startswith("reference.ecert_types") for path, _ in _problems(report)), _problems(report)


def test_department_and_category_codes_have_two_characters_at_least(db_session):
    doc = document(item())
    doc["reference"]["departments"].append({"code": "a", "name": "单字母部门"})
    doc["reference"]["categories"].append({"code": "b", "name": "单字母分类", "audience": "personal"})
    found = _problems(import_catalog(db_session, ACTOR, doc, dry_run=True))
    paths = {path for path, _ in found}
    assert any(p.startswith("reference.departments") for p in paths), found
    assert any(p.startswith("reference.categories") for p in paths), found


def test_the_item_row_shows_the_published_versions_basic_code(db_session):
    """A new version may shorten the basic code (the implementation code's tail still starts
    with it): the item's row, which the admin list and CSV show, follows the published version
    as its name does."""
    first = item()
    assert import_catalog(db_session, ACTOR, document(first, publish=True), dry_run=False).ok
    shorter = item("0001050040", name="居民身份证换领（新）")
    assert shorter["code"] == first["code"]
    assert import_catalog(db_session, ACTOR, document(shorter, publish=True), dry_run=False).ok
    row = db_session.scalars(select(ServiceItem).where(ServiceItem.code == first["code"])).one()
    assert (row.basic_code, row.name) == ("0001050040", "居民身份证换领（新）")


def test_renaming_a_department_is_audited_with_what_changed(db_session):
    doc = document(item())
    assert import_catalog(db_session, ACTOR, doc, dry_run=False).ok
    renamed = copy.deepcopy(doc)
    dept = renamed["reference"]["departments"][0]
    old_name, dept["name"] = dept["name"], dept["name"] + "（新）"
    reference_events = select(AuditEvent).where(AuditEvent.action.like("catalog.reference.%"))
    summaries = select(AuditEvent).where(AuditEvent.action == "catalog.import")
    seen = {e.id for e in db_session.scalars(reference_events)} | {
        e.id for e in db_session.scalars(summaries)
    }
    assert import_catalog(db_session, ACTOR, renamed, dry_run=False).ok
    # Read by what is new, not by time: the test clock may give both imports one instant.
    events = [e for e in db_session.scalars(reference_events) if e.id not in seen]
    assert [(e.action, e.target_id) for e in events] == [("catalog.reference.updated", dept["code"])]
    assert events[0].details == {"changed": {"name": [old_name, dept["name"]]}}
    assert events[0].actor_id == ACTOR.id
    summary = [e for e in db_session.scalars(summaries) if e.id not in seen]
    assert [e.details["reference_changed"] for e in summary] == [1]
    # The same list again changes nothing and records nothing.
    counted = (
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("catalog.reference.%"))
    )
    before = db_session.scalar(counted)
    assert import_catalog(db_session, ACTOR, renamed, dry_run=False).ok
    assert db_session.scalar(counted) == before


def test_a_time_limit_longer_than_the_calendar_counts_is_refused_at_import(db_session):
    """121 months would have been stored, and every acceptance of the item then failed."""
    from tests.domain.catalog.factories import document, item

    doc = item(
        time_limits={"legal": {"value": 121, "unit": "month"}, "promised": {"value": 120, "unit": "month"}}
    )
    report = import_catalog(db_session, ACTOR, document(doc), dry_run=True)
    assert [p.path for p in report.problems] == ["items[0].time_limits.legal.value"]
