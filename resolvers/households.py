"""registerHousehold, updateHousehold, addMember."""

from __future__ import annotations

from typing import Any

from domain.errors import DomainError, Duplicate, ValidationFailed
from domain.households import service
from domain.households.service import HouseholdChanges, HouseholdData, MemberData
from resolvers.common import Info, attempt, pk
from schema.enums import DtksStatus, Relation, Sex
from schema.errors import HouseholdError, errors_of
from schema.inputs import AddMemberInput, MemberInput, RegisterHouseholdInput, UpdateHouseholdInput
from schema.payloads import AddMemberPayload, RegisterHouseholdPayload, UpdateHouseholdPayload
from schema.types.households import Household, Member


def _indicators(value: Any, field: str = "indicators") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed([DomainError("indicators is a JSON object", field=field, code="INVALID")])
    return value


def _member(m: MemberInput) -> MemberData:
    return MemberData(name=m.name, sex=Sex(m.sex), birth_date=m.birth_date, relation=Relation(m.relation),
                      nik=m.nik, nik_from_other_region=m.nik_from_other_region,
                      family_card_index=m.family_card_index, education=m.education, occupation=m.occupation,
                      disability=m.disability, chronic_illness=m.chronic_illness, programs=list(m.programs))


async def _existing(info: Info, household_id: int | None) -> Household | None:
    if household_id is None:
        return None
    row = await info.context.loaders.household.load(household_id)
    return Household.from_row(row) if row else None


def household_data(input: RegisterHouseholdInput) -> HouseholdData:
    return HouseholdData(
        region_code=input.region_code, address=input.address, dtks_status=DtksStatus(input.dtks_status),
        family_cards=list(input.family_cards), members=[_member(m) for m in input.members], rt=input.rt,
        rw=input.rw, latitude=input.latitude, longitude=input.longitude, indicators=_indicators(input.indicators))


def household_changes(input: UpdateHouseholdInput) -> HouseholdChanges:
    return HouseholdChanges(
        address=input.address, rt=input.rt, rw=input.rw, latitude=input.latitude, longitude=input.longitude,
        dtks_status=DtksStatus(input.dtks_status) if input.dtks_status else None,
        indicators=_indicators(input.indicators) if input.indicators is not None else None)


async def register_household(info: Info, input: RegisterHouseholdInput) -> RegisterHouseholdPayload:
    try:
        data = household_data(input)
        done = await attempt(info, lambda s, a: service.register_household(
            s, actor=a, cipher=info.context.cipher, data=data, idempotency_key=input.idempotency_key))
    except Duplicate as exc:
        return RegisterHouseholdPayload(household=await _existing(info, exc.household_id), replayed=False,
                                        errors=errors_of(exc, HouseholdError))
    except DomainError as exc:
        return RegisterHouseholdPayload(household=None, replayed=False, errors=errors_of(exc, HouseholdError))
    return RegisterHouseholdPayload(household=Household.from_row(done.household), replayed=done.replayed, errors=[])


async def update_household(info: Info, input: UpdateHouseholdInput) -> UpdateHouseholdPayload:
    try:
        changes = household_changes(input)
        row = await attempt(info, lambda s, a: service.update_household(
            s, actor=a, household_id=pk(input.id, "Household"), expected_version=input.expected_version,
            changes=changes))
    except DomainError as exc:
        current = None
        if exc.code == "STALE_VERSION":
            current = await _existing(info, pk(input.id, "Household"))
        return UpdateHouseholdPayload(household=current, errors=errors_of(exc, HouseholdError))
    return UpdateHouseholdPayload(household=Household.from_row(row), errors=[])


async def add_member(info: Info, input: AddMemberInput) -> AddMemberPayload:
    try:
        household_id = pk(input.household_id, "Household", field="householdId")
        data = _member(input.member)
        member, replayed = await attempt(info, lambda s, a: service.add_member(
            s, actor=a, cipher=info.context.cipher, household_id=household_id, data=data,
            idempotency_key=input.idempotency_key))
    except Duplicate as exc:
        return AddMemberPayload(member=None, household=await _existing(info, exc.household_id), replayed=False,
                                errors=errors_of(exc, HouseholdError))
    except DomainError as exc:
        return AddMemberPayload(member=None, household=None, replayed=False, errors=errors_of(exc, HouseholdError))
    return AddMemberPayload(member=Member.from_row(member), household=await _existing(info, member.household_id),
                            replayed=replayed, errors=[])
