"""Complaints, their assignment history and timeline."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

from domain.complaints.models import Assignment as AssignmentRow
from domain.complaints.models import Complaint as ComplaintRow
from domain.complaints.queries import sla_state
from schema.enums import Channel, ComplaintKind, ComplaintStatus, Priority, Sector, SlaState
from schema.relay import Node, to_global_id
from schema.types.events import CaseEvent
from schema.types.households import Household, Member
from schema.types.reference import Program, Region, Staff
from server.context import Context

if TYPE_CHECKING:
    from schema.types.referrals import Referral

Info = strawberry.Info[Context, None]


async def _staff(info: Info, staff_id: int | None) -> Staff | None:
    if staff_id is None:
        return None
    row = await info.context.loaders.staff.load(staff_id)
    return Staff.from_row(row) if row else None


@strawberry.type(description="One change of a complaint's assignee.")
class Assignment:
    reason: str = strawberry.field(description="Why the case moved.")
    at: dt.datetime = strawberry.field(description="When it moved.")
    _row: strawberry.Private[AssignmentRow]

    @strawberry.field(description="Who held the case before (null when it was first assigned).")
    async def from_staff(self, info: Info) -> Staff | None:
        return await _staff(info, self._row.from_staff_id)

    @strawberry.field(description="Who holds it since.")
    async def to_staff(self, info: Info) -> Staff | None:
        return await _staff(info, self._row.to_staff_id)

    @strawberry.field(description="Who moved it.")
    async def by(self, info: Info) -> Staff | None:
        return await _staff(info, self._row.by_staff_id)


@strawberry.type(description="A complaint (keluhan): a question, suggestion or complaint of a household.")
class Complaint(Node):
    kind: ComplaintKind = strawberry.field(description="Question, suggestion or complaint.")
    sector: Sector = strawberry.field(description="Sector the complaint concerns.")
    description: str = strawberry.field(description="What the household reported.")
    channel: Channel = strawberry.field(description="How it reached the service.")
    priority: Priority = strawberry.field(description="Urgency set at intake.")
    status: ComplaintStatus = strawberry.field(description="Where the complaint is in its status machine.")
    region_code: str = strawberry.field(description="Kemendagri code of the household's desa/kelurahan.")
    sla_due_at: dt.datetime = strawberry.field(description="When the service-level time runs out.")
    decision: str | None = strawberry.field(description="Decision recorded when resolved or rejected.")
    status_reason: str | None = strawberry.field(
        description="Reason given with the last return, reopen or verification note.")
    closed_at: dt.datetime | None = strawberry.field(description="When it was resolved or rejected.")
    reported_at: dt.datetime | None = strawberry.field(description="When the household reported it (client time, "
                                                       "for intake collected offline).")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")
    created_at: dt.datetime = strawberry.field(description="When the complaint was filed on the server.")
    updated_at: dt.datetime = strawberry.field(description="When it last changed.")
    _row: strawberry.Private[ComplaintRow]

    @classmethod
    def from_row(cls, row: ComplaintRow) -> Complaint:
        return cls(id=to_global_id("Complaint", row.id), kind=ComplaintKind(row.kind), sector=Sector(row.sector),
                   description=row.description, channel=Channel(row.channel), priority=Priority(row.priority),
                   status=ComplaintStatus(row.status), region_code=row.region_code, sla_due_at=row.sla_due_at,
                   decision=row.decision, status_reason=row.status_reason, closed_at=row.closed_at,
                   reported_at=row.reported_at, version=row.version, created_at=row.created_at,
                   updated_at=row.updated_at, _row=row)

    @strawberry.field(description="On track, at risk, breached, or closed.")
    def sla_state(self) -> SlaState:
        return SlaState(sla_state(self._row))

    @strawberry.field(description="The household the complaint is about.")
    async def household(self, info: Info) -> Household | None:
        row = await info.context.loaders.household.load(self._row.household_id)
        return Household.from_row(row) if row else None

    @strawberry.field(description="The member it concerns, if one was named.")
    async def member(self, info: Info) -> Member | None:
        if self._row.member_id is None:
            return None
        row = await info.context.loaders.member.load(self._row.member_id)
        return Member.from_row(row) if row else None

    @strawberry.field(description="The program it concerns, if one was named.")
    async def program(self, info: Info) -> Program | None:
        if self._row.program_id is None:
            return None
        row = await info.context.loaders.program.load(self._row.program_id)
        return Program.from_row(row) if row else None

    @strawberry.field(description="The desa/kelurahan.")
    async def region(self, info: Info) -> Region | None:
        row = await info.context.loaders.region.load(self._row.region_code)
        return Region.from_row(row) if row else None

    @strawberry.field(description="Who holds the case now.")
    async def assignee(self, info: Info) -> Staff | None:
        return await _staff(info, self._row.assignee_id)

    @strawberry.field(description="Who filed it.")
    async def filed_by(self, info: Info) -> Staff | None:
        return await _staff(info, self._row.filed_by_id)

    @strawberry.field(description="Referrals of this complaint, oldest first.")
    async def referrals(self, info: Info) -> list[Annotated[Referral, strawberry.lazy("schema.types.referrals")]]:
        from schema.types.referrals import Referral

        return [Referral.from_row(r) for r in await info.context.loaders.referrals_by_complaint.load(self._row.id)]

    @strawberry.field(description="Every change of assignee, oldest first.")
    async def assignment_history(self, info: Info) -> list[Assignment]:
        rows = await info.context.loaders.assignments_by_complaint.load(self._row.id)
        return [Assignment(reason=r.reason, at=r.at, _row=r) for r in rows]

    @strawberry.field(description="Every case event of this complaint and its referrals, oldest first.")
    async def timeline(self, info: Info) -> list[CaseEvent]:
        return [CaseEvent.from_row(e) for e in await info.context.loaders.events_by_complaint.load(self._row.id)]
