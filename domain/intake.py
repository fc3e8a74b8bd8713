"""Batch intake from tablets that collected households, complaints and referral proposals offline.

Every item carries its own idempotency key and is applied in a savepoint of its own: a partly bad batch
stores the good items and reports the bad ones, and sending the same batch again changes nothing (each item
answers with its first result). A complaint or referral may point at a household (or complaint) created
earlier in the same batch, or in an earlier batch, by that item's idempotency key. Edits made on the server
meanwhile are detected by version (``CONFLICT``), never overwritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import idempotency
from domain.actor import Actor
from domain.complaints import service as complaints
from domain.crypto import PersonalDataCipher
from domain.errors import DomainError, Duplicate, StaleVersion, ValidationFailed
from domain.events import PENDING_EVENTS, IdempotencyKey
from domain.households import service as households
from domain.referrals import service as referrals

MAX_ITEMS = 200


class ItemStatus(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DUPLICATE = "DUPLICATE"
    CONFLICT = "CONFLICT"
    REJECTED = "REJECTED"


@dataclass(slots=True)
class IntakeItem:
    idempotency_key: str
    client_timestamp: dt.datetime | None = None
    household: households.HouseholdData | None = None
    household_update: tuple[int, int, households.HouseholdChanges] | None = None  # (id, expected version, changes)
    complaint: complaints.ComplaintData | None = None
    #: instead of ``complaint.household_id``: the idempotency key of the household's item
    complaint_household_key: str | None = None
    referral: referrals.ReferralData | None = None
    #: instead of ``referral.complaint_id``: the idempotency key of the complaint's item
    referral_complaint_key: str | None = None


@dataclass(slots=True)
class ItemResult:
    idempotency_key: str
    status: ItemStatus
    household_id: int | None = None
    complaint_id: int | None = None
    referral_id: int | None = None
    #: the item was applied by an earlier send; this is its stored result
    replayed: bool = False
    errors: list[DomainError] = field(default_factory=list)


async def _keyed(session: AsyncSession, actor: Actor, key: str, field_name: str) -> int:
    found = await session.scalar(select(IdempotencyKey.result_id).where(
        IdempotencyKey.actor_id == actor.id, IdempotencyKey.key == key))
    if found is None:
        raise ValidationFailed([DomainError("no item with this idempotency key was stored", field=field_name,
                                            code="NOT_FOUND")])
    return int(found)


def _kinds(item: IntakeItem) -> int:
    return sum(x is not None for x in (item.household, item.household_update, item.complaint, item.referral))


async def _apply(session: AsyncSession, *, actor: Actor, cipher: PersonalDataCipher, item: IntakeItem,
                 now: dt.datetime) -> ItemResult:
    key = item.idempotency_key
    if item.household is not None:
        done = await households.register_household(session, actor=actor, cipher=cipher, data=item.household,
                                                   idempotency_key=key)
        return ItemResult(key, ItemStatus.CREATED, household_id=done.household.id, replayed=done.replayed)
    if item.household_update is not None:
        household_id, version, changes = item.household_update
        claimed = await idempotency.claim(session, actor=actor, key=key, operation="updateHousehold")
        if claimed.earlier is not None:
            return ItemResult(key, ItemStatus.UPDATED, household_id=claimed.earlier, replayed=True)
        updated = await households.update_household(session, actor=actor, household_id=household_id,
                                                    expected_version=version, changes=changes)
        await idempotency.complete(session, actor=actor, key=key, result_id=updated.id)
        return ItemResult(key, ItemStatus.UPDATED, household_id=updated.id)
    if item.complaint is not None:
        data = item.complaint
        if item.complaint_household_key is not None:
            data.household_id = await _keyed(session, actor, item.complaint_household_key, "complaint.householdKey")
        if data.reported_at is None and item.client_timestamp is not None:
            data.reported_at = item.client_timestamp
        filed = await complaints.file_complaint(session, actor=actor, data=data, idempotency_key=key, now=now)
        return ItemResult(key, ItemStatus.CREATED, household_id=filed.complaint.household_id,
                          complaint_id=filed.complaint.id, replayed=filed.replayed)
    assert item.referral is not None
    claimed = await idempotency.claim(session, actor=actor, key=key, operation="createReferral")
    if claimed.earlier is not None:
        referral = await referrals.get_referral(session, actor=actor, referral_id=claimed.earlier)
        return ItemResult(key, ItemStatus.CREATED, complaint_id=referral.complaint_id, referral_id=claimed.earlier,
                          replayed=True)
    proposal = item.referral
    if item.referral_complaint_key is not None:
        proposal.complaint_id = await _keyed(session, actor, item.referral_complaint_key, "referral.complaintKey")
    referral = await referrals.create_referral(session, actor=actor, data=proposal)
    await idempotency.complete(session, actor=actor, key=key, result_id=referral.id)
    return ItemResult(key, ItemStatus.CREATED, complaint_id=referral.complaint_id, referral_id=referral.id)


async def submit_batch(session: AsyncSession, *, actor: Actor, cipher: PersonalDataCipher,
                       items: list[IntakeItem], now: dt.datetime | None = None) -> list[ItemResult]:
    """One result per item, in order. Never raises for one item's failure."""
    if not items or len(items) > MAX_ITEMS:
        raise ValidationFailed([DomainError(f"send 1 to {MAX_ITEMS} items", field="items", code="INVALID_COUNT")])
    keys = [i.idempotency_key for i in items]
    if len(set(keys)) != len(keys):
        raise ValidationFailed([DomainError("an idempotency key appears twice in the batch", field="items",
                                            code="DUPLICATE")])
    now = now or dt.datetime.now(dt.UTC)
    results: list[ItemResult] = []
    for index, item in enumerate(items):
        pending: list[object] = session.info.setdefault(PENDING_EVENTS, [])
        mark = len(pending)
        try:
            if _kinds(item) != 1:
                raise ValidationFailed([DomainError("give exactly one of household, householdUpdate, complaint, "
                                                    "referral", field=f"items.{index}", code="INVALID")])
            async with session.begin_nested():
                results.append(await _apply(session, actor=actor, cipher=cipher, item=item, now=now))
        except DomainError as exc:
            del pending[mark:]
            errors = exc.errors if isinstance(exc, ValidationFailed) else [exc]
            status = ItemStatus.REJECTED
            household_id = None
            if isinstance(exc, Duplicate):
                status, household_id = ItemStatus.DUPLICATE, exc.household_id
            elif isinstance(exc, StaleVersion):
                status = ItemStatus.CONFLICT
            results.append(ItemResult(item.idempotency_key, status, household_id=household_id, errors=errors))
    return results
