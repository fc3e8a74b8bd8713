"""Case events: the append-only log every subscription and partner sync reads."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from domain.events import CaseEvent as CaseEventRow
from schema.enums import EventKind
from schema.relay import Node, to_global_id
from server.context import Context
from subscriptions.hub import EventRecord

if TYPE_CHECKING:
    from schema.types.complaints import Complaint
    from schema.types.households import Household
    from schema.types.referrals import Referral

Info = strawberry.Info[Context, None]


@strawberry.type(description="One change of a household, complaint or referral, in commit-safe order.")
class CaseEvent(Node):
    cursor: str = strawberry.field(description="Position in the event log; resume after it.")
    kind: EventKind = strawberry.field(description="What happened.")
    occurred_at: dt.datetime = strawberry.field(description="When the change was written.")
    region_code: str = strawberry.field(description="Desa/kelurahan of the household concerned.")
    household_id: strawberry.ID | None = strawberry.field(description="Global id of the household.")
    complaint_id: strawberry.ID | None = strawberry.field(description="Global id of the complaint, if any.")
    referral_id: strawberry.ID | None = strawberry.field(description="Global id of the referral, if any.")
    actor_id: strawberry.ID | None = strawberry.field(description="Global id of the staff member who acted.")
    data: JSON = strawberry.field(description="Small facts of the change (statuses, version, assignee); never "
                                  "personal data.")

    _household_id: strawberry.Private[int | None] = None
    _complaint_id: strawberry.Private[int | None] = None
    _referral_id: strawberry.Private[int | None] = None

    @classmethod
    def from_row(cls, row: CaseEventRow | EventRecord) -> CaseEvent:
        return cls(
            id=to_global_id("CaseEvent", row.id), cursor=str(row.id), kind=EventKind(row.kind),
            occurred_at=row.occurred_at, region_code=row.region_code,
            household_id=to_global_id("Household", row.household_id) if row.household_id else None,
            complaint_id=to_global_id("Complaint", row.complaint_id) if row.complaint_id else None,
            referral_id=to_global_id("Referral", row.referral_id) if row.referral_id else None,
            actor_id=to_global_id("Staff", row.actor_id) if row.actor_id else None,
            data=JSON(dict(row.data)),
            _household_id=row.household_id, _complaint_id=row.complaint_id, _referral_id=row.referral_id,
        )

    @strawberry.field(description="The household concerned, as it is now (null when outside your area).")
    async def household(self, info: Info) -> Annotated[Household, strawberry.lazy("schema.types.households")] | None:
        from schema.types.households import Household

        if self._household_id is None:
            return None
        row = await info.context.loaders.household.load(self._household_id)
        return Household.from_row(row) if row else None

    @strawberry.field(description="The complaint concerned, as it is now, if any.")
    async def complaint(self, info: Info) -> Annotated[Complaint, strawberry.lazy("schema.types.complaints")] | None:
        from schema.types.complaints import Complaint

        if self._complaint_id is None:
            return None
        row = await info.context.loaders.complaint.load(self._complaint_id)
        return Complaint.from_row(row) if row else None

    @strawberry.field(description="The referral concerned, as it is now, if any.")
    async def referral(self, info: Info) -> Annotated[Referral, strawberry.lazy("schema.types.referrals")] | None:
        from schema.types.referrals import Referral

        if self._referral_id is None:
            return None
        row = await info.context.loaders.referral.load(self._referral_id)
        return Referral.from_row(row) if row else None
