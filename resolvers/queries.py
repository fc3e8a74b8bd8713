"""The root query fields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import strawberry

from domain import lookups
from domain.complaints import queries as complaints
from domain.enums import ComplaintKind, ComplaintStatus, Priority, ReferralStatus, Role, Sector, SlaState
from domain.events import CaseEvent as CaseEventRow
from domain.events import latest_event_id, read_changes
from domain.households import queries as households
from domain.numbers import bigint
from domain.paging import Ordering, Page, check_first
from domain.referrals import queries as referrals
from domain.regions import is_valid_code
from resolvers.common import Info, aware, optional_pk, read
from schema import inputs
from schema.relay import Connection, Edge, Node, PageInfo, from_global_id
from schema.types.complaints import Complaint
from schema.types.events import CaseEvent
from schema.types.households import FamilyCard, Household, Member
from schema.types.reference import Program, Region, Staff
from schema.types.referrals import Referral
from schema.types.workload import ChangesPage, WorkloadEntry

R = TypeVar("R")
N = TypeVar("N")


def _first(info: Info, first: int | None) -> int:
    settings = info.context.settings
    return check_first(first, default=settings.default_page_size, maximum=settings.max_page_size)


def _connection(page: Page[R], wrap: Callable[[R], N], after: str | None,
                count: Callable[[], Awaitable[int]]) -> Connection[N]:
    edges = [Edge(cursor=page.cursor(row), node=wrap(row)) for row in page.rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next, has_previous_page=after is not None,
                           start_cursor=edges[0].cursor if edges else None,
                           end_cursor=edges[-1].cursor if edges else None),
        _count=count,
    )


def _values(items: Sequence[Any] | None, enum: type[Any]) -> list[Any]:
    return [enum(i) for i in items or []]


async def me(info: Info) -> Staff | None:
    if info.context.actor is None:
        return None
    row = await info.context.loaders.staff.load(info.context.actor.id)
    return Staff.from_row(row) if row else None


async def node(info: Info, id: strawberry.ID) -> Node | None:
    info.context.require_actor()
    parsed = from_global_id(str(id))
    if parsed is None:
        return None
    type_name, key = parsed
    loaders = info.context.loaders
    if type_name == "Region":
        region = await loaders.region.load(key) if is_valid_code(key) else None
        return Region.from_row(region) if region and _sees_region(info, region.code) else None
    pk = bigint(key)
    if pk is None:
        return None
    if type_name == "Household":
        h = await loaders.household.load(pk)
        return Household.from_row(h) if h else None
    if type_name == "Complaint":
        c = await loaders.complaint.load(pk)
        return Complaint.from_row(c) if c else None
    if type_name == "Referral":
        r = await loaders.referral.load(pk)
        return Referral.from_row(r) if r else None
    if type_name == "Member":
        m = await loaders.member.load(pk)
        return Member.from_row(m) if m and await loaders.household.load(m.household_id) else None
    if type_name == "FamilyCard":
        return await _family_card(info, pk)
    if type_name == "CaseEvent":
        e = await loaders.event.load(pk)
        return CaseEvent.from_row(e) if e else None
    if type_name == "Program":
        p = await loaders.program.load(pk)
        return Program.from_row(p) if p else None
    if type_name == "Staff":
        s = await loaders.staff.load(pk)
        return Staff.from_row(s) if s and info.context.require_actor().covers(s.region_code) else None
    return None


def _sees_region(info: Info, code: str | None) -> bool:
    return code is not None and info.context.require_actor().sees_region(code)


async def _family_card(info: Info, pk: int) -> FamilyCard | None:
    card = await read(info, lambda s, a: households.family_card_in_scope(s, actor=a, card_id=pk))
    return FamilyCard.from_row(card) if card else None


def household_query(filter: inputs.HouseholdFilter | None) -> tuple[households.HouseholdFilter, Ordering]:
    f = filter or inputs.HouseholdFilter()
    hf = households.HouseholdFilter(region_code=f.region_code, dtks_status=f.dtks_status,
                                    updated_after=aware(f.updated_after, field="filter.updatedAfter"), nik=f.nik)
    return hf, households.UPDATED if f.updated_after is not None else households.NEWEST


async def households_(info: Info, filter: inputs.HouseholdFilter | None = None, first: int | None = None,
                      after: str | None = None) -> Connection[Household]:
    hf, ordering = household_query(filter)
    size = _first(info, first)
    cipher = info.context.cipher
    page = await read(info, lambda s, a: households.list_households(
        s, actor=a, cipher=cipher, filter=hf, ordering=ordering, first=size, after=after))
    return _connection(page, Household.from_row, after, lambda: read(
        info, lambda s, a: households.count_households(s, actor=a, cipher=cipher, filter=hf)))


def complaint_filter(f: inputs.ComplaintFilter | None) -> complaints.ComplaintFilter:
    f = f or inputs.ComplaintFilter()
    return complaints.ComplaintFilter(
        region_code=f.region_code, statuses=_values(f.status, ComplaintStatus), sectors=_values(f.sector, Sector),
        kinds=_values(f.kind, ComplaintKind), priorities=_values(f.priority, Priority),
        sla_states=_values(f.sla_state, SlaState),
        assignee_id=optional_pk(f.assignee_id, "Staff", field="filter.assigneeId"), unassigned=f.unassigned,
        household_id=optional_pk(f.household_id, "Household", field="filter.householdId"),
        updated_after=aware(f.updated_after, field="filter.updatedAfter"),
        created_after=aware(f.created_after, field="filter.createdAfter"),
        created_before=aware(f.created_before, field="filter.createdBefore"))


def complaint_query(filter: inputs.ComplaintFilter | None,
                    order_by: str | None) -> tuple[complaints.ComplaintFilter, Ordering]:
    cf = complaint_filter(filter)
    name = order_by or ("updated" if cf.updated_after is not None else "newest")
    return cf, complaints.ORDERINGS[name]


async def complaints_(info: Info, filter: inputs.ComplaintFilter | None = None, first: int | None = None,
                      after: str | None = None, order_by: str | None = None) -> Connection[Complaint]:
    cf, ordering = complaint_query(filter, order_by)
    size = _first(info, first)
    page = await read(info, lambda s, a: complaints.list_complaints(
        s, actor=a, filter=cf, ordering=ordering, first=size, after=after))
    return _connection(page, Complaint.from_row, after, lambda: read(
        info, lambda s, a: complaints.count_complaints(s, actor=a, filter=cf)))


def referral_query(filter: inputs.ReferralFilter | None) -> tuple[referrals.ReferralFilter, Ordering]:
    f = filter or inputs.ReferralFilter()
    rf = referrals.ReferralFilter(
        region_code=f.region_code, statuses=_values(f.status, ReferralStatus),
        program_id=optional_pk(f.program_id, "Program", field="filter.programId"),
        complaint_id=optional_pk(f.complaint_id, "Complaint", field="filter.complaintId"),
        updated_after=aware(f.updated_after, field="filter.updatedAfter"))
    return rf, referrals.UPDATED if f.updated_after is not None else referrals.NEWEST


async def referrals_(info: Info, filter: inputs.ReferralFilter | None = None, first: int | None = None,
                     after: str | None = None) -> Connection[Referral]:
    rf, ordering = referral_query(filter)
    size = _first(info, first)
    page = await read(info, lambda s, a: referrals.list_referrals(
        s, actor=a, filter=rf, ordering=ordering, first=size, after=after))
    return _connection(page, Referral.from_row, after, lambda: read(
        info, lambda s, a: referrals.count_referrals(s, actor=a, filter=rf)))


async def workload(info: Info, region_code: str | None = None) -> list[WorkloadEntry]:
    rows = await read(info, lambda s, a: complaints.workload(s, actor=a, region_code=region_code))
    return [WorkloadEntry.from_row(r) for r in rows]


async def regions(info: Info, parent_code: str | None = None) -> list[Region]:
    rows = await read(info, lambda s, a: lookups.list_regions(s, actor=a, parent_code=parent_code))
    return [Region.from_row(r) for r in rows]


async def programs(info: Info, include_inactive: bool = False) -> list[Program]:
    rows = await read(info, lambda s, a: lookups.list_programs(s, actor=a, include_inactive=include_inactive))
    return [Program.from_row(r) for r in rows]


async def staff(info: Info, region_code: str | None = None, roles: list[Role] | None = None) -> list[Staff]:
    wanted = [Role(r).value for r in roles] if roles else None
    rows = await read(info, lambda s, a: lookups.list_staff(s, actor=a, region_code=region_code, roles=wanted))
    return [Staff.from_row(r) for r in rows]


async def latest_cursor(info: Info) -> str:
    return str(await read(info, lambda s, a: latest_event_id(s)))


async def changes(info: Info, after: str | None = None, first: int | None = None) -> ChangesPage:
    size = _first(info, first)
    rows: list[CaseEventRow]
    rows, has_more, end = await read(info, lambda s, a: read_changes(s, actor=a, after=after, first=size))
    return ChangesPage(events=[CaseEvent.from_row(r) for r in rows], end_cursor=end, has_more=has_more)


