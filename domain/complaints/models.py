from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Identity, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import Base
from domain.enums import Channel, ComplaintKind, ComplaintStatus, Priority, Sector, check_constraint


class Complaint(Base):
    """A complaint (*keluhan*) filed for a household, worked through its status machine."""

    __tablename__ = "complaints"
    __table_args__ = (
        CheckConstraint(check_constraint("kind", ComplaintKind), name="kind"),
        CheckConstraint(check_constraint("sector", Sector), name="sector"),
        CheckConstraint(check_constraint("channel", Channel), name="channel"),
        CheckConstraint(check_constraint("priority", Priority), name="priority"),
        CheckConstraint(check_constraint("status", ComplaintStatus), name="status"),
        CheckConstraint("sla_due_at > sla_started_at", name="sla_window"),
        CheckConstraint("status NOT IN ('RESOLVED', 'REJECTED') OR decision IS NOT NULL", name="closed_has_decision"),
        CheckConstraint("version >= 1", name="version"),
        Index("ix_complaints_region_code_pattern", "region_code", "id",
              postgresql_ops={"region_code": "text_pattern_ops"}),
        Index("ix_complaints_status_id", "status", "id"),
        Index("ix_complaints_assignee_open", "assignee_id", "sla_due_at",
              postgresql_where=text("status IN ('NEW', 'RETURNED', 'VERIFIED', 'IN_PROGRESS', 'REFERRED')")),
        Index("ix_complaints_open_region", "region_code", "assignee_id",
              postgresql_ops={"region_code": "text_pattern_ops"},
              postgresql_include=["sla_due_at", "sla_started_at", "created_at", "status"],
              postgresql_where=text("status IN ('NEW', 'RETURNED', 'VERIFIED', 'IN_PROGRESS', 'REFERRED')")),
        Index("ix_complaints_updated", "updated_at", "id"),
        Index("ix_complaints_created", "created_at", "id"),
        Index("ix_complaints_created_region", "created_at", "region_code",
              postgresql_ops={"region_code": "text_pattern_ops"}, postgresql_include=["assignee_id"]),
        Index("ix_complaints_sla_due", "sla_due_at", "id"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    kind: Mapped[str] = mapped_column(String(12))
    sector: Mapped[str] = mapped_column(String(30))
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id"))
    description: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(30))
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    sla_started_at: Mapped[dt.datetime] = mapped_column()
    sla_due_at: Mapped[dt.datetime] = mapped_column()
    decision: Mapped[str | None] = mapped_column(Text)
    status_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    reported_at: Mapped[dt.datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Assignment(Base):
    """One change of a complaint's assignee: who moved it, from whom, to whom, why."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    from_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    to_staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
