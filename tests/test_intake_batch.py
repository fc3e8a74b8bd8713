"""submitIntakeBatch: tablets' offline intake, many items, one result each, safe to re-send."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.complaints.models import Complaint
from domain.events import CaseEvent
from domain.households.models import Household
from domain.referrals.models import Referral
from schema.relay import to_global_id
from tests.conftest import DESA_A1, KEC_A, Client, World, nik

BATCH = """
mutation($input: SubmitIntakeBatchInput!) {
  submitIntakeBatch(input: $input) {
    results { idempotencyKey status replayed household { id version } complaint { id status reportedAt }
              referral { id status } errors { field code } }
    errors { field code }
  }
}"""


def household(serial: int, **overrides: Any) -> dict[str, Any]:
    born = dt.date(1981, 6, 15)
    data: dict[str, Any] = {
        "regionCode": DESA_A1, "address": f"Jl. Imam Bonjol No. {serial}", "familyCards": [f"127401150681{serial:04d}"],
        "members": [{"name": f"Kepala {serial}", "sex": "MALE", "birthDate": born.isoformat(), "relation": "HEAD",
                     "nik": nik(KEC_A, born, female=False, serial=serial)}],
    }
    data.update(overrides)
    return data


async def counts(session: AsyncSession) -> tuple[int, int, int, int]:
    async def n(model: Any) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return await n(Household), await n(Complaint), await n(Referral), await n(CaseEvent)


async def test_mixed_batch_stores_the_good_reports_the_rest_and_resending_changes_nothing(
        client: Client, world: World, session: AsyncSession) -> None:
    fac = world.actor("fac_a1")
    existing = await client.ok(BATCH, {"input": {"items": [{"idempotencyKey": "t1-000", "household": household(1)}]}},
                               actor=fac)
    assert existing["submitIntakeBatch"]["results"][0]["status"] == "CREATED"
    reported = "2026-11-20T08:15:00+07:00"
    items = [
        {"idempotencyKey": "t1-001", "household": household(2), "clientTimestamp": reported},
        {"idempotencyKey": "t1-002", "clientTimestamp": reported,
         "complaint": {"householdKey": "t1-001", "sector": "HEALTH", "description": "Belum punya KIS"}},
        {"idempotencyKey": "t1-003", "household": household(1)},  # the No. KK of t1-000: a duplicate
        {"idempotencyKey": "t1-004", "household": household(3, members=[])},  # no members: rejected
        {"idempotencyKey": "t1-005", "complaint": {"householdKey": "nope", "sector": "FOOD", "description": "x"}},
        {"idempotencyKey": "t1-006", "complaint": {"householdKey": "t1-000", "sector": "EDUCATION",
                                                   "description": "Anak belum terima KIP"}},
        {"idempotencyKey": "t1-007", "household": household(4), "complaint": {"householdKey": "t1-000",
                                                                              "sector": "FOOD", "description": "x"}},
    ]
    first = (await client.ok(BATCH, {"input": {"items": items}}, actor=fac))["submitIntakeBatch"]
    statuses = [(r["idempotencyKey"], r["status"]) for r in first["results"]]
    assert statuses == [("t1-001", "CREATED"), ("t1-002", "CREATED"), ("t1-003", "DUPLICATE"), ("t1-004", "REJECTED"),
                        ("t1-005", "REJECTED"), ("t1-006", "CREATED"), ("t1-007", "REJECTED")]
    by_key = {r["idempotencyKey"]: r for r in first["results"]}
    assert by_key["t1-002"]["complaint"]["reportedAt"].startswith("2026-11-20T01:15:00")
    assert by_key["t1-003"]["household"]["id"] == existing["submitIntakeBatch"]["results"][0]["household"]["id"]
    assert [e["code"] for e in by_key["t1-003"]["errors"]] == ["DUPLICATE_KK"]
    assert [e["code"] for e in by_key["t1-005"]["errors"]] == ["NOT_FOUND"]
    assert [e["code"] for e in by_key["t1-007"]["errors"]] == ["INVALID"]
    after_first = await counts(session)
    for _ in range(2):
        again = (await client.ok(BATCH, {"input": {"items": items}}, actor=fac))["submitIntakeBatch"]
        assert [(r["idempotencyKey"], r["status"]) for r in again["results"]] == statuses
        assert [r["replayed"] for r in again["results"] if r["status"] == "CREATED"] == [True, True, True]
        assert [(r["household"] or {}).get("id") for r in again["results"]] == \
            [(r["household"] or {}).get("id") for r in first["results"]]
        assert await counts(session) == after_first
    assert after_first[:2] == (2, 2)


async def test_server_side_edits_are_conflicts_and_referrals_chain_by_key(client: Client, world: World) -> None:
    fac, sup = world.actor("fac_a1"), world.actor("sup_a")
    made = (await client.ok(BATCH, {"input": {"items": [
        {"idempotencyKey": "t2-1", "household": household(11)},
        {"idempotencyKey": "t2-2", "complaint": {"householdKey": "t2-1", "sector": "HEALTH", "description": "KIS"}},
    ]}}, actor=fac))["submitIntakeBatch"]["results"]
    hid, cid = made[0]["household"]["id"], made[1]["complaint"]["id"]
    await client.ok("""mutation($i: ComplaintTransitionInput!) { verifyComplaint(input: $i) { errors { code } } }""",
                    {"i": {"id": cid, "expectedVersion": 1}}, actor=sup)
    await client.ok("""mutation($i: UpdateHouseholdInput!) { updateHousehold(input: $i) { errors { code } } }""",
                    {"i": {"id": hid, "expectedVersion": 1, "address": "Diubah di server"}}, actor=sup)
    later = (await client.ok(BATCH, {"input": {"items": [
        {"idempotencyKey": "t2-3", "householdUpdate": {"id": hid, "expectedVersion": 1, "address": "Dari tablet"}},
        {"idempotencyKey": "t2-4", "referral": {"complaintKey": "t2-2", "consentGiven": True,
                                                "programId": to_global_id("Program", world.programs["PBI-JK"].id)}},
    ]}}, actor=fac))["submitIntakeBatch"]["results"]
    assert later[0]["status"] == "CONFLICT" and [e["code"] for e in later[0]["errors"]] == ["STALE_VERSION"]
    assert later[1]["status"] == "CREATED" and later[1]["referral"]["status"] == "DRAFT"
    household_now = await client.ok("query($id: ID!) { node(id: $id) { ... on Household { address version } } }",
                                    {"id": hid}, actor=sup)
    assert household_now["node"] == {"address": "Diubah di server", "version": 2}


async def test_batch_limits(client: Client, world: World) -> None:
    fac = world.actor("fac_a1")
    empty = (await client.ok(BATCH, {"input": {"items": []}}, actor=fac))["submitIntakeBatch"]
    assert [e["code"] for e in empty["errors"]] == ["INVALID_COUNT"]
    twice = (await client.ok(BATCH, {"input": {"items": [{"idempotencyKey": "k", "household": household(21)},
                                                         {"idempotencyKey": "k", "household": household(22)}]}},
                             actor=fac))["submitIntakeBatch"]
    assert [e["code"] for e in twice["errors"]] == ["DUPLICATE"] and twice["results"] == []
    partner = (await client.ok(BATCH, {"input": {"items": [{"idempotencyKey": "p", "household": household(23)}]}},
                               actor=world.actor("partner")))["submitIntakeBatch"]
    assert partner["results"][0]["status"] == "REJECTED"
    assert [e["code"] for e in partner["results"][0]["errors"]] == ["FORBIDDEN"]
