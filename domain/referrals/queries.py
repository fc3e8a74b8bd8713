"""Reading referrals: filtered keyset pages and batch lookups."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor, Op
from domain.enums import ReferralStatus
from domain.paging import Ordering, Page, keyset, page_of
from domain.programs import Program
from domain.referrals.models import Referral
from domain.regions import in_subtree

NEWEST = Ordering("newest", (Referral.id,), descending=True)
OLDEST = Ordering("oldest", (Referral.id,), descending=False)
UPDATED = Ordering("updated", (Referral.updated_at, Referral.id), descending=False)
ORDERINGS = {o.name: o for o in (NEWEST, OLDEST, UPDATED)}


@dataclass(slots=True)
class ReferralFilter:
    region_code: str | None = None
    statuses: list[ReferralStatus] = field(default_factory=list)
    program_id: int | None = None
    complaint_id: int | None = None
    updated_after: dt.datetime | None = None


def scoped(stmt: Select[Any], actor: Actor) -> Select[Any]:
    actor.require(Op.READ)
    stmt = actor.restrict(stmt, Referral.region_code)
    if actor.programs is not None:
        stmt = stmt.where(Referral.program_id.in_(select(Program.id).where(Program.code.in_(sorted(actor.programs)))))
    return stmt


def _filtered(stmt: Select[Any], f: ReferralFilter) -> Select[Any]:
    if f.region_code:
        stmt = stmt.where(in_subtree(Referral.region_code, f.region_code))
    if f.statuses:
        stmt = stmt.where(Referral.status.in_([s.value for s in f.statuses]))
    if f.program_id is not None:
        stmt = stmt.where(Referral.program_id == f.program_id)
    if f.complaint_id is not None:
        stmt = stmt.where(Referral.complaint_id == f.complaint_id)
    if f.updated_after is not None:
        stmt = stmt.where(Referral.updated_at > f.updated_after)
    return stmt


def matching(actor: Actor, filter: ReferralFilter) -> Select[Any]:
    """The referrals the actor may read that match ``filter``, unordered."""
    return _filtered(scoped(select(Referral), actor), filter)


async def list_referrals(session: AsyncSession, *, actor: Actor, filter: ReferralFilter, ordering: Ordering,
                         first: int, after: str | None) -> Page[Referral]:
    stmt = matching(actor, filter)
    rows = (await session.scalars(keyset(stmt, ordering, after=after, first=first))).all()
    return page_of(rows, first=first, ordering=ordering)


async def count_referrals(session: AsyncSession, *, actor: Actor, filter: ReferralFilter) -> int:
    stmt = matching(actor, filter)
    return int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


async def referrals_by_ids(session: AsyncSession, *, actor: Actor, ids: Sequence[int]) -> dict[int, Referral]:
    return {r.id: r for r in await session.scalars(scoped(select(Referral), actor).where(Referral.id.in_(ids)))}


async def referrals_by_complaint(session: AsyncSession, *, actor: Actor,
                                 complaint_ids: Sequence[int]) -> dict[int, list[Referral]]:
    rows = await session.scalars(
        scoped(select(Referral), actor).where(Referral.complaint_id.in_(complaint_ids)).order_by(Referral.id))
    out: dict[int, list[Referral]] = {i: [] for i in complaint_ids}
    for r in rows:
        out[r.complaint_id].append(r)
    return out
