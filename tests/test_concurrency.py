"""Races that only real, concurrent transactions show: replayed idempotency keys and competing edits."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.complaints.models import Complaint
from domain.events import CaseEvent
from domain.households.models import Household
from schema.relay import to_global_id
from server.context import Services
from tests.conftest import Client, LiveWorld, nik

REGISTER = """
mutation($input: RegisterHouseholdInput!) {
  registerHousehold(input: $input) { replayed household { id } errors { code } }
}"""
FILE = """
mutation($input: FileComplaintInput!) {
  fileComplaint(input: $input) { replayed complaint { id version } errors { code } }
}"""
REASSIGN = """
mutation($input: ReassignComplaintInput!) {
  reassignComplaint(input: $input) { complaint { id version assignee { username } } errors { code } }
}"""


def household(world: LiveWorld, serial: int, key: str | None = None) -> dict[str, Any]:
    born = dt.date(1979, 4, 5)
    kec = world.code(".74.01")
    return {"idempotencyKey": key, "regionCode": world.code(".74.01.1001"), "address": "Jl. Mesjid No. 1",
            "familyCards": [f"{kec.replace('.', '')}0504790{serial:03d}"],
            "members": [{"name": "Budi Harahap", "sex": "MALE", "birthDate": born.isoformat(), "relation": "HEAD",
                         "nik": nik(kec, born, female=False, serial=serial)}]}


async def test_concurrent_replays_of_one_idempotency_key_create_one_row(
        live_services: Services, live_world: LiveWorld, live_engine: AsyncEngine) -> None:
    client = Client(live_services)
    fac = live_world.actor("fac_a1")
    created = await client.ok(REGISTER, {"input": household(live_world, 1)}, actor=fac)
    hid = created["registerHousehold"]["household"]["id"]
    file_input = {"householdId": hid, "sector": "HEALTH", "description": "Ibu sakit, belum punya KIS",
                  "idempotencyKey": f"tablet-{live_world.province}-42"}
    results = await asyncio.gather(*[client.ok(FILE, {"input": file_input}, actor=fac) for _ in range(8)])
    payloads = [r["fileComplaint"] for r in results]
    assert all(p["errors"] == [] for p in payloads)
    assert len({p["complaint"]["id"] for p in payloads}) == 1
    assert sorted(p["replayed"] for p in payloads) == [False] + [True] * 7
    async with live_engine.connect() as conn:
        region = live_world.code(".74.01.1001")
        complaints = await conn.scalar(select(func.count()).select_from(Complaint)
                                       .where(Complaint.region_code == region))
        events = await conn.scalar(select(func.count()).select_from(CaseEvent)
                                   .where(CaseEvent.region_code == region, CaseEvent.kind == "COMPLAINT_FILED"))
    assert (complaints, events) == (1, 1)


async def test_concurrent_registrations_of_one_family_card_store_one_household(
        live_services: Services, live_world: LiveWorld, live_engine: AsyncEngine) -> None:
    client = Client(live_services)
    actors = [live_world.actor("fac_a1"), live_world.actor("sup_a"), live_world.actor("manager")]
    results = await asyncio.gather(*[client.ok(REGISTER, {"input": household(live_world, 7)}, actor=a)
                                     for a in actors])
    codes = sorted(tuple(e["code"] for e in r["registerHousehold"]["errors"]) for r in results)
    assert codes.count(()) == 1
    assert all(c in {(), ("DUPLICATE_KK",)} for c in codes)
    async with live_engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(Household)
                                  .where(Household.region_code == live_world.code(".74.01.1001")))
    assert count == 1


async def test_concurrent_reassignments_exactly_one_wins(live_services: Services, live_world: LiveWorld) -> None:
    client = Client(live_services)
    fac = live_world.actor("fac_a1")
    hid = (await client.ok(REGISTER, {"input": household(live_world, 3)}, actor=fac))["registerHousehold"]
    filed = await client.ok(FILE, {"input": {"householdId": hid["household"]["id"], "sector": "FOOD",
                                             "description": "BPNT berhenti"}}, actor=fac)
    cid = filed["fileComplaint"]["complaint"]["id"]
    target = to_global_id("Staff", live_world.staff["fac_a1b"].id)
    supervisors = [live_world.actor("sup_a"), live_world.actor("manager")] * 3
    results = await asyncio.gather(*[client.ok(REASSIGN, {"input": {
        "id": cid, "expectedVersion": 1, "assigneeId": target, "reason": f"beban kerja {i}"}}, actor=s)
        for i, s in enumerate(supervisors)])
    outcomes = [tuple(e["code"] for e in r["reassignComplaint"]["errors"]) for r in results]
    assert outcomes.count(()) == 1
    assert sorted(outcomes)[1:] == [("STALE_VERSION",)] * 5
    winner = next(r for r in results if not r["reassignComplaint"]["errors"])
    assert winner["reassignComplaint"]["complaint"]["version"] == 2
