"""One row per use of a citizen's data by anyone but the citizen (GET /v1/me/data-access)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime

# Who used the data.
YIWANG = "yiwang"  # this platform, for an application the citizen started
CLIENT = "client"  # a third-party app with the citizen's OAuth grant
OPERATOR = "operator"  # a hall officer (e.g. checking a shown certificate)
DEPARTMENT = "department"  # a handling department through the provincial platform
VERIFIER = "verifier"  # an authorised third-party scanner checking a shown certificate


class DataAccess(Base):
    __tablename__ = "data_access_log"
    __table_args__ = (Index("ix_data_access_account_at", "account_id", "at"),)
    follows_person = True

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # time-ordered
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    accessor_type: Mapped[str] = mapped_column(String(16))
    accessor_id: Mapped[str | None] = mapped_column(String(64))
    accessor_name: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32))  # exchange, ecert, wallet, api
    resource: Mapped[str] = mapped_column(String(200))  # dataset:<id>, certificate:<identifier>, ...
    resource_name: Mapped[str] = mapped_column(String(128))  # what the citizen reads: 户籍信息, 结婚证
    purpose: Mapped[str] = mapped_column(String(200))
    application_id: Mapped[str | None] = mapped_column(String(36), index=True)
    scope: Mapped[str | None] = mapped_column(String(64))
