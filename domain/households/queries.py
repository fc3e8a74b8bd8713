"""Reading households and members: filtered keyset pages, batch lookups, NIK search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor, Op
from domain.crypto import NIK, PersonalDataCipher
from domain.enums import DtksStatus
from domain.errors import Forbidden
from domain.events import audit
from domain.households.models import FamilyCard, Household, Member
from domain.households.nik import normalise
from domain.paging import Ordering, Page, keyset, page_of
from domain.regions import in_subtree

NEWEST = Ordering("newest", (Household.id,), descending=True)
OLDEST = Ordering("oldest", (Household.id,), descending=False)
UPDATED = Ordering("updated", (Household.updated_at, Household.id), descending=False)
ORDERINGS = {o.name: o for o in (NEWEST, OLDEST, UPDATED)}


@dataclass(slots=True)
class HouseholdFilter:
    region_code: str | None = None
    dtks_status: DtksStatus | None = None
    updated_after: dt.datetime | None = None
    nik: str | None = None


def scoped(stmt: Select[Any], actor: Actor) -> Select[Any]:
    actor.require(Op.READ)
    stmt = actor.restrict(stmt, Household.region_code)
    return stmt


def _filtered(stmt: Select[Any], f: HouseholdFilter, actor: Actor,
              cipher: PersonalDataCipher) -> Select[Any]:
    if f.region_code:
        stmt = stmt.where(in_subtree(Household.region_code, f.region_code))
    if f.dtks_status is not None:
        stmt = stmt.where(Household.dtks_status == f.dtks_status.value)
    if f.updated_after is not None:
        stmt = stmt.where(Household.updated_at > f.updated_after)
    if f.nik is not None:
        # exact match only, through the keyed hash; only those who may see NIKs may search by one
        if not actor.sees_personal_data:
            raise Forbidden("searching by NIK needs the personal-data grant")
        digest = cipher.digest(normalise(f.nik))
        stmt = stmt.where(Household.id.in_(select(Member.household_id).where(Member.nik_hash == digest)))
    return stmt


def matching(actor: Actor, cipher: PersonalDataCipher, filter: HouseholdFilter) -> Select[Any]:
    """The households the actor may read that match ``filter``, unordered (raises what the filter breaks)."""
    return _filtered(scoped(select(Household), actor), filter, actor, cipher)


async def list_households(session: AsyncSession, *, actor: Actor, cipher: PersonalDataCipher,
                          filter: HouseholdFilter, ordering: Ordering, first: int,
                          after: str | None) -> Page[Household]:
    stmt = matching(actor, cipher, filter)
    rows = (await session.scalars(keyset(stmt, ordering, after=after, first=first))).all()
    if filter.nik is not None:
        await audit_nik_search(session, actor=actor, matches=len(rows))
    return page_of(rows, first=first, ordering=ordering)


async def audit_nik_search(session: AsyncSession, *, actor: Actor, matches: int) -> None:
    """Every search by NIK is audited, with how many households it found (at most a page and one more)."""
    await audit(session, actor=actor, action="SEARCH_BY_NIK", entity_type="Household", entity_id=None,
                detail={"matches": matches})


async def count_households(session: AsyncSession, *, actor: Actor, cipher: PersonalDataCipher,
                           filter: HouseholdFilter) -> int:
    stmt = matching(actor, cipher, filter)
    return int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


async def households_by_ids(session: AsyncSession, *, actor: Actor, ids: Sequence[int]) -> dict[int, Household]:
    rows = await session.scalars(scoped(select(Household), actor).where(Household.id.in_(ids))
                                .execution_options(populate_existing=True))
    return {h.id: h for h in rows}


async def members_by_household(session: AsyncSession, *, household_ids: Sequence[int]) -> dict[int, list[Member]]:
    rows = await session.scalars(select(Member).where(Member.household_id.in_(household_ids)).order_by(Member.id))
    out: dict[int, list[Member]] = {i: [] for i in household_ids}
    for m in rows:
        out[m.household_id].append(m)
    return out


async def members_by_ids(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, Member]:
    return {m.id: m for m in await session.scalars(select(Member).where(Member.id.in_(ids)))}


async def family_cards_by_household(session: AsyncSession, *,
                                    household_ids: Sequence[int]) -> dict[int, list[FamilyCard]]:
    rows = await session.scalars(
        select(FamilyCard).where(FamilyCard.household_id.in_(household_ids)).order_by(FamilyCard.id))
    out: dict[int, list[FamilyCard]] = {i: [] for i in household_ids}
    for c in rows:
        out[c.household_id].append(c)
    return out


def reveal_nik(cipher: PersonalDataCipher, member: Member) -> str | None:
    return cipher.open(member.nik_sealed, kind=NIK) if member.nik_sealed else None


async def family_card_in_scope(session: AsyncSession, *, actor: Actor, card_id: int) -> FamilyCard | None:
    stmt = select(FamilyCard).join(Household, Household.id == FamilyCard.household_id).where(FamilyCard.id == card_id)
    stmt = actor.restrict(stmt, Household.region_code)
    return (await session.scalars(stmt)).first()
