"""Response schemas of the applications API (what phones receive; also the OpenAPI docs)."""

from __future__ import annotations

from marshmallow import fields, validate

from api.schemas import JsonBoolean, StrictSchema


class ProvenanceSchema(StrictSchema):
    source = fields.String(
        metadata={"description": "identity.*, account.phone, exchange:<dataset>, application or user"}
    )
    record_id = fields.String(allow_none=True)
    retrieved_at = fields.String()
    verified = fields.Boolean()
    read_only = fields.Boolean()
    masked = fields.String(metadata={"description": "present when the value is shown masked"})
    replaced = fields.String(metadata={"description": "the source a citizen's edit replaced"})


class SatisfiedBySchema(StrictSchema):
    kind = fields.String(metadata={"description": "upload, reuse, ecert or shared"})
    file_id = fields.String(allow_none=True)
    ref = fields.String(allow_none=True)
    media_type = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True)
    sha256 = fields.String(allow_none=True)
    attached_at = fields.String()


class MaterialStateSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    requirement = fields.String(metadata={"description": "required or conditional"})
    condition = fields.String(allow_none=True)
    accepts = fields.Dict(metadata={"description": "{ecert_types, shared_data} that can stand in"})
    satisfied = fields.Boolean()
    satisfied_by = fields.List(fields.Nested(SatisfiedBySchema))
    editable = fields.Boolean()


class ApplicationSchema(StrictSchema):
    id = fields.String()
    kind = fields.String(metadata={"description": "item or bundle"})
    service_code = fields.String()
    bundle_code = fields.String(allow_none=True)
    service_name = fields.String()
    items = fields.List(fields.Dict(), metadata={"description": "[{code, version}] pinned at creation"})
    status = fields.String()
    status_label = fields.String()
    province = fields.Dict(
        allow_none=True,
        metadata={
            "description": "provincial platform: {state: waiting|delayed|received, label, receipt_no, "
            "received_at}; delayed: forwarding gave up and staff are correcting it (no need to submit again)"
        },
    )
    result = fields.String(metadata={"description": "approved or denied (completed cases)"})
    result_label = fields.String()
    revision = fields.Integer(metadata={"description": "also the ETag; send it back in If-Match"})
    submission_version = fields.Integer()
    case_number = fields.String(allow_none=True, metadata={"description": "办件编号, set on submission"})
    created_at = fields.String()
    updated_at = fields.String()
    submitted_at = fields.String(allow_none=True)
    draft_expires_at = fields.String(allow_none=True)
    expected_completion = fields.String(allow_none=True)
    overdue = fields.Boolean()
    clock_paused = fields.Boolean()
    data = fields.Dict(metadata={"description": "form data; prefilled identity and phone values masked"})
    provenance = fields.Dict(keys=fields.String(), values=fields.Nested(ProvenanceSchema))
    prefill_missing = fields.List(fields.String())
    materials = fields.List(fields.Nested(MaterialStateSchema))
    supplement = fields.Dict(
        allow_none=True,
        metadata={
            "description": "{fields, materials, blank_neighbours, reason, answered}: answered is false until"
            " an opened field (named or blank neighbour) is given a value or emptied, or a named material"
            " is changed; a resubmission before that is 422"
        },
    )
    editable_fields = fields.Raw(
        metadata={"description": '"all" in a draft, else the list a supplement names'}
    )
    identity_requirement = fields.Dict()
    consent = fields.Dict(metadata={"description": "drafts: {text, text_version} to agree to on submit"})
    data_sharing = fields.Dict(
        allow_none=True,
        metadata={
            "description": "what shared data and e-certificates can fill this application: {authorised, "
            "granted_at, datasets [{id, name, status, status_label, expected_by, reason}], "
            "certificate_types, "
            "text, text_version} (null: the service uses none); authorise with POST .../data-sharing"
        },
    )


class ListItemSchema(StrictSchema):
    id = fields.String()
    service_name = fields.String()
    service_code = fields.String()
    case_number = fields.String(allow_none=True)
    status = fields.String()
    status_label = fields.String()
    province = fields.Dict(
        allow_none=True,
        metadata={
            "description": "provincial platform: {state: waiting|received, label, receipt_no, received_at}"
        },
    )
    result = fields.String()
    result_label = fields.String()
    updated_at = fields.String()
    expected_completion = fields.String(allow_none=True)
    overdue = fields.Boolean()
    clock_paused = fields.Boolean()


class ListSchema(StrictSchema):
    items = fields.List(fields.Nested(ListItemSchema))
    next_cursor = fields.String(allow_none=True)


class EventSchema(StrictSchema):
    seq = fields.Integer()
    at = fields.String()
    from_status = fields.String(allow_none=True)
    status = fields.String()
    status_label = fields.String()
    actor = fields.String(metadata={"description": "citizen, province, operator or system"})
    note = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)
    asked = fields.List(
        fields.Dict(),
        metadata={"description": "a supplement request: what it asks for, {kind: material|field, id, name}"},
    )


class TimelineSchema(StrictSchema):
    events = fields.List(fields.Nested(EventSchema))


class FormSchema(StrictSchema):
    schema = fields.Dict(metadata={"description": "JSON Schema 2020-12 of the data"})
    ui = fields.Dict()
    prefill = fields.Dict()


class FileSchema(StrictSchema):
    id = fields.String()
    material_id = fields.String()
    media_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    created_at = fields.String()


class ReusableSchema(StrictSchema):
    reusable = fields.List(fields.Nested(FileSchema))


class DataSharingSchema(StrictSchema):
    accepted = JsonBoolean(required=True, metadata={"description": "the citizen ticked the authorisation"})
    text_version = fields.String(
        required=True, validate=validate.Length(max=40), metadata={"description": "data_sharing.text_version"}
    )
