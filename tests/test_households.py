"""registerHousehold, updateHousehold, addMember: success, every NIK rule, dedup, idempotency."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.events import CaseEvent
from domain.households.models import FamilyCard, Household, Member
from tests.conftest import DESA_A1, DESA_B1, KEC_A, Client, Published, World, nik

REGISTER = """
mutation($input: RegisterHouseholdInput!) {
  registerHousehold(input: $input) {
    replayed
    household { id version regionCode address dtksStatus members { id name nik nikMasked nikStatus relation sex }
                familyCards { numberMasked } }
    errors { field code message }
  }
}"""

HEAD_BIRTH = dt.date(1980, 3, 12)
WIFE_BIRTH = dt.date(1984, 7, 2)
KK = "1274011203150007"


def household_input(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "regionCode": DESA_A1,
        "address": "Jl. Sudirman Gg. Melati No. 12",
        "rt": "003",
        "rw": "001",
        "dtksStatus": "REGISTERED",
        "familyCards": [KK],
        "indicators": {"meals_per_day": 2, "floor_type": "tanah"},
        "members": [
            {"name": "Ahmad Siregar", "sex": "MALE", "birthDate": HEAD_BIRTH.isoformat(), "relation": "HEAD",
             "nik": nik(KEC_A, HEAD_BIRTH, female=False, serial=1)},
            {"name": "Siti Nasution", "sex": "FEMALE", "birthDate": WIFE_BIRTH.isoformat(), "relation": "SPOUSE",
             "nik": nik(KEC_A, WIFE_BIRTH, female=True, serial=2)},
        ],
    }
    data.update(overrides)
    return data


async def count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_register_household_writes_rows_and_one_event(client: Client, world: World, session: AsyncSession,
                                                            published: Published) -> None:
    out = await client.ok(REGISTER, {"input": household_input()}, actor=world.actor("fac_a1"))
    payload = out["registerHousehold"]
    assert payload["errors"] == []
    household = payload["household"]
    assert household["regionCode"] == DESA_A1
    assert household["version"] == 1
    assert [m["relation"] for m in household["members"]] == ["HEAD", "SPOUSE"]
    assert household["members"][0]["nik"] == nik(KEC_A, HEAD_BIRTH, female=False, serial=1)
    assert household["members"][0]["nikMasked"] == "1274**********01"
    assert household["familyCards"] == [{"numberMasked": "1274**********07"}]
    assert await count(session, Household) == 1
    assert await count(session, Member) == 2
    events = list(await session.scalars(select(CaseEvent)))
    assert [e.kind for e in events] == ["HOUSEHOLD_REGISTERED"]
    assert published.ids == [events[0].id]
    # personal data is stored sealed, never in clear
    stored = (await session.scalars(select(Member))).first()
    assert stored is not None and stored.nik_sealed is not None
    assert nik(KEC_A, HEAD_BIRTH, female=False, serial=1).encode() not in stored.nik_sealed


@pytest.mark.parametrize(
    ("member_patch", "code"),
    [
        ({"nik": "12740112038"}, "INVALID_NIK_FORMAT"),
        ({"nik": "12740112038000AB"}, "INVALID_NIK_FORMAT"),
        ({"nik": nik("12.74.02", HEAD_BIRTH, female=False, serial=1)}, "NIK_REGION_MISMATCH"),
        ({"nik": "1274011303800001"}, "NIK_BIRTH_DATE_MISMATCH"),
        ({"nik": nik(KEC_A, HEAD_BIRTH, female=True, serial=1)}, "NIK_SEX_MISMATCH"),
        ({"nik": "1274013213800001"}, "INVALID_NIK_DATE"),
        ({"nik": nik(KEC_A, HEAD_BIRTH, female=False, serial=0)}, "INVALID_NIK_SERIAL"),
        ({"nik": "0074011203800001", "nikFromOtherRegion": True}, "INVALID_NIK_REGION"),
        ({"birthDate": "2999-01-01"}, "INVALID_BIRTH_DATE"),
        ({"name": "  "}, "REQUIRED"),
    ],
)
async def test_invalid_member_is_rejected_and_writes_nothing(client: Client, world: World, session: AsyncSession,
                                                             member_patch: dict[str, Any], code: str) -> None:
    data = household_input()
    data["members"][0].update(member_patch)
    out = await client.ok(REGISTER, {"input": data}, actor=world.actor("fac_a1"))
    payload = out["registerHousehold"]
    assert payload["household"] is None
    assert code in [e["code"] for e in payload["errors"]]
    assert all(e["field"].startswith("members.0") for e in payload["errors"] if e["code"] == code)
    assert await count(session, Household) == 0
    assert await count(session, CaseEvent) == 0


async def test_nik_from_other_region_is_accepted_when_declared(client: Client, world: World) -> None:
    data = household_input()
    data["members"][0].update({"nik": nik("12.71.03", HEAD_BIRTH, female=False, serial=9),
                               "nikFromOtherRegion": True})
    out = await client.ok(REGISTER, {"input": data}, actor=world.actor("fac_a1"))
    assert out["registerHousehold"]["errors"] == []


async def test_placeholder_nik_is_accepted_and_never_deduplicated(client: Client, world: World) -> None:
    first = household_input()
    first["members"][1]["nik"] = "9999999999999999"
    out = await client.ok(REGISTER, {"input": first}, actor=world.actor("fac_a1"))
    member = out["registerHousehold"]["household"]["members"][1]
    assert member["nikStatus"] == "PLACEHOLDER" and member["nik"] is None and member["nikMasked"] is None
    second = household_input(familyCards=["1274011203150008"])
    second["members"] = [{"name": "Rina", "sex": "FEMALE", "birthDate": "1990-01-01", "relation": "HEAD",
                          "nik": "9999999999999999"}]
    out = await client.ok(REGISTER, {"input": second}, actor=world.actor("fac_a1"))
    assert out["registerHousehold"]["errors"] == []


@pytest.mark.parametrize("field", ["familyCards", "nik"])
async def test_duplicate_kk_or_nik_returns_existing_household(client: Client, world: World, session: AsyncSession,
                                                              field: str) -> None:
    first = await client.ok(REGISTER, {"input": household_input()}, actor=world.actor("fac_a1"))
    existing = first["registerHousehold"]["household"]["id"]
    again = household_input()
    if field == "nik":
        again["familyCards"] = ["1274011203150099"]
    else:
        again["members"][0]["nik"] = nik(KEC_A, HEAD_BIRTH, female=False, serial=77)
        again["members"][1]["nik"] = nik(KEC_A, WIFE_BIRTH, female=True, serial=78)
    out = await client.ok(REGISTER, {"input": again}, actor=world.actor("fac_a1b"))
    payload = out["registerHousehold"]
    assert [e["code"] for e in payload["errors"]] == ["DUPLICATE_KK" if field == "familyCards" else "DUPLICATE_NIK"]
    assert payload["household"]["id"] == existing
    assert await count(session, Household) == 1
    assert await count(session, FamilyCard) == 1


async def test_duplicate_outside_scope_does_not_reveal_the_household(client: Client, world: World) -> None:
    await client.ok(REGISTER, {"input": household_input()}, actor=world.actor("fac_a1"))
    again = household_input(regionCode=DESA_B1)
    again["members"] = [again["members"][0] | {"nikFromOtherRegion": True}]
    out = await client.ok(REGISTER, {"input": again}, actor=world.actor("fac_b1"))
    payload = out["registerHousehold"]
    assert [e["code"] for e in payload["errors"]] == ["DUPLICATE_KK"]
    assert payload["household"] is None


async def test_out_of_scope_region_and_non_desa(client: Client, world: World) -> None:
    out = await client.ok(REGISTER, {"input": household_input(regionCode=DESA_B1)}, actor=world.actor("fac_a1"))
    assert [e["code"] for e in out["registerHousehold"]["errors"]] == ["NOT_FOUND"]
    out = await client.ok(REGISTER, {"input": household_input(regionCode=KEC_A)}, actor=world.actor("sup_a"))
    assert [e["code"] for e in out["registerHousehold"]["errors"]] == ["REGION_NOT_DESA"]


async def test_household_rules(client: Client, world: World) -> None:
    data = household_input(rt="12345", latitude=40.0, longitude=99.0, familyCards=["12345"])
    data["members"][1]["relation"] = "HEAD"
    out = await client.ok(REGISTER, {"input": data}, actor=world.actor("fac_a1"))
    codes = {e["code"] for e in out["registerHousehold"]["errors"]}
    assert {"INVALID_RT_RW", "INVALID_COORDINATES", "INVALID_KK_FORMAT", "ONE_HEAD_REQUIRED"} <= codes


async def test_partner_and_unauthenticated_cannot_register(client: Client, world: World) -> None:
    out = await client.ok(REGISTER, {"input": household_input()}, actor=world.actor("partner"))
    assert [e["code"] for e in out["registerHousehold"]["errors"]] == ["FORBIDDEN"]
    out = await client.ok(REGISTER, {"input": household_input()}, actor=None)
    assert [e["code"] for e in out["registerHousehold"]["errors"]] == ["UNAUTHENTICATED"]


async def test_idempotency_key_replay_returns_first_result(client: Client, world: World,
                                                           session: AsyncSession) -> None:
    data = household_input(idempotencyKey="tablet-7:0001")
    first = await client.ok(REGISTER, {"input": data}, actor=world.actor("fac_a1"))
    second = await client.ok(REGISTER, {"input": data}, actor=world.actor("fac_a1"))
    assert first["registerHousehold"]["replayed"] is False
    assert second["registerHousehold"]["replayed"] is True
    assert second["registerHousehold"]["household"]["id"] == first["registerHousehold"]["household"]["id"]
    assert await count(session, Household) == 1
    assert await count(session, CaseEvent) == 1


UPDATE = """
mutation($input: UpdateHouseholdInput!) {
  updateHousehold(input: $input) { household { id version address dtksStatus indicators } errors { field code } }
}"""


async def test_update_household_with_version(client: Client, world: World, session: AsyncSession) -> None:
    created = await client.ok(REGISTER, {"input": household_input()}, actor=world.actor("fac_a1"))
    hid = created["registerHousehold"]["household"]["id"]
    out = await client.ok(UPDATE, {"input": {"id": hid, "expectedVersion": 1, "address": "Jl. Asahan No. 3",
                                             "indicators": {"meals_per_day": 1}}}, actor=world.actor("fac_a1"))
    household = out["updateHousehold"]["household"]
    assert household["version"] == 2 and household["address"] == "Jl. Asahan No. 3"
    assert household["indicators"] == {"meals_per_day": 1, "floor_type": "tanah"}
    stale = await client.ok(UPDATE, {"input": {"id": hid, "expectedVersion": 1, "address": "Jl. Lain"}},
                            actor=world.actor("fac_a1"))
    assert [e["code"] for e in stale["updateHousehold"]["errors"]] == ["STALE_VERSION"]
    assert stale["updateHousehold"]["household"]["address"] == "Jl. Asahan No. 3"
    bad = await client.ok(UPDATE, {"input": {"id": hid, "expectedVersion": 2, "indicators": {"nope": 1}}},
                          actor=world.actor("fac_a1"))
    assert [e["code"] for e in bad["updateHousehold"]["errors"]] == ["UNKNOWN_INDICATOR"]
    unknown = await client.ok(UPDATE, {"input": {"id": "bm9wZQ", "expectedVersion": 1}}, actor=world.actor("fac_a1"))
    assert [e["code"] for e in unknown["updateHousehold"]["errors"]] == ["INVALID_ID"]
    kinds = list(await session.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))
    assert kinds == ["HOUSEHOLD_REGISTERED", "HOUSEHOLD_UPDATED"]


ADD_MEMBER = """
mutation($input: AddMemberInput!) {
  addMember(input: $input) { replayed member { id name relation } household { id version } errors { field code } }
}"""


async def test_add_member(client: Client, world: World, session: AsyncSession) -> None:
    created = await client.ok(REGISTER, {"input": household_input()}, actor=world.actor("fac_a1"))
    hid = created["registerHousehold"]["household"]["id"]
    child_birth = dt.date(2012, 5, 20)
    member = {"name": "Putri Siregar", "sex": "FEMALE", "birthDate": child_birth.isoformat(), "relation": "CHILD",
              "nik": nik(KEC_A, child_birth, female=True, serial=3)}
    args = {"input": {"householdId": hid, "member": member, "idempotencyKey": "k-1"}}
    out = await client.ok(ADD_MEMBER, args, actor=world.actor("fac_a1"))
    assert out["addMember"]["errors"] == [] and out["addMember"]["household"]["version"] == 2
    replay = await client.ok(ADD_MEMBER, args, actor=world.actor("fac_a1"))
    assert replay["addMember"]["replayed"] is True
    assert replay["addMember"]["member"]["id"] == out["addMember"]["member"]["id"]
    dup = await client.ok(ADD_MEMBER, {"input": {"householdId": hid, "member": member}}, actor=world.actor("fac_a1"))
    assert [e["code"] for e in dup["addMember"]["errors"]] == ["DUPLICATE_NIK"]
    head = await client.ok(ADD_MEMBER, {"input": {"householdId": hid, "member": member | {
        "relation": "HEAD", "nik": None}}}, actor=world.actor("fac_a1"))
    assert [e["code"] for e in head["addMember"]["errors"]] == ["ONE_HEAD_REQUIRED"]
    assert await count(session, Member) == 3
