"""Materials: a new upload, the reuse of an earlier upload of the same account, removal, orphans.

An upload is checked by its bytes (domain/applications/files.py: magic bytes, a full decode,
metadata stripped), encrypted (SM4-GCM, key id inside) and written to blob storage *before*
the database row that references it is committed. A request that dies in between leaves a
blob no row names; `sweep_orphans` removes such blobs, and file rows no application uses,
after a grace period.

The sweep and a reuse of the same file must not interleave: the sweep takes the orphan rows
with FOR UPDATE SKIP LOCKED and deletes them before it touches a blob, and a reuse reads its
source row FOR SHARE, so either the reuse sees no file (404) or the sweep skips it.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import new_id, take_write_lock
from core.errors import ServiceUnavailable
from domain.applications import files, states
from domain.applications.deps import ApplicationDeps
from domain.applications.errors import (
    FileCorrupt,
    FileEmpty,
    FileNotFound,
    FileTooLarge,
    FileTooManyPixels,
    FileUnsupported,
    MaterialLocked,
    MaterialNotNamed,
    MaterialUnknown,
    TooManyFiles,
)
from domain.applications.models import Application, ApplicationFile, ApplicationMaterial
from domain.applications.service import mark_edited, owned, spec_of
from integrations.storage.base import StorageError, StorageUnavailable

FILE_PURPOSE = "application-file"
_ERRORS = {
    files.EmptyFile: FileEmpty,
    files.UnsupportedType: FileUnsupported,
    files.CorruptFile: FileCorrupt,
    files.TooManyPixels: FileTooManyPixels,
}


def _editable_material(session: Session, app: Application, material_id: str) -> None:
    spec = spec_of(session, app)
    if material_id not in spec.materials:
        raise MaterialUnknown()
    if app.status == states.DRAFT:
        return
    if app.status == states.SUPPLEMENT_REQUESTED:
        if material_id in (app.supplement or {}).get("materials", []):
            return
        raise MaterialNotNamed()  # told why, as a field outside the supplement is (FieldLocked)
    raise MaterialLocked()


def _room_for_one_more(session: Session, deps: ApplicationDeps, app: Application, material_id: str) -> None:
    """A material holds at most `max_files_per_material` attachments: without a bound, one
    account could fill the storage with 10 MB files on a single draft."""
    held = session.scalar(
        select(func.count())
        .select_from(ApplicationMaterial)
        .where(ApplicationMaterial.application_id == app.id, ApplicationMaterial.material_id == material_id)
    )
    if (held or 0) >= deps.max_files_per_material:
        raise TooManyFiles(limit=deps.max_files_per_material)


def upload(
    session: Session,
    deps: ApplicationDeps,
    *,
    account_id: str,
    app_id: str,
    material_id: str,
    data: bytes,
    filename: str | None,
    request_id: str | None = None,
) -> ApplicationFile:
    app = owned(session, account_id, app_id)
    _editable_material(session, app, material_id)
    _room_for_one_more(session, deps, app, material_id)  # before storing anything
    session.rollback()  # no transaction stays open while the file is checked and stored
    if len(data) > deps.max_file_bytes:
        raise FileTooLarge.of(deps.max_file_bytes)
    try:
        checked = files.inspect(data)
    except tuple(_ERRORS) as exc:
        raise _ERRORS[type(exc)]() from exc
    file_id = new_id()
    key = f"materials/{account_id}/{file_id}"
    sealed = deps.encryptor.encrypt(checked.cleaned, purpose=FILE_PURPOSE)
    try:
        deps.storage.put(key, sealed.encode())
    except (StorageUnavailable, StorageError) as exc:
        raise ServiceUnavailable(details={"reason": "storage"}) from exc
    now = clock.now()
    app = owned(session, account_id, app_id, lock=True)  # state may have moved meanwhile
    _editable_material(session, app, material_id)
    _room_for_one_more(session, deps, app, material_id)  # the stored blob is swept as an orphan
    row = ApplicationFile(
        id=file_id, account_id=account_id, material_id=material_id, storage_key=key,
        sha256=checked.sha256, size=checked.size, media_type=checked.media_type,
        blob_key_id=deps.encryptor.key_id(sealed),
        name_enc=deps.encryptor.encrypt(filename[:200], purpose=FILE_PURPOSE) if filename else None,
        created_at=now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    session.add(
        ApplicationMaterial(
            application_id=app.id, material_id=material_id, kind="upload", file_id=file_id, attached_at=now
        )
    )
    mark_edited(app, deps, now)
    audit.record(
        session, actor_type="citizen", actor_id=account_id, action="application.file_uploaded",
        target_type="application", target_id=app.id, request_id=request_id,
        details={"material": material_id, "file": file_id, "sha256": checked.sha256, "size": checked.size},
    )  # fmt: skip
    session.commit()
    return row


def reuse(
    session: Session, deps: ApplicationDeps, *, account_id: str, app_id: str, material_id: str, file_id: str
) -> ApplicationMaterial:
    """Attach a file the same account uploaded for an earlier application (another account's: 404)."""
    app = owned(session, account_id, app_id, lock=True)
    _editable_material(session, app, material_id)
    _room_for_one_more(session, deps, app, material_id)
    source = session.scalar(
        select(ApplicationFile)
        .where(
            ApplicationFile.id == file_id,
            ApplicationFile.account_id == account_id,
            ApplicationFile.material_id == material_id,  # an ID-card photo is not an insurance record
        )
        .with_for_update(read=True)  # the orphan sweep cannot delete it under this reuse
    )
    if source is None:
        raise FileNotFound()
    existing = session.scalar(
        select(ApplicationMaterial).where(
            ApplicationMaterial.application_id == app.id,
            ApplicationMaterial.material_id == material_id,
            ApplicationMaterial.file_id == file_id,
        )
    )
    if existing is not None:
        session.rollback()
        return existing
    # A file no submitted application ever carried (uploaded to a draft abandoned or begun
    # again) is this errand's upload, not a reuse: the citizen uploaded it and no department has
    # it, so the measured burden must not count it as spared. Judged by content: the reusable
    # list offers each content once, as its newest copy, which may be a later upload of a photo
    # an earlier submission already carried.
    sent = session.scalar(
        select(
            exists().where(
                ApplicationMaterial.file_id == ApplicationFile.id,
                ApplicationFile.account_id == account_id,
                ApplicationFile.sha256 == source.sha256,
                ApplicationMaterial.application_id != app.id,
                ApplicationMaterial.application_id == Application.id,
                Application.submission_version > 0,
            )
        )
    )
    now = clock.now()
    row = ApplicationMaterial(
        application_id=app.id, material_id=material_id, kind="reuse" if sent else "upload", file_id=file_id,
        attached_at=now,
    )  # fmt: skip
    session.add(row)
    mark_edited(app, deps, now)
    session.commit()
    return row


def detach(
    session: Session, deps: ApplicationDeps, *, account_id: str, app_id: str, material_id: str, file_id: str
) -> None:
    app = owned(session, account_id, app_id, lock=True)
    _editable_material(session, app, material_id)
    result = session.execute(
        delete(ApplicationMaterial).where(
            ApplicationMaterial.application_id == app.id,
            ApplicationMaterial.material_id == material_id,
            ApplicationMaterial.file_id == file_id,
        )
    )
    if result.rowcount == 0:
        session.rollback()
        raise FileNotFound()
    mark_edited(app, deps, clock.now())
    session.commit()


REUSABLE_SHOWN = 20


def reusable(session: Session, *, account_id: str, app_id: str, material_id: str) -> list[ApplicationFile]:
    """Earlier uploads of this account for the same material id, newest first: each content once
    (the same photo uploaded for three applications is one choice, offered as its newest upload),
    and none this material of the application holds already, uploaded or reused. A material
    the application's service does not ask for is MaterialUnknown (404), as for an upload."""
    app = owned(session, account_id, app_id)
    if material_id not in spec_of(session, app).materials:
        raise MaterialUnknown()
    held = (  # the contents this material of the application holds (uploaded or reused)
        select(ApplicationFile.sha256)
        .join(ApplicationMaterial, ApplicationMaterial.file_id == ApplicationFile.id)
        .where(ApplicationMaterial.application_id == app_id, ApplicationMaterial.material_id == material_id)
    )
    rows = session.scalars(
        select(ApplicationFile)
        .where(
            ApplicationFile.account_id == account_id,
            ApplicationFile.material_id == material_id,
            exists().where(
                ApplicationMaterial.file_id == ApplicationFile.id,
                ApplicationMaterial.application_id != app_id,
            ),
            ApplicationFile.sha256.not_in(held),
        )
        .order_by(ApplicationFile.created_at.desc(), ApplicationFile.id.desc())
        .limit(REUSABLE_SHOWN * 5)  # room for repeats of one photo
    )
    shown: dict[str, ApplicationFile] = {}
    for row in rows:
        shown.setdefault(row.sha256, row)
    return list(shown.values())[:REUSABLE_SHOWN]


def read_file(
    session: Session, deps: ApplicationDeps, *, account_id: str, file_id: str
) -> tuple[ApplicationFile, bytes]:
    row = session.scalar(
        select(ApplicationFile).where(ApplicationFile.id == file_id, ApplicationFile.account_id == account_id)
    )
    if row is None:
        raise FileNotFound()
    return row, file_content(deps, row)


def file_content(deps: ApplicationDeps, row: ApplicationFile) -> bytes:
    """A stored file's bytes (kept encrypted in the blob store)."""
    blob = deps.storage.get(row.storage_key)
    return deps.encryptor.decrypt_bytes(blob.decode(), purpose=FILE_PURPOSE)


SWEEP_BATCH = 500  # file rows per transaction; bounded so a large backlog neither holds locks long nor
# builds statements with an unbounded number of parameters


def sweep_orphans(session: Session, deps: ApplicationDeps, *, batch: int = SWEEP_BATCH) -> dict[str, int]:
    """Remove file rows no application references and blobs no row names, older than the grace.

    A file that something else still holds (deps.file_holders: a complaint's evidence) stays.
    Works in committed batches of `batch` rows until none is left."""
    cutoff = clock.now() - timedelta(seconds=deps.orphan_grace_seconds)
    orphan = (
        ApplicationFile.created_at < cutoff,
        ~exists().where(ApplicationMaterial.file_id == ApplicationFile.id),
        *(~holds(ApplicationFile.id) for holds in deps.file_holders),
    )
    files = 0
    while True:
        take_write_lock(session, ApplicationFile.__table__, *orphan)
        stale = session.execute(
            select(ApplicationFile.id, ApplicationFile.storage_key)
            .where(*orphan)
            .order_by(ApplicationFile.created_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if stale:
            session.execute(delete(ApplicationFile).where(ApplicationFile.id.in_([r.id for r in stale])))
        session.commit()
        for row in stale:  # only once no row names them: a blob without a row is harmless, the reverse is not
            deps.storage.delete(row.storage_key)
        files += len(stale)
        if len(stale) < batch:
            break
    blobs = 0
    old: list[str] = []
    for key, modified in deps.storage.iter_keys("materials/"):
        if modified < cutoff:
            old.append(key)
        if len(old) >= batch:
            blobs += _drop_unnamed(session, deps, old)
            old = []
    blobs += _drop_unnamed(session, deps, old)
    partial = deps.storage.drop_partial_writes(cutoff)
    return {"files": files, "blobs": blobs, "partial_writes": partial}


def _drop_unnamed(session: Session, deps: ApplicationDeps, keys: list[str]) -> int:
    """Delete the blobs among `keys` that no file row names; how many."""
    if not keys:
        return 0
    known = set(
        session.scalars(select(ApplicationFile.storage_key).where(ApplicationFile.storage_key.in_(keys)))
    )
    session.commit()
    unnamed = [key for key in keys if key not in known]
    for key in unnamed:
        deps.storage.delete(key)
    return len(unnamed)
