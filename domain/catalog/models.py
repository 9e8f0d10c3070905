"""The service catalog's tables: reference lists, items with immutable published versions, bundles.

An item row is the stable identity (its 实施编码) and status; every change to its content is a
new row in `service_item_versions`. Once a version is published it is never updated again, so
an application that pinned version N can always read version N. `catalog_revision` is bumped in
the same transaction as every change citizens can see; read models in every process reload when
it moves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, UTCDateTime

STATUS_DRAFT = "draft"  # never published: invisible to citizens
STATUS_PUBLISHED = "published"
STATUS_SUSPENDED = "suspended"  # was published; hidden, and no new applications
ITEM_STATUSES = (STATUS_DRAFT, STATUS_PUBLISHED, STATUS_SUSPENDED)

VERSION_DRAFT = "draft"
VERSION_PUBLISHED = "published"  # the current published version
VERSION_RETIRED = "retired"  # published once, superseded by a newer one; still readable
VERSION_STATES = (VERSION_DRAFT, VERSION_PUBLISHED, VERSION_RETIRED)


class CatalogRevision(Base):
    __tablename__ = "catalog_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Department(Base):
    __tablename__ = "catalog_departments"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200), default="")


class Category(Base):
    __tablename__ = "catalog_categories"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    audience: Mapped[str] = mapped_column(String(16), default="personal")
    sort: Mapped[int] = mapped_column(Integer, default=0)


class EcertType(Base):
    """A GB/T 36901 electronic-certificate type a material may accept instead of paper."""

    __tablename__ = "catalog_ecert_types"

    code: Mapped[str] = mapped_column(String(21), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(100), default="")


class ServiceItem(IdMixin, Base):
    __tablename__ = "service_items"

    code: Mapped[str] = mapped_column(String(31), unique=True)  # 实施编码
    basic_code: Mapped[str] = mapped_column(String(12), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=STATUS_DRAFT)
    published_version: Mapped[int | None] = mapped_column(Integer)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    # The compact entry of the published version (domain/catalog/summary.py, search terms
    # included): read models load these narrow rows, never the documents.
    published_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServiceItemVersion(IdMixin, Base):
    __tablename__ = "service_item_versions"
    __table_args__ = (UniqueConstraint("item_id", "version"),)

    item_id: Mapped[str] = mapped_column(ForeignKey("service_items.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=VERSION_DRAFT)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(String(64))


class Bundle(IdMixin, Base):
    """A life-event bundle (一件事): items behind one merged form. Versioned as a whole."""

    __tablename__ = "catalog_bundles"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=STATUS_DRAFT)
    version: Mapped[int] = mapped_column(Integer, default=0)  # bumped on every publish
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the newest imported content
    content_hash: Mapped[str] = mapped_column(String(64))
    # What citizens see: a copy of `document` taken when it was last published.
    published_document: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str | None] = mapped_column(String(64))


# The reference tables, by their list name in the import and export format (reference.LISTS).
REFERENCE_MODELS = {"departments": Department, "categories": Category, "ecert_types": EcertType}
