"""Registering households, their family cards and members; dedup on No. KK and NIK."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain import idempotency
from domain.actor import Actor, Op
from domain.crypto import KK, NIK, PersonalDataCipher
from domain.enums import DtksStatus, NikStatus, RegionLevel, Relation, Sex
from domain.errors import DomainError, Duplicate, NotFound, StaleVersion, ValidationFailed
from domain.events import EventKind, append_event
from domain.households.models import FamilyCard, Household, Member
from domain.households.nik import is_placeholder, normalise, validate_kk, validate_nik
from domain.regions import Region, level_of
from domain.scoping import get_in_scope

MAX_MEMBERS = 30
MAX_FAMILY_CARDS = 5
INDICATOR_KEYS = frozenset({
    "floor_area_m2_per_person", "floor_type", "wall_type", "toilet", "drinking_water", "lighting",
    "cooking_fuel", "meat_milk_weekly", "new_clothes_yearly", "meals_per_day", "can_pay_clinic",
    "head_income_source", "head_education", "savings_over_500k",
})


@dataclass(slots=True)
class MemberData:
    name: str
    sex: Sex
    birth_date: dt.date
    relation: Relation
    nik: str | None = None
    nik_from_other_region: bool = False
    family_card_index: int | None = None
    education: str | None = None
    occupation: str | None = None
    disability: str | None = None
    chronic_illness: str | None = None
    programs: list[str] = field(default_factory=list)


@dataclass(slots=True)
class HouseholdData:
    region_code: str
    address: str
    dtks_status: DtksStatus
    family_cards: list[str]
    members: list[MemberData]
    rt: str | None = None
    rw: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    indicators: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class HouseholdChanges:
    address: str | None = None
    rt: str | None = None
    rw: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    dtks_status: DtksStatus | None = None
    indicators: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Registered:
    household: Household
    replayed: bool


def _text(value: str | None, *, field: str, limit: int, required: bool = True) -> list[DomainError]:
    if value is None or not value.strip():
        return [DomainError("this field is required", field=field, code="REQUIRED")] if required else []
    if len(value) > limit:
        return [DomainError(f"at most {limit} characters", field=field, code="TOO_LONG")]
    return []


def _rt_rw(value: str | None, *, field: str) -> list[DomainError]:
    if value is not None and not re.fullmatch(r"[0-9]{1,3}", value):
        return [DomainError("RT/RW is a number of up to 3 digits", field=field, code="INVALID_RT_RW")]
    return []


def _coordinates(lat: float | None, lon: float | None) -> list[DomainError]:
    if (lat is None) != (lon is None):
        return [DomainError("give both latitude and longitude, or neither", field="latitude",
                            code="INVALID_COORDINATES")]
    if lat is not None and lon is not None and not (-11 <= lat <= 6 and 94 <= lon <= 142):
        return [DomainError("the coordinates are outside Indonesia", field="latitude", code="INVALID_COORDINATES")]
    return []


def _indicators(values: dict[str, Any]) -> list[DomainError]:
    unknown = sorted(set(values) - INDICATOR_KEYS)
    if unknown:
        return [DomainError(f"unknown poverty indicator: {unknown[0]}", field="indicators",
                            code="UNKNOWN_INDICATOR")]
    return []


def _member_errors(member: MemberData, *, prefix: str, region_code: str, cards: int,
                   today: dt.date) -> list[DomainError]:
    errors = _text(member.name, field=f"{prefix}.name", limit=200)
    if member.birth_date > today or member.birth_date.year < 1900:
        errors.append(DomainError("the birth date is not plausible", field=f"{prefix}.birthDate",
                                  code="INVALID_BIRTH_DATE"))
    if member.nik is not None:
        try:
            validate_nik(member.nik, region_code=region_code, birth_date=member.birth_date, sex=member.sex,
                         from_other_region=member.nik_from_other_region, field=f"{prefix}.nik")
        except DomainError as exc:
            errors.append(exc)
    if member.family_card_index is not None and not 0 <= member.family_card_index < cards:
        errors.append(DomainError("no family card at this index", field=f"{prefix}.familyCardIndex",
                                  code="INVALID_FAMILY_CARD_INDEX"))
    for name in ("education", "occupation"):
        errors += _text(getattr(member, name), field=f"{prefix}.{name}", limit=80, required=False)
    for name, gql in (("disability", "disability"), ("chronic_illness", "chronicIllness")):
        errors += _text(getattr(member, name), field=f"{prefix}.{gql}", limit=500, required=False)
    if len(member.programs) > 20 or any(not p or len(p) > 40 for p in member.programs):
        errors.append(DomainError("programs are up to 20 codes of up to 40 characters", field=f"{prefix}.programs",
                                  code="INVALID_PROGRAMS"))
    return errors


async def _desa(session: AsyncSession, actor: Actor, code: str, *, field: str = "regionCode") -> Region:
    region = await session.get(Region, code)
    if region is None or not actor.covers(code):
        raise NotFound("no such region in your area", field=field)
    if level_of(code) is not RegionLevel.DESA:
        raise DomainError("a household lies in a desa/kelurahan: give its full code", field=field,
                          code="REGION_NOT_DESA")
    return region


def _check(errors: list[DomainError]) -> None:
    if errors:
        raise ValidationFailed(errors)


async def _raise_if_registered(session: AsyncSession, *, kk_hashes: dict[bytes, str],
                               nik_hashes: dict[bytes, str]) -> None:
    if kk_hashes:
        found: Any = (await session.execute(
            select(FamilyCard.number_hash, FamilyCard.household_id)
            .where(FamilyCard.number_hash.in_(kk_hashes)).limit(1)
        )).first()
        if found is not None:
            raise Duplicate("this family card (No. KK) is already registered", field=kk_hashes[found[0]],
                            code="DUPLICATE_KK", household_id=found[1])
    if nik_hashes:
        found = (await session.execute(
            select(Member.nik_hash, Member.household_id).where(Member.nik_hash.in_(nik_hashes)).limit(1)
        )).first()
        if found is not None:
            raise Duplicate("a member with this NIK is already registered", field=nik_hashes[found[0]],
                            code="DUPLICATE_NIK", household_id=found[1])


def _new_member(cipher: PersonalDataCipher, data: MemberData, household_id: int,
                card_ids: list[int], *, member_id: int | None = None) -> Member:
    status = NikStatus.PLACEHOLDER
    sealed = None
    if data.nik is not None:
        status = NikStatus.PLACEHOLDER if is_placeholder(data.nik) else NikStatus.VALID
        if status is NikStatus.VALID:
            sealed = cipher.seal(data.nik, kind=NIK)
    return Member(
        id=member_id,
        household_id=household_id,
        family_card_id=card_ids[data.family_card_index] if data.family_card_index is not None else (
            card_ids[0] if card_ids else None),
        nik_status=status.value,
        nik_hash=sealed.digest if sealed else None,
        nik_sealed=sealed.ciphertext if sealed else None,
        nik_masked=sealed.masked if sealed else None,
        nik_from_other_region=data.nik_from_other_region,
        name=data.name.strip(),
        sex=data.sex.value,
        birth_date=data.birth_date,
        relation=data.relation.value,
        education=data.education,
        occupation=data.occupation,
        disability=data.disability,
        chronic_illness=data.chronic_illness,
        programs=list(dict.fromkeys(data.programs)),
    )


async def _flush_or_duplicate(session: AsyncSession) -> None:
    """Flush; a unique violation from a concurrent registration of the same NIK/No. KK is a duplicate."""
    try:
        await session.flush()
    except IntegrityError as exc:
        text = str(exc.orig)
        code = "DUPLICATE_KK" if "family_cards" in text else "DUPLICATE_NIK"
        raise Duplicate("this person or family card was registered at the same moment by someone else",
                        code=code) from None


async def register_household(
    session: AsyncSession,
    *,
    actor: Actor,
    cipher: PersonalDataCipher,
    data: HouseholdData,
    idempotency_key: str | None = None,
    today: dt.date | None = None,
) -> Registered:
    actor.require(Op.REGISTER_HOUSEHOLD)
    claimed = await idempotency.claim(session, actor=actor, key=idempotency_key, operation="registerHousehold",
                                      reserve=Household)
    if claimed.earlier is not None:
        return Registered(await get_household(session, actor=actor, household_id=claimed.earlier), replayed=True)
    today = today or dt.date.today()  # noqa: DTZ011 - birth dates are calendar dates
    await _desa(session, actor, data.region_code)
    errors = _text(data.address, field="address", limit=300)
    errors += _rt_rw(data.rt, field="rt") + _rt_rw(data.rw, field="rw")
    errors += _coordinates(data.latitude, data.longitude) + _indicators(data.indicators)
    if not data.members:
        errors.append(DomainError("a household has at least one member", field="members", code="REQUIRED"))
    if len(data.members) > MAX_MEMBERS:
        errors.append(DomainError(f"at most {MAX_MEMBERS} members", field="members", code="TOO_MANY"))
    if len(data.family_cards) > MAX_FAMILY_CARDS:
        errors.append(DomainError(f"at most {MAX_FAMILY_CARDS} family cards", field="familyCards",
                                  code="TOO_MANY"))
    heads = [m for m in data.members if m.relation is Relation.HEAD]
    if data.members and len(heads) != 1:
        errors.append(DomainError("a household has exactly one head", field="members", code="ONE_HEAD_REQUIRED"))
    cards = [normalise(c) for c in data.family_cards]
    for i, card in enumerate(cards):
        try:
            validate_kk(card, field=f"familyCards.{i}")
        except DomainError as exc:
            errors.append(exc)
    for i, member in enumerate(data.members):
        if member.nik is not None:
            member.nik = normalise(member.nik)
        errors += _member_errors(member, prefix=f"members.{i}", region_code=data.region_code, cards=len(cards),
                                 today=today)
    _check(errors)

    kk_hashes: dict[bytes, str] = {}
    for i, card in enumerate(cards):
        digest = cipher.digest(card)
        if digest in kk_hashes:
            raise Duplicate("the same family card is given twice", field=f"familyCards.{i}", code="DUPLICATE_KK")
        kk_hashes[digest] = f"familyCards.{i}"
    nik_hashes: dict[bytes, str] = {}
    for i, member in enumerate(data.members):
        if member.nik is None or is_placeholder(member.nik):
            continue
        digest = cipher.digest(member.nik)
        if digest in nik_hashes:
            raise Duplicate("the same NIK is given twice", field=f"members.{i}.nik", code="DUPLICATE_NIK")
        nik_hashes[digest] = f"members.{i}.nik"
    await _raise_if_registered(session, kk_hashes=kk_hashes, nik_hashes=nik_hashes)

    household = Household(
        id=claimed.reserved, region_code=data.region_code, address=data.address.strip(), rt=data.rt, rw=data.rw,
        latitude=data.latitude, longitude=data.longitude, dtks_status=data.dtks_status.value,
        indicators=data.indicators, registered_by_id=actor.id,
    )
    session.add(household)
    await session.flush()
    family_cards = []
    for card in cards:
        sealed = cipher.seal(card, kind=KK)
        family_cards.append(FamilyCard(household_id=household.id, number_hash=sealed.digest,
                                       number_sealed=sealed.ciphertext, number_masked=sealed.masked))
    session.add_all(family_cards)
    await _flush_or_duplicate(session)
    card_ids = [c.id for c in family_cards]
    session.add_all([_new_member(cipher, m, household.id, card_ids) for m in data.members])
    await _flush_or_duplicate(session)
    await append_event(session, kind=EventKind.HOUSEHOLD_REGISTERED, actor=actor, region_code=household.region_code,
                       household_id=household.id, data={"members": len(data.members),
                                                        "dtksStatus": household.dtks_status})
    await session.refresh(household)
    return Registered(household, replayed=False)


async def get_household(session: AsyncSession, *, actor: Actor, household_id: int, for_update: bool = False,
                        field: str = "id") -> Household:
    return await get_in_scope(session, Household, actor=actor, pk=household_id, region_column=Household.region_code,
                              for_update=for_update, field=field, what="household")


_HOUSEHOLD_REGION = select(Household.__table__.c.region_code).where(Household.__table__.c.id == bindparam("id"))


async def household_region(session: AsyncSession, *, actor: Actor, household_id: int, field: str = "id") -> str:
    """The region of a household in the actor's area (one outside it is not found, as by :func:`get_household`),
    without loading the row: for a service that only files something under it."""
    actor.require(Op.READ)
    region: str | None = (await session.execute(_HOUSEHOLD_REGION, {"id": household_id})).scalar()
    if region is None or not actor.covers(region):
        raise NotFound("no such household in your area", field=field)
    return region


async def update_household(
    session: AsyncSession,
    *,
    actor: Actor,
    household_id: int,
    expected_version: int,
    changes: HouseholdChanges,
) -> Household:
    actor.require(Op.UPDATE_HOUSEHOLD)
    household = await get_household(session, actor=actor, household_id=household_id, for_update=True)
    if household.version != expected_version:
        raise StaleVersion(current_version=household.version)
    errors: list[DomainError] = []
    if changes.address is not None:
        errors += _text(changes.address, field="address", limit=300)
    errors += _rt_rw(changes.rt, field="rt") + _rt_rw(changes.rw, field="rw")
    lat = changes.latitude if changes.latitude is not None else household.latitude
    lon = changes.longitude if changes.longitude is not None else household.longitude
    errors += _coordinates(lat, lon)
    if changes.indicators is not None:
        errors += _indicators(changes.indicators)
    _check(errors)
    values: dict[str, Any] = {}
    for name in ("address", "rt", "rw", "latitude", "longitude"):
        value = getattr(changes, name)
        if value is not None and value != getattr(household, name):
            values[name] = value.strip() if isinstance(value, str) else value
    if changes.dtks_status is not None and changes.dtks_status.value != household.dtks_status:
        values["dtks_status"] = changes.dtks_status.value
    if changes.indicators is not None:
        merged = {**household.indicators, **changes.indicators}
        if merged != household.indicators:
            values["indicators"] = merged
    if not values:
        return household
    await session.execute(
        update(Household).where(Household.id == household.id)
        .values(**values, version=Household.version + 1, updated_at=func.now())
    )
    await append_event(session, kind=EventKind.HOUSEHOLD_UPDATED, actor=actor, region_code=household.region_code,
                       household_id=household.id, data={"fields": sorted(values), "version": expected_version + 1})
    return await get_household(session, actor=actor, household_id=household.id)


async def add_member(
    session: AsyncSession,
    *,
    actor: Actor,
    cipher: PersonalDataCipher,
    household_id: int,
    data: MemberData,
    idempotency_key: str | None = None,
    today: dt.date | None = None,
) -> tuple[Member, bool]:
    actor.require(Op.UPDATE_HOUSEHOLD)
    claimed = await idempotency.claim(session, actor=actor, key=idempotency_key, operation="addMember",
                                      reserve=Member)
    if claimed.earlier is not None:
        member = await session.get(Member, claimed.earlier)
        if member is None:
            raise NotFound("no such member")
        return member, True
    household = await get_household(session, actor=actor, household_id=household_id, for_update=True,
                                    field="householdId")
    today = today or dt.date.today()  # noqa: DTZ011
    if data.nik is not None:
        data.nik = normalise(data.nik)
    card_ids = list(await session.scalars(
        select(FamilyCard.id).where(FamilyCard.household_id == household.id).order_by(FamilyCard.id)
    ))
    errors = _member_errors(data, prefix="member", region_code=household.region_code, cards=len(card_ids),
                            today=today)
    if data.relation is Relation.HEAD:
        has_head = await session.scalar(
            select(func.count()).select_from(Member)
            .where(Member.household_id == household.id, Member.relation == Relation.HEAD.value)
        )
        if has_head:
            errors.append(DomainError("this household already has a head", field="member.relation",
                                      code="ONE_HEAD_REQUIRED"))
    count = await session.scalar(select(func.count()).select_from(Member).where(Member.household_id == household.id))
    if (count or 0) >= MAX_MEMBERS:
        errors.append(DomainError(f"at most {MAX_MEMBERS} members", field="member", code="TOO_MANY"))
    _check(errors)
    if data.nik is not None and not is_placeholder(data.nik):
        await _raise_if_registered(session, kk_hashes={}, nik_hashes={cipher.digest(data.nik): "member.nik"})
    member = _new_member(cipher, data, household.id, card_ids, member_id=claimed.reserved)
    session.add(member)
    await _flush_or_duplicate(session)
    await session.execute(
        update(Household).where(Household.id == household.id)
        .values(version=Household.version + 1, updated_at=func.now())
    )
    await append_event(session, kind=EventKind.MEMBER_ADDED, actor=actor, region_code=household.region_code,
                       household_id=household.id, data={"memberId": member.id, "version": household.version + 1})
    await session.refresh(member)
    return member, False
