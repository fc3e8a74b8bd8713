"""The root Query type."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, cast

import strawberry

from resolvers import admin
from resolvers import queries as q
from schema import inputs
from schema.enums import Role
from schema.relay import Connection, Node
from schema.types.admin import ApiKey, AuditPage
from schema.types.complaints import Complaint
from schema.types.households import Household
from schema.types.reference import Program, Region, Staff
from schema.types.referrals import Referral
from schema.types.workload import ChangesPage, WorkloadEntry
from server.context import Context

Info = strawberry.Info[Context, None]
A = strawberry.argument
FIRST = "Page size (default 50, at most the server's limit, 1000 unless configured)."
AFTER = "Cursor after which the page starts (an `endCursor` of the previous page)."


@strawberry.enum(description="Orderings of `complaints`; each is a total order, stable under paging.")
class ComplaintOrder(Enum):
    NEWEST = strawberry.enum_value("newest", description="Newest filed first (default).")
    OLDEST = strawberry.enum_value("oldest", description="Oldest filed first.")
    UPDATED = strawberry.enum_value(
        "updated", description="Least recently changed first (default with `updatedAfter`): for incremental pulls."
    )
    SLA_DUE = strawberry.enum_value("sla_due", description="Soonest service-level deadline first.")
    RECENT = strawberry.enum_value("recent", description="Most recently filed first, by filing time (for "
                                   "intake collected offline, the time it reached the server).")


@strawberry.type(description="Reading households, complaints, referrals and their context.")
class Query:
    @strawberry.field(description="The staff member the request is authenticated as; null without credentials.")
    async def me(self, info: Info) -> Staff | None:
        return await q.me(info)

    @strawberry.field(description="Any object by its global id; null when it does not exist or is outside your area.")
    async def node(self, info: Info, id: Annotated[strawberry.ID, A(description="A global id.")]) -> Node | None:
        return await q.node(info, id)

    @strawberry.field(
        description="Households in your area, newest first (least recently changed first with `updatedAfter`)."
    )
    async def households(
        self,
        info: Info,
        filter: Annotated[inputs.HouseholdFilter | None, A(description="Conditions the items meet.")] = None,
        first: Annotated[int | None, A(description=FIRST)] = None,
        after: Annotated[str | None, A(description=AFTER)] = None,
    ) -> Connection[Household]:
        return await q.households_(info, filter, first, after)

    @strawberry.field(description="Complaints in your area.")
    async def complaints(
        self,
        info: Info,
        filter: Annotated[inputs.ComplaintFilter | None, A(description="Conditions the items meet.")] = None,
        first: Annotated[int | None, A(description=FIRST)] = None,
        after: Annotated[str | None, A(description=AFTER)] = None,
        order_by: Annotated[ComplaintOrder | None, A(description="Ordering; see ComplaintOrder.")] = None,
    ) -> Connection[Complaint]:
        return await q.complaints_(info, filter, first, after, cast(str, order_by.value) if order_by else None)

    @strawberry.field(
        description="Referrals in your area, newest first (least recently changed first with `updatedAfter`)."
    )
    async def referrals(
        self,
        info: Info,
        filter: Annotated[inputs.ReferralFilter | None, A(description="Conditions the items meet.")] = None,
        first: Annotated[int | None, A(description=FIRST)] = None,
        after: Annotated[str | None, A(description=AFTER)] = None,
    ) -> Connection[Referral]:
        return await q.referrals_(info, filter, first, after)

    @strawberry.field(
        description="Per facilitator and Puskesos officer in the region (default: your area): open "
        "cases, new today, at risk, breached, oldest open; busiest first."
    )
    async def workload(
        self,
        info: Info,
        region_code: Annotated[str | None, A(description="Kemendagri code of a region within your area.")] = None,
    ) -> list[WorkloadEntry]:
        return await q.workload(info, region_code)

    @strawberry.field(
        description="Regions: without `parentCode` the root of your area, else the children of "
        "`parentCode` that you may see."
    )
    async def regions(
        self,
        info: Info,
        parent_code: Annotated[str | None, A(description="Kemendagri code whose children to list.")] = None,
    ) -> list[Region]:
        return await q.regions(info, parent_code)

    @strawberry.field(description="The program catalog.")
    async def programs(
        self,
        info: Info,
        include_inactive: Annotated[bool, A(description="Also list programs closed to new referrals.")] = False,
    ) -> list[Program]:
        return await q.programs(info, include_inactive)

    @strawberry.field(description="Active staff in the region (default: your area).")
    async def staff(
        self,
        info: Info,
        region_code: Annotated[str | None, A(description="Kemendagri code within your area.")] = None,
        roles: Annotated[list[Role] | None, A(description="Only these roles.")] = None,
    ) -> list[Staff]:
        return await q.staff(info, region_code, roles)

    @strawberry.field(
        description="Cursor of the newest case event: load a page, then subscribe with `after:` it to miss "
        "nothing that happens in between."
    )
    async def latest_cursor(self, info: Info) -> str:
        return await q.latest_cursor(info)

    @strawberry.field(
        description="The case event log in your area after a cursor, for incremental sync: store "
        "`endCursor` and pass it back as `after`; every event arrives once, in order."
    )
    async def changes(
        self,
        info: Info,
        after: Annotated[
            str | None, A(description="`endCursor` of the previous page; omit to start from the beginning.")
        ] = None,
        first: Annotated[int | None, A(description=FIRST)] = None,
    ) -> ChangesPage:
        return await q.changes(info, after, first)

    @strawberry.field(description="Partner API keys (admins).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        return await admin.list_api_keys(info)

    @strawberry.field(description="The audit log, newest first (admins): changes with their origin, and every "
                      "read of unmasked personal data.")
    async def audit_log(
        self,
        info: Info,
        actor_id: Annotated[strawberry.ID | None, A(description="Only this staff member's entries.")] = None,
        action: Annotated[str | None, A(description="Only this action.")] = None,
        before: Annotated[str | None, A(description="Entries older than this entry id.")] = None,
        first: Annotated[int | None, A(description="Page size (default 100, at most 500).")] = None,
    ) -> AuditPage:
        return await admin.audit_log(info, actor_id, action, before, first)
