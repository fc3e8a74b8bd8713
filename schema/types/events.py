"""Case events: the append-only log every subscription and partner sync reads."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.scalars import JSON

from domain.events import CaseEvent as CaseEventRow
from schema.enums import EventKind
from schema.relay import Node, to_global_id


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

    @classmethod
    def from_row(cls, row: CaseEventRow) -> CaseEvent:
        return cls(
            id=to_global_id("CaseEvent", row.id), cursor=str(row.id), kind=EventKind(row.kind),
            occurred_at=row.occurred_at, region_code=row.region_code,
            household_id=to_global_id("Household", row.household_id) if row.household_id else None,
            complaint_id=to_global_id("Complaint", row.complaint_id) if row.complaint_id else None,
            referral_id=to_global_id("Referral", row.referral_id) if row.referral_id else None,
            actor_id=to_global_id("Staff", row.actor_id) if row.actor_id else None,
            data=JSON(row.data),
        )
