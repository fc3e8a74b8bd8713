"""Referrals of complaints to programs."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

from domain.referrals.models import Referral as ReferralRow
from schema.enums import ReferralStatus
from schema.relay import Node, to_global_id
from schema.types.reference import Program, Staff
from server.context import Context

if TYPE_CHECKING:
    from schema.types.complaints import Complaint

Info = strawberry.Info[Context, None]


@strawberry.type(description="A referral (rujukan) of a complaint to a program and its receiving agency.")
class Referral(Node):
    status: ReferralStatus = strawberry.field(description="Where the referral is in its status machine.")
    receiving_agency: str = strawberry.field(description="Agency the household is referred to.")
    note: str | None = strawberry.field(description="Note for the receiving agency.")
    consent_given: bool = strawberry.field(description="Whether the household consented to the referral.")
    consent_override_reason: str | None = strawberry.field(
        description="Why it was sent without consent (e.g. a child at risk).")
    rejection_reason: str | None = strawberry.field(description="Why the agency rejected it.")
    revocation_reason: str | None = strawberry.field(description="Why the sender revoked it.")
    outcome: str | None = strawberry.field(description="What the agency did, recorded on completion.")
    sent_at: dt.datetime | None = strawberry.field(description="When it was sent.")
    responded_at: dt.datetime | None = strawberry.field(description="When the agency accepted or rejected it.")
    completed_at: dt.datetime | None = strawberry.field(description="When it was completed.")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")
    created_at: dt.datetime = strawberry.field(description="When the referral was drafted.")
    updated_at: dt.datetime = strawberry.field(description="When it last changed.")
    _row: strawberry.Private[ReferralRow]

    @classmethod
    def from_row(cls, row: ReferralRow) -> Referral:
        return cls(id=to_global_id("Referral", row.id), status=ReferralStatus(row.status),
                   receiving_agency=row.receiving_agency, note=row.note, consent_given=row.consent_given,
                   consent_override_reason=row.consent_override_reason, rejection_reason=row.rejection_reason,
                   revocation_reason=row.revocation_reason, outcome=row.outcome, sent_at=row.sent_at,
                   responded_at=row.responded_at, completed_at=row.completed_at, version=row.version,
                   created_at=row.created_at, updated_at=row.updated_at, _row=row)

    @strawberry.field(description="The complaint referred.")
    async def complaint(self, info: Info) -> Annotated[Complaint, strawberry.lazy("schema.types.complaints")] | None:
        from schema.types.complaints import Complaint

        row = await info.context.loaders.complaint.load(self._row.complaint_id)
        return Complaint.from_row(row) if row else None

    @strawberry.field(description="The program referred to.")
    async def program(self, info: Info) -> Program | None:
        row = await info.context.loaders.program.load(self._row.program_id)
        return Program.from_row(row) if row else None

    @strawberry.field(description="Who drafted it.")
    async def created_by(self, info: Info) -> Staff | None:
        if self._row.created_by_id is None:
            return None
        row = await info.context.loaders.staff.load(self._row.created_by_id)
        return Staff.from_row(row) if row else None
