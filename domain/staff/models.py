from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import Base
from domain.enums import Role, check_constraint


class Staff(Base):
    """A person who logs in: facilitator, Puskesos officer, supervisor, manager or admin."""

    __tablename__ = "staff"
    __table_args__ = (
        CheckConstraint(check_constraint("role", Role), name="role"),
        Index("ix_staff_region_code_pattern", "region_code", postgresql_ops={"region_code": "text_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    #: further subtrees this person covers besides ``region_code`` (a supervisor of two kecamatan)
    extra_region_codes: Mapped[list[str]] = mapped_column(ARRAY(String(13)), server_default=text("'{}'"))
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(30))
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ApiKey(Base):
    """A partner system's credential: read-only, limited to regions and programs, revocable.

    Only a SHA-256 digest of the secret is stored (the secret is 256 random bits, so a fast digest is
    enough); the secret itself is shown once, when the key is created."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_digest: Mapped[bytes] = mapped_column(LargeBinary)
    region_codes: Mapped[list[str]] = mapped_column(ARRAY(String(13)), server_default=text("'{}'"))
    program_codes: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))
    personal_data: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
