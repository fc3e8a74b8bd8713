"""Intake: complaints filed by concurrent facilitators, through rujuk's ``fileComplaint``, PostGraphile's plain
``createComplaint`` and, as the floor, rujuk's own filing statement (:mod:`domain.complaints.at_once`) run straight
on asyncpg: the same rows, checks and lock, with no HTTP, GraphQL or JSON answer around them."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from bench.client import Facilitator, Fixture, GraphQL
from bench.load import Failed, Measured, closed_loop
from domain.actor import Actor
from domain.complaints import at_once
from domain.complaints.service import ComplaintData
from domain.enums import SECTOR_SLA_DAYS, Channel, ComplaintKind, Priority, Role, Sector
from domain.events import EVENT_ORDER_LOCK
from resolvers.compiled import Statement
from schema.relay import to_global_id
from server.filing_batches import FilingBatches
from server.settings import Settings

DESCRIPTION = "Ibu menderita hipertensi, belum memiliki KIS/PBI-JK dan tidak sanggup berobat rutin ke puskesmas."
SLA = dt.timedelta(days=SECTOR_SLA_DAYS[Sector.HEALTH])

FILE_COMPLAINT = """
mutation($input: FileComplaintInput!) {
  fileComplaint(input: $input) { complaint { id status slaDueAt createdAt } replayed errors { code } }
}"""

CREATE_COMPLAINT = """
mutation($input: CreateComplaintInput!) {
  createComplaint(input: $input) { complaint { rowId status slaDueAt createdAt } }
}"""


def file_complaint_input(household_id: int) -> dict[str, Any]:
    return {"idempotencyKey": str(uuid.uuid4()), "householdId": to_global_id("Household", household_id),
            "sector": "HEALTH", "kind": "COMPLAINT", "channel": "FACILITATOR_VISIT", "priority": "NORMAL",
            "description": DESCRIPTION}


async def rujuk(client: GraphQL, fixture: Fixture, *, clients: int, duration: float, warmup: float) -> Measured:
    rng = random.Random(1)

    async def request(i: int) -> None:
        fac, hid, _ = fixture.household(rng, i)
        body = await client.post(FILE_COMPLAINT, {"input": file_complaint_input(hid)},
                                 token=fixture.tokens[fac.username])
        payload = (body.get("data") or {}).get("fileComplaint") or {}
        if body.get("errors") or payload.get("errors") or not payload.get("complaint"):
            raise Failed(str(body)[:300])

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)


async def postgraphile(client: GraphQL, fixture: Fixture, *, clients: int, duration: float,
                       warmup: float) -> Measured:
    """The same complaint through PostGraphile's generated mutation: the client supplies what rujuk derives
    (region, SLA window, status, assignee); no validation, scope check, idempotency or case event."""
    rng = random.Random(1)

    async def request(i: int) -> None:
        fac, hid, region = fixture.household(rng, i)
        now = dt.datetime.now(dt.UTC)
        complaint = {"householdId": str(hid), "regionCode": region, "kind": "COMPLAINT", "sector": "HEALTH",
                     "description": DESCRIPTION, "channel": "FACILITATOR_VISIT", "priority": "NORMAL",
                     "status": "NEW", "assigneeId": str(fac.id), "filedById": str(fac.id),
                     "slaStartedAt": now.isoformat(), "slaDueAt": (now + SLA).isoformat()}
        body = await client.post(CREATE_COMPLAINT, {"input": {"complaint": complaint}})
        if body.get("errors") or not ((body.get("data") or {}).get("createComplaint") or {}).get("complaint"):
            raise Failed(str(body)[:300])

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)


INSERT_COMPLAINT = """
INSERT INTO complaints (household_id, region_code, kind, sector, description, channel, priority, status,
                        assignee_id, filed_by_id, sla_started_at, sla_due_at)
VALUES ($1, $2, 'COMPLAINT', 'HEALTH', $3, 'FACILITATOR_VISIT', 'NORMAL', 'NEW', $4, $4, now(), now() + $5::interval)
RETURNING id, created_at"""
INSERT_ASSIGNMENT = ("INSERT INTO assignments (complaint_id, to_staff_id, by_staff_id, reason) "
                     "VALUES ($1, $2, $2, 'filed')")
INSERT_IDEMPOTENCY = ("INSERT INTO idempotency_keys (actor_id, key, operation, result_id) "
                      "VALUES ($1, $2, 'fileComplaint', $3)")
INSERT_EVENT = ("INSERT INTO case_events (kind, region_code, household_id, complaint_id, actor_id, data) "
                "VALUES ('COMPLAINT_FILED', $1, $2, $3, $4, $5::jsonb)")


async def write_complaint(conn: asyncpg.Connection, *, facilitator: int, household: int, region: str,
                          notify: str | None = None) -> tuple[int, dt.datetime]:
    """What ``fileComplaint`` writes, as plain SQL in one transaction: the complaint, its first assignment,
    the idempotency record and the case event (under the event-order lock), optionally ``pg_notify``; returns
    the complaint's id and ``created_at``."""
    async with conn.transaction():
        row = await conn.fetchrow(INSERT_COMPLAINT, household, region, DESCRIPTION, facilitator, SLA)
        complaint: int = row["id"]
        await conn.execute(INSERT_ASSIGNMENT, complaint, facilitator)
        await conn.execute(INSERT_IDEMPOTENCY, facilitator, str(uuid.uuid4()), complaint)
        await conn.execute("SELECT pg_advisory_xact_lock($1)", EVENT_ORDER_LOCK)
        data = {"status": "NEW", "sector": "HEALTH", "priority": "NORMAL", "assigneeId": facilitator, "version": 1}
        await conn.execute(INSERT_EVENT, region, household, complaint, facilitator, json.dumps(data))
        if notify is not None:
            await conn.execute("SELECT pg_notify($1, $2)", notify, str(complaint))
    return complaint, row["created_at"]


def _actor(fac: Facilitator) -> Actor:
    """The facilitator as rujuk's services see it (its scope: the villages of its households)."""
    return Actor(id=fac.id, role=Role.FACILITATOR, username=fac.username,
                 regions=tuple(sorted({code for _, code in fac.households})))


LOCK = f"pg_advisory_xact_lock({EVENT_ORDER_LOCK})"


def _given(fixture: Fixture, actors: dict[int, Actor], rng: random.Random, i: int) -> at_once.Given:
    fac, hid, _ = fixture.household(rng, i)
    data = ComplaintData(household_id=hid, kind=ComplaintKind.COMPLAINT, sector=Sector.HEALTH,
                         description=DESCRIPTION, channel=Channel.FACILITATOR_VISIT, priority=Priority.NORMAL)
    given = at_once.given(actors[fac.id], data, idempotency_key=str(uuid.uuid4()), origin="127.0.0.1",
                          confirm=None, operation="fileComplaint")
    assert given is not None
    return given


async def grouped_floor(database_url: str, fixture: Fixture, *, clients: int, duration: float,
                        warmup: float) -> Measured:
    """The floor: ``fileComplaint``'s statements for the same input, grouped into transactions as rujuk groups
    them (:mod:`server.filing_batches`, its defaults), straight on asyncpg (through SQLAlchemy's pool, pool of
    20 like one rujuk worker), without the account check, HTTP, GraphQL or the JSON answer."""
    rng = random.Random(1)
    actors = {fac.id: _actor(fac) for fac in fixture.facilitators}
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=20)
    defaults = Settings()
    batches = FilingBatches(engine, size=defaults.filing_batch_size, transactions=defaults.filing_transactions)

    async def request(i: int) -> None:
        statement = Statement(sql="", params=[], confirms=False, writes=True, filing=_given(fixture, actors, rng, i),
                              payload="json_build_object('id', complaints.id)")
        if (await batches.file(statement))[2] is None:
            raise Failed("the filing statement wrote nothing")

    try:
        return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)
    finally:
        await engine.dispose()


async def floor(pool: asyncpg.Pool, fixture: Fixture, *, clients: int, duration: float, warmup: float,
                unordered: bool = False) -> Measured:
    """``fileComplaint``'s statement for the same input, each filing its own transaction, without the account
    check (the account is given): how rujuk filed before it grouped filings. ``unordered``: also without the
    event-order lock, to measure what the commit-order guarantee costs when each filing commits alone (event ids
    and stamps could then commit out of order: never what rujuk runs)."""
    rng = random.Random(1)
    actors = {fac.id: _actor(fac) for fac in fixture.facilitators}

    async def request(i: int) -> None:
        filing = at_once.together([_given(fixture, actors, rng, i)])
        assert LOCK in filing.with_
        sql = filing.with_ + "SELECT written.id FROM written"
        if unordered:
            sql = sql.replace(LOCK, "NULL::void")
        async with pool.acquire() as conn:
            if await conn.fetchval(sql, *filing.params) is None:
                raise Failed("the filing statement wrote nothing")

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)
