from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Identity, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import Base
from domain.enums import ReferralStatus, check_constraint


class Referral(Base):
    """A referral (*rujukan*) of a complaint to a program and its receiving agency."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(check_constraint("status", ReferralStatus), name="status"),
        CheckConstraint("status = 'DRAFT' OR consent_given OR consent_override_reason IS NOT NULL",
                        name="consent_before_send"),
        CheckConstraint("status <> 'REJECTED' OR rejection_reason IS NOT NULL", name="rejected_has_reason"),
        CheckConstraint("status <> 'COMPLETED' OR outcome IS NOT NULL", name="completed_has_outcome"),
        CheckConstraint("version >= 1", name="version"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"), index=True)
    receiving_agency: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    consent_given: Mapped[bool] = mapped_column(Boolean)
    consent_override_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    responded_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
