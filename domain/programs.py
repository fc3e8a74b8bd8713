"""The catalog of programs a complaint can be referred to."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Identity, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import Base
from domain.enums import Sector, check_constraint


class Program(Base):
    __tablename__ = "programs"
    __table_args__ = (
        CheckConstraint(check_constraint("sector", Sector), name="sector"),
        CheckConstraint("sla_days BETWEEN 1 AND 365", name="sla_days"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    sector: Mapped[str] = mapped_column(String(30))
    owner_agency: Mapped[str] = mapped_column(String(200))
    sla_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
