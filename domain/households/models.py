from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import Base
from domain.enums import DtksStatus, NikStatus, Relation, Sex, check_constraint


class Household(Base):
    """A household (*rumah tangga*) in one desa/kelurahan."""

    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint(check_constraint("dtks_status", DtksStatus), name="dtks_status"),
        CheckConstraint("latitude IS NULL OR latitude BETWEEN -11 AND 6", name="latitude"),
        CheckConstraint("longitude IS NULL OR longitude BETWEEN 94 AND 142", name="longitude"),
        CheckConstraint("version >= 1", name="version"),
        Index("ix_households_region_code_pattern", "region_code", "id",
              postgresql_ops={"region_code": "text_pattern_ops"}),
        Index("ix_households_updated", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    address: Mapped[str] = mapped_column(String(300))
    rt: Mapped[str | None] = mapped_column(String(3))
    rw: Mapped[str | None] = mapped_column(String(3))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    dtks_status: Mapped[str] = mapped_column(String(20))
    indicators: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class FamilyCard(Base):
    """A family card (*Kartu Keluarga*); the number is personal data, kept sealed."""

    __tablename__ = "family_cards"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"), index=True)
    number_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    number_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    number_masked: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Member(Base):
    """A household member. The NIK is personal data, kept sealed beside a keyed hash for dedup."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint(check_constraint("sex", Sex), name="sex"),
        CheckConstraint(check_constraint("relation", Relation), name="relation"),
        CheckConstraint(check_constraint("nik_status", NikStatus), name="nik_status"),
        CheckConstraint("(nik_status = 'VALID') = (nik_hash IS NOT NULL)", name="nik_hash_when_valid"),
        CheckConstraint("version >= 1", name="version"),
        Index("uq_members_nik_hash", "nik_hash", unique=True, postgresql_where=text("nik_hash IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"), index=True)
    family_card_id: Mapped[int | None] = mapped_column(ForeignKey("family_cards.id"), index=True)
    nik_status: Mapped[str] = mapped_column(String(12))
    nik_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    nik_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    nik_masked: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[dt.date] = mapped_column(Date)
    relation: Mapped[str] = mapped_column(String(20))
    education: Mapped[str | None] = mapped_column(String(40))
    occupation: Mapped[str | None] = mapped_column(String(80))
    disability: Mapped[str | None] = mapped_column(Text)
    chronic_illness: Mapped[str | None] = mapped_column(Text)
    programs: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))
    nik_from_other_region: Mapped[bool] = mapped_column(Boolean, server_default=false())
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
