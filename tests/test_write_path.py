"""The statements one intake mutation sends to PostgreSQL, in a transaction that really commits: every round
trip on this path costs intake throughput, so one more is a regression to decide on, not an accident."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.events import Change, EventKind, append_event, write_events
from schema.relay import pk_of
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
    """``INSERT complaints``, ``SELECT households``, ``SAVEPOINT`` ...; a statement
    with data-modifying CTEs is its changes in order: ``INSERT complaints + INSERT assignments``."""
    words = sql.split()
    verb = words[0].upper()
    if verb == "WITH":
        return " + ".join(f"INSERT {m[0]}" if m[0] else f"UPDATE {m[1]}"
                          for m in re.findall(r"\bINSERT INTO (\w+)|\bUPDATE (\w+) SET", sql))
    if verb == "INSERT":
        return f"INSERT {words[2]}"
    if verb == "UPDATE":
        return f"UPDATE {words[1]}"
    if verb == "SELECT":
        table = re.search(r"\bFROM (\w+)", sql)
        return f"SELECT {table.group(1) if table else words[1].split('(')[0]}"
    return verb


async def register(client: Client, world: LiveWorld, fac: Any, *, name: str, female: bool, born: dt.date,
                   serial: int, address: str) -> str:
    """A household of one head in the world's first village; its global id."""
    kec = world.code(".74.01")
    registered = await client.ok(REGISTER, {"input": {
        "regionCode": world.code(".74.01.1001"), "address": address,
        "familyCards": [f"{kec.replace('.', '')}{born:%d%m%y}{serial:04d}"],
        "members": [{"name": name, "sex": "FEMALE" if female else "MALE", "birthDate": born.isoformat(),
                     "relation": "HEAD", "nik": nik(kec, born, female=female, serial=serial)}]}}, actor=fac)
    gid: str = registered["registerHousehold"]["household"]["id"]
    return gid


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
    household = await register(client, live_world, fac, name="Budi Harahap", female=False,
                               born=dt.date(1979, 4, 5), serial=1, address="Jl. Mesjid No. 1")
    data = {"householdId": household, "sector": "HEALTH",
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
        # RETURNING the server's defaults, no read back; the facilitator who filed it holds it
        "INSERT complaints + INSERT assignments",
        # at commit, one statement that takes the event-order lock itself: event ids and updated_at in commit
        # order, the operation's CHANGE entry
        "UPDATE complaints + INSERT case_events + INSERT audit_log",
        "COMMIT",
    ], seen
    complaint_id = pk_of(out["fileComplaint"]["complaint"]["id"], "Complaint")
    async with live_engine.connect() as conn:
        event_id, region = (await conn.execute(text("SELECT id, region_code FROM case_events WHERE complaint_id = :c"),
                                               {"c": complaint_id})).one()
        for _ in range(100):  # published after the commit, in a task of its own
            if [(event_id, region)] in published.batches:
                break
            await asyncio.sleep(0.01)
        assert [(event_id, region)] in published.batches
        assert (await conn.execute(text(
            "SELECT from_staff_id, to_staff_id, by_staff_id, reason FROM assignments WHERE complaint_id = :c"),
            {"c": complaint_id})).all() == [(None, fac.id, fac.id, "filed")]
        written = (await conn.execute(text(
            "SELECT kind, region_code, complaint_id, actor_id, data FROM case_events WHERE id = :e"),
            {"e": event_id})).one()
        assert written[:4] == ("COMPLAINT_FILED", region, complaint_id, fac.id)
        assert written.data == {"status": "NEW", "sector": "HEALTH", "priority": "NORMAL", "assigneeId": fac.id,
                                "version": 1}
        # stamped under the lock (clock time), after the transaction began (the row's created_at)
        created, updated = (await conn.execute(text("SELECT created_at, updated_at FROM complaints WHERE id = :c"),
                                               {"c": complaint_id})).one()
        assert updated > created
        assert (await conn.execute(text(
            "SELECT actor_id, entity_type, entity_id, detail, origin FROM audit_log WHERE action = 'CHANGE' "
            "AND detail->'events' @> to_jsonb(CAST(:e AS bigint))"), {"e": event_id})).all() == [
            (fac.id, "Operation", None, {"operation": "fileComplaint", "events": [event_id]}, None)]

    with statements(live_engine) as seen:
        again = await client.ok(FILE, {"input": data}, actor=fac)
    assert again["fileComplaint"]["replayed"] is True
    assert again["fileComplaint"]["complaint"]["id"] == out["fileComplaint"]["complaint"]["id"]
    # the claim finds the key and counts the attempt in the same statement
    assert seen == ["BEGIN", "INSERT idempotency_keys", "SELECT complaints", "COMMIT"], seen


async def test_write_events_stamps_each_kind_and_audits_the_change(live_services: Services, live_world: LiveWorld,
                                                                   live_engine: AsyncEngine) -> None:
    """Several events of several kinds: ids in the order they were appended, every row they are about stamped, one
    CHANGE entry listing the ids with the actor and origin; nothing queued afterwards."""
    fac = live_world.actor("fac_a1")
    client = Client(live_services)
    household_id = pk_of(await register(client, live_world, fac, name="Siti Lubis", female=True,
                                        born=dt.date(1981, 2, 3), serial=2, address="Jl. Pasar No. 2"), "Household")
    region = live_world.code(".74.01.1001")
    async with live_services.sessionmaker() as session, session.begin():
        before = await session.scalar(select(func.clock_timestamp()))
        await append_event(session, kind=EventKind.HOUSEHOLD_UPDATED, actor=fac, region_code=region,
                           household_id=household_id, data={"version": 2})
        await append_event(session, kind=EventKind.MEMBER_ADDED, actor=None, region_code=region,
                           household_id=household_id)
        written = await write_events(session, change=Change("updateHousehold,addMember", fac, "10.1.2.3"))
        assert await write_events(session) == []
    assert [r for _, r in written] == [region, region]
    ids = [i for i, _ in written]
    assert ids == sorted(ids) and len(set(ids)) == 2
    async with live_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, kind, actor_id, data FROM case_events WHERE id = ANY(:ids) "
                                        "ORDER BY id"), {"ids": ids})).all()
        assert [tuple(r) for r in rows] == [(ids[0], "HOUSEHOLD_UPDATED", fac.id, {"version": 2}),
                                            (ids[1], "MEMBER_ADDED", None, {})]
        assert await conn.scalar(text("SELECT updated_at FROM households WHERE id = :h"), {"h": household_id}) > before
        assert (await conn.execute(text(
            "SELECT actor_id, detail, origin FROM audit_log WHERE action = 'CHANGE' AND detail->'events' @> "
            "to_jsonb(CAST(:e AS bigint))"), {"e": ids[0]})).all() == [
            (fac.id, {"operation": "updateHousehold,addMember", "events": ids}, "10.1.2.3")]


async def test_event_ids_and_stamps_follow_commit_order(live_services: Services, live_world: LiveWorld,
                                                       live_engine: AsyncEngine) -> None:
    """A second writer cannot draw an event id or stamp a row while the first has written its events and not yet
    committed: it waits on the event-order lock, so the transaction that commits later gets the higher id and the
    later ``updated_at``, even though it began first."""
    fac = live_world.actor("fac_a1")
    client = Client(live_services)
    household_id = pk_of(await register(client, live_world, fac, name="Rina Nasution", female=True,
                                        born=dt.date(1983, 6, 7), serial=3, address="Jl. Sawah No. 3"), "Household")
    region = live_world.code(".74.01.1001")

    async def write(session: Any, version: int) -> list[tuple[int, str]]:
        await append_event(session, kind=EventKind.HOUSEHOLD_UPDATED, actor=fac, region_code=region,
                           household_id=household_id, data={"version": version})
        return await write_events(session)

    async with live_services.sessionmaker() as late, live_services.sessionmaker() as early:
        await late.begin()
        await late.execute(select(1))  # the transaction that began first
        await early.begin()
        first = await write(early, 1)
        blocked = asyncio.create_task(write(late, 2))
        await asyncio.sleep(0.5)
        assert not blocked.done()  # waiting for the lock: no id drawn, no row stamped
        async with live_engine.connect() as conn:
            assert await conn.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")) >= 1
        stamp_early = await early.scalar(text("SELECT updated_at FROM households WHERE id = :h"), {"h": household_id})
        await early.commit()
        second = await asyncio.wait_for(blocked, 10)
        stamp_late = await late.scalar(text("SELECT updated_at FROM households WHERE id = :h"), {"h": household_id})
        await late.commit()
    assert second[0][0] > first[0][0]
    assert stamp_late > stamp_early


ADD_MEMBER = """
mutation($input: AddMemberInput!) {
  addMember(input: $input) { replayed member { id } errors { code } }
}"""


async def test_keyed_registration_and_new_member_record_their_key_in_the_claim(
        live_services: Services, live_world: LiveWorld, live_engine: AsyncEngine) -> None:
    """registerHousehold and addMember reserve their row's id in the claim, as fileComplaint does: no statement
    afterwards to record the key's result, and a replay answers with the same row."""
    client = Client(live_services)
    fac = live_world.actor("fac_a1")
    born, kec = dt.date(1985, 6, 7), live_world.code(".74.01")
    register = {"input": {
        "idempotencyKey": f"tablet-{live_world.province}-hh", "regionCode": live_world.code(".74.01.1001"),
        "address": "Jl. Sawah No. 3", "familyCards": [f"{kec.replace('.', '')}0706850003"],
        "members": [{"name": "Rahmat Nasution", "sex": "MALE", "birthDate": born.isoformat(), "relation": "HEAD",
                     "nik": nik(kec, born, female=False, serial=3)}]}}
    with statements(live_engine) as seen:
        first = await client.ok(REGISTER, register, actor=fac)
    assert "UPDATE idempotency_keys" not in seen and seen.count("INSERT idempotency_keys") == 1, seen
    again = await client.ok(REGISTER, register, actor=fac)
    assert again["registerHousehold"]["household"]["id"] == first["registerHousehold"]["household"]["id"]

    child = dt.date(2010, 8, 9)
    add = {"input": {"idempotencyKey": f"tablet-{live_world.province}-member",
                     "householdId": first["registerHousehold"]["household"]["id"],
                     "member": {"name": "Nur Nasution", "sex": "FEMALE", "birthDate": child.isoformat(),
                                "relation": "CHILD", "nik": nik(kec, child, female=True, serial=4)}}}
    with statements(live_engine) as seen:
        added = await client.ok(ADD_MEMBER, add, actor=fac)
    assert added["addMember"]["errors"] == [] and added["addMember"]["replayed"] is False
    assert "UPDATE idempotency_keys" not in seen and seen.count("INSERT idempotency_keys") == 1, seen
    replayed = await client.ok(ADD_MEMBER, add, actor=fac)
    assert replayed["addMember"]["replayed"] is True
    assert replayed["addMember"]["member"]["id"] == added["addMember"]["member"]["id"]
    async with live_engine.connect() as conn:
        keys = (await conn.execute(text(
            "SELECT operation, result_id, attempts FROM idempotency_keys WHERE actor_id = :a ORDER BY operation"),
            {"a": fac.id})).all()
    assert [tuple(k) for k in keys] == [
        ("addMember", pk_of(added["addMember"]["member"]["id"], "Member"), 2),
        ("registerHousehold", pk_of(first["registerHousehold"]["household"]["id"], "Household"), 2)]
