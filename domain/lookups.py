"""Batch lookups of reference rows: staff, programs, regions, events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor, Op
from domain.events import CaseEvent, scoped_events
from domain.programs import Program
from domain.regions import Region, in_subtree
from domain.staff.models import Staff


async def staff_by_ids(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, Staff]:
    return {s.id: s for s in await session.scalars(select(Staff).where(Staff.id.in_(ids)))}


async def programs_by_ids(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, Program]:
    return {p.id: p for p in await session.scalars(select(Program).where(Program.id.in_(ids)))}


async def regions_by_codes(session: AsyncSession, *, codes: Sequence[str]) -> dict[str, Region]:
    return {r.code: r for r in await session.scalars(select(Region).where(Region.code.in_(codes)))}


async def region_children(session: AsyncSession, *, codes: Sequence[str]) -> dict[str, list[Region]]:
    rows = await session.scalars(select(Region).where(Region.parent_code.in_(codes)).order_by(Region.code))
    out: dict[str, list[Region]] = {c: [] for c in codes}
    for r in rows:
        out[r.parent_code or ""].append(r)
    return out


async def events_by_complaint(session: AsyncSession, *, complaint_ids: Sequence[int]) -> dict[int, list[CaseEvent]]:
    rows = await session.scalars(
        select(CaseEvent).where(CaseEvent.complaint_id.in_(complaint_ids)).order_by(CaseEvent.id))
    out: dict[int, list[CaseEvent]] = {i: [] for i in complaint_ids}
    for e in rows:
        if e.complaint_id is not None:
            out[e.complaint_id].append(e)
    return out


async def events_by_ids(session: AsyncSession, *, actor: Actor, ids: Sequence[int]) -> dict[int, CaseEvent]:
    rows = await session.scalars(scoped_events(select(CaseEvent).where(CaseEvent.id.in_(ids)), actor))
    return {e.id: e for e in rows}


async def list_regions(session: AsyncSession, *, actor: Actor, parent_code: str | None) -> list[Region]:
    """The children of ``parent_code`` that the actor may see (its scope and the way down to it), or,
    without a parent, the root of the actor's scope (the provinces for admins)."""
    actor.require(Op.READ)
    if parent_code is None:
        if actor.regions is None:
            return list(await session.scalars(select(Region).where(Region.parent_code.is_(None))
                                              .order_by(Region.code)))
        return list(await session.scalars(select(Region).where(Region.code.in_(actor.regions))
                                          .order_by(Region.code)))
    children = await session.scalars(select(Region).where(Region.parent_code == parent_code).order_by(Region.code))
    return [r for r in children if actor.sees_region(r.code)]


async def list_programs(session: AsyncSession, *, actor: Actor, include_inactive: bool = False) -> list[Program]:
    actor.require(Op.READ)
    stmt = select(Program).order_by(Program.sector, Program.code)
    if not include_inactive:
        stmt = stmt.where(Program.active.is_(True))
    return list(await session.scalars(stmt))


async def list_staff(session: AsyncSession, *, actor: Actor, region_code: str | None,
                     roles: Sequence[str] | None) -> list[Staff]:
    actor.require(Op.READ)
    if region_code is not None and not actor.covers(region_code):
        return []
    stmt = select(Staff).where(Staff.active.is_(True)).order_by(Staff.full_name, Staff.id)
    stmt = stmt.where(in_subtree(Staff.region_code, region_code)) if region_code else \
        actor.restrict(stmt, Staff.region_code)
    if roles:
        stmt = stmt.where(Staff.role.in_(list(roles)))
    return list(await session.scalars(stmt))

