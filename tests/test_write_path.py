"""The statements one intake mutation sends to PostgreSQL, in a transaction that really commits: every round
trip on this path costs intake throughput, so one more is a regression to decide on, not an accident."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from server.context import Services
from tests.conftest import Client, LiveWorld, Published, nik

REGISTER = """
mutation($input: RegisterHouseholdInput!) {
  registerHousehold(input: $input) { household { id } errors { code } }
}"""
FILE = """
mutation($input: FileComplaintInput!) {
  fileComplaint(input: $input) { replayed complaint { id status slaDueAt createdAt } errors { code } }
}"""


def _kind(sql: str) -> str:
    """``INSERT complaints``, ``SELECT households``, ``SELECT pg_advisory_xact_lock``, ``SAVEPOINT`` ..."""
    words = sql.split()
    verb = words[0].upper()
    if verb == "INSERT":
        return f"INSERT {words[2]}"
    if verb == "UPDATE":
        return f"UPDATE {words[1]}"
    if verb == "SELECT":
        table = re.search(r"\bFROM (\w+)", sql)
        return f"SELECT {table.group(1) if table else words[1].split('(')[0]}"
    return verb


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The kind of every statement the engine sends meanwhile, with the transactions' BEGIN and COMMIT."""
    seen: list[str] = []
    listeners: list[tuple[str, Any]] = [
        ("before_cursor_execute", lambda conn, cursor, sql, *rest: seen.append(_kind(sql))),
        ("begin", lambda conn: seen.append("BEGIN")),
        ("commit", lambda conn: seen.append("COMMIT")),
        ("rollback", lambda conn: seen.append("ROLLBACK")),
    ]
    for name, listener in listeners:
        event.listen(engine.sync_engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine.sync_engine, name, listener)


async def test_file_complaint_statements(live_services: Services, live_world: LiveWorld, live_engine: AsyncEngine,
                                         published: Published) -> None:
    client = Client(live_services)
    fac = live_world.actor("fac_a1")
    born, kec = dt.date(1979, 4, 5), live_world.code(".74.01")
    registered = await client.ok(REGISTER, {"input": {
        "regionCode": live_world.code(".74.01.1001"), "address": "Jl. Mesjid No. 1",
        "familyCards": [f"{kec.replace('.', '')}0504790001"],
        "members": [{"name": "Budi Harahap", "sex": "MALE", "birthDate": born.isoformat(), "relation": "HEAD",
                     "nik": nik(kec, born, female=False, serial=1)}]}}, actor=fac)
    data = {"householdId": registered["registerHousehold"]["household"]["id"], "sector": "HEALTH",
            "description": "Ibu sakit, belum punya KIS", "idempotencyKey": f"tablet-{live_world.province}-1"}

    with statements(live_engine) as seen:
        out = await client.ok(FILE, {"input": data}, actor=fac)
    assert out["fileComplaint"]["errors"] == [] and out["fileComplaint"]["replayed"] is False
    assert out["fileComplaint"]["complaint"]["createdAt"] is not None
    # authentication (the boundary's) is not part of it: the actor is given
    assert seen == [
        "BEGIN",
        "INSERT idempotency_keys",      # claim the key; reserves the complaint's id as its result
        "SELECT households",            # the household, within the actor's area
        "INSERT complaints",            # RETURNING the server's defaults: no read back
        "INSERT assignments",           # the facilitator who filed it holds it
        "SELECT pg_advisory_xact_lock",  # at commit: event ids in commit order
        "UPDATE complaints",            # updated_at in commit order
        "INSERT case_events",
        "INSERT audit_log",             # the operation's CHANGE entry
        "COMMIT",
    ], seen
    assert len(published.batches[-1]) == 1

    with statements(live_engine) as seen:
        again = await client.ok(FILE, {"input": data}, actor=fac)
    assert again["fileComplaint"]["replayed"] is True
    assert again["fileComplaint"]["complaint"]["id"] == out["fileComplaint"]["complaint"]["id"]
    # the claim finds the key and counts the attempt in the same statement
    assert seen == ["BEGIN", "INSERT idempotency_keys", "SELECT complaints", "COMMIT"], seen
