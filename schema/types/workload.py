"""The workload board and the event-log page."""

from __future__ import annotations

import datetime as dt

import strawberry

from domain.complaints.queries import WorkloadRow
from schema.types.events import CaseEvent
from schema.types.reference import Staff


@strawberry.type(description="One facilitator's or officer's load of cases.")
class WorkloadEntry:
    staff: Staff = strawberry.field(description="The facilitator or Puskesos officer.")
    open: int = strawberry.field(description="Cases held that are not resolved or rejected.")
    new_today: int = strawberry.field(description="Cases filed today (WIB) that this person holds.")
    at_risk: int = strawberry.field(description="Open cases with under 25% of their service-level time left.")
    breached: int = strawberry.field(description="Open cases past their service-level time.")
    oldest_open_at: dt.datetime | None = strawberry.field(description="Filing time of the oldest open case.")

    @classmethod
    def from_row(cls, row: WorkloadRow) -> WorkloadEntry:
        return cls(staff=Staff.from_row(row.staff), open=row.open, new_today=row.new_today, at_risk=row.at_risk,
                   breached=row.breached, oldest_open_at=row.oldest_open_at)


@strawberry.type(description="A page of the case event log, for incremental sync.")
class ChangesPage:
    events: list[CaseEvent] = strawberry.field(description="Events in your scope, in cursor order.")
    end_cursor: str = strawberry.field(description="Store it and pass it as `after` next time; nothing before it "
                                       "will ever appear later.")
    has_more: bool = strawberry.field(description="Whether more events follow right away.")


@strawberry.type(description="The workload board of a region, pushed by `workloadChanged`.")
class WorkloadUpdate:
    region_code: str | None = strawberry.field(description="The region asked for (null: your whole area).")
    cursor: str | None = strawberry.field(description="The last case event these figures include (null for the "
                                          "first push).")
    entries: list[WorkloadEntry] = strawberry.field(description="Per facilitator and officer, busiest first.")
