"""Per-request DataLoaders: one ``WHERE key = ANY(...)`` query per batch, through the operation's session.

Scoped loaders (households, complaints, referrals) apply the actor's region subtree, so an id from
outside it loads as ``None`` whichever path asked for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from domain import lookups
from domain.complaints import queries as complaints
from domain.complaints.models import Assignment, Complaint
from domain.events import CaseEvent
from domain.households import queries as households
from domain.households.models import FamilyCard, Household, Member
from domain.programs import Program
from domain.referrals import queries as referrals
from domain.referrals.models import Referral
from domain.regions import Region
from domain.staff.models import Staff

if TYPE_CHECKING:
    from server.context import Context

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _loader(ctx: Context, fetch: Callable[[AsyncSession, Sequence[K]], Awaitable[dict[K, V]]],
            default: Callable[[], Any] = lambda: None) -> DataLoader[K, Any]:
    async def load(keys: list[K]) -> list[Any]:
        async with ctx.db() as session:
            found = await fetch(session, keys)
        return [found.get(k, default()) for k in keys]

    return DataLoader(load_fn=load)


class Loaders:
    """Named ``<thing>[_by_<key>]``; a key that finds nothing loads ``None`` (or ``[]`` for lists)."""

    def __init__(self, ctx: Context) -> None:
        def actor() -> Any:
            return ctx.require_actor()

        self.household: DataLoader[int, Household | None] = _loader(
            ctx, lambda s, ids: households.households_by_ids(s, actor=actor(), ids=ids))
        self.complaint: DataLoader[int, Complaint | None] = _loader(
            ctx, lambda s, ids: complaints.complaints_by_ids(s, actor=actor(), ids=ids))
        self.referral: DataLoader[int, Referral | None] = _loader(
            ctx, lambda s, ids: referrals.referrals_by_ids(s, actor=actor(), ids=ids))
        self.member: DataLoader[int, Member | None] = _loader(
            ctx, lambda s, ids: households.members_by_ids(s, ids=ids))
        self.members_by_household: DataLoader[int, list[Member]] = _loader(
            ctx, lambda s, ids: households.members_by_household(s, household_ids=ids), list)
        self.family_cards_by_household: DataLoader[int, list[FamilyCard]] = _loader(
            ctx, lambda s, ids: households.family_cards_by_household(s, household_ids=ids), list)
        self.complaints_by_household: DataLoader[int, list[Complaint]] = _loader(
            ctx, lambda s, ids: complaints.complaints_by_household(s, actor=actor(), household_ids=ids), list)
        self.referrals_by_complaint: DataLoader[int, list[Referral]] = _loader(
            ctx, lambda s, ids: referrals.referrals_by_complaint(s, actor=actor(), complaint_ids=ids), list)
        self.assignments_by_complaint: DataLoader[int, list[Assignment]] = _loader(
            ctx, lambda s, ids: complaints.assignments_by_complaint(s, complaint_ids=ids), list)
        self.event: DataLoader[int, CaseEvent | None] = _loader(
            ctx, lambda s, ids: lookups.events_by_ids(s, actor=actor(), ids=ids))
        self.events_by_complaint: DataLoader[int, list[CaseEvent]] = _loader(
            ctx, lambda s, ids: lookups.events_by_complaint(s, complaint_ids=ids), list)
        self.staff: DataLoader[int, Staff | None] = _loader(ctx, lambda s, ids: lookups.staff_by_ids(s, ids=ids))
        self.program: DataLoader[int, Program | None] = _loader(
            ctx, lambda s, ids: lookups.programs_by_ids(s, ids=ids))
        self.region: DataLoader[str, Region | None] = _loader(
            ctx, lambda s, codes: lookups.regions_by_codes(s, codes=codes))
        self.region_children: DataLoader[str, list[Region]] = _loader(
            ctx, lambda s, codes: lookups.region_children(s, codes=codes), list)
