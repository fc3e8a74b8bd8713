"""Live intake end to end: real uvicorn processes, a real WebSocket client speaking graphql-transport-ws,
the Postgres and Redis fan-out backends, resume after a cursor, scope, dropped listener connections and
slow consumers."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.enums import DtksStatus, Relation, Sex
from domain.events import CaseEvent, write_events
from domain.households import service as households
from domain.households.models import Household
from server.context import Services
from tests.conftest import PASSWORD, LiveWorld, nik
from tests.support.servers import GraphQLWS, ServerProcess, StreamError, graphql, login

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("RUJUK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CASE_EVENTS = """subscription($after: String, $filter: CaseEventFilter) {
  caseEvents(after: $after, filter: $filter) { cursor kind regionCode complaintId }
}"""
INTAKE = """subscription($after: String) {
  intake(after: $after) { cursor kind regionCode complaint { id status sector priority slaState } household { id } }
}"""
REGISTER = """mutation($i: RegisterHouseholdInput!) { registerHousehold(input: $i) { household { id version }
  errors { code } } }"""
FILE = """mutation($i: FileComplaintInput!) { fileComplaint(input: $i) { complaint { id } errors { code } } }"""


def _redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False
    return True


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


def _pair(database_url: str, log_dir: Path, broadcast: str,
          **env: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    a = ServerProcess(database_url, log_dir, RUJUK_BROADCAST_URL=broadcast, RUJUK_EVENT_POLL_SECONDS="5", **env)
    b = ServerProcess(database_url, log_dir, RUJUK_BROADCAST_URL=broadcast, RUJUK_EVENT_POLL_SECONDS="5", **env)
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()
    for server in (a, b):
        assert "Traceback" not in server.output(), server.output()


@pytest.fixture(scope="module")
def pg_pair(live_database_url: str, log_dir: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    yield from _pair(live_database_url, log_dir, live_database_url.replace("postgresql+asyncpg", "postgresql"),
                     RUJUK_WS_INIT_TIMEOUT_SECONDS="1", RUJUK_MAX_SUBSCRIPTIONS_PER_SOCKET="3")


@pytest.fixture(scope="module")
def redis_pair(live_database_url: str, log_dir: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    if not _redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield from _pair(live_database_url, log_dir, REDIS_URL)


async def new_household(base: str, token: str, world: LiveWorld, desa: str, serial: int) -> str:
    kec = world.code(desa)[: len(world.code(".74.01"))]
    born = dt.date(1970, 1, 1) + dt.timedelta(days=serial)
    body = await graphql(base, REGISTER, {"i": {
        "regionCode": world.code(desa), "address": f"Jl. Asahan {serial}",
        "familyCards": [kec.replace(".", "") + f"0101{serial:06d}"],
        "members": [{"name": f"Warga {serial}", "sex": "MALE", "birthDate": born.isoformat(), "relation": "HEAD",
                     "nik": nik(kec, born, female=False, serial=serial)}]}}, token)
    assert body["data"]["registerHousehold"]["errors"] == [], body
    hid: str = body["data"]["registerHousehold"]["household"]["id"]
    return hid


async def file(base: str, token: str, household_id: str, sector: str = "HEALTH") -> str:
    body = await graphql(base, FILE, {"i": {"householdId": household_id, "sector": sector,
                                            "description": "Ibu sakit, belum punya KIS"}}, token)
    assert body["data"]["fileComplaint"]["errors"] == [], body
    cid: str = body["data"]["fileComplaint"]["complaint"]["id"]
    return cid


async def tokens(base: str, world: LiveWorld, *names: str) -> dict[str, str]:
    return {n: await login(base, world.staff[n].username, PASSWORD) for n in names}


@pytest.mark.parametrize("backend", ["pg_pair", "redis_pair"])
async def test_complaint_filed_on_one_process_reaches_a_subscriber_on_another_within_a_second(
        request: pytest.FixtureRequest, backend: str, live_world: LiveWorld) -> None:
    a, b = request.getfixturevalue(backend)
    t = await tokens(a.http, live_world, "fac_a1", "sup_a")
    hid = await new_household(a.http, t["fac_a1"], live_world, ".74.01.1001", 1)
    ws = await GraphQLWS.open(b.ws, t["sup_a"])
    try:
        await ws.subscribe("1", INTAKE)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        cid = await file(a.http, t["fac_a1"], hid)
        data = await ws.next_data(wait=3)
        elapsed = time.monotonic() - started
        assert data["intake"]["kind"] == "COMPLAINT_FILED"
        assert data["intake"]["complaint"]["id"] == cid
        assert data["intake"]["complaint"]["status"] == "NEW"
        assert elapsed < 1.0, f"delivery took {elapsed:.2f}s"
        # the account is now remembered: the next filing is one statement sent by the process's filing
        # transactions (server.filing_batches), which publish their events once committed
        started = time.monotonic()
        cid = await file(a.http, t["fac_a1"], hid)
        data = await ws.next_data(wait=3)
        assert data["intake"]["complaint"]["id"] == cid
        assert time.monotonic() - started < 1.0, f"delivery took {time.monotonic() - started:.2f}s"
    finally:
        await ws.close()


async def test_connection_handling_close_codes(pg_pair: tuple[ServerProcess, ServerProcess],
                                               live_world: LiveWorld) -> None:
    a, _ = pg_pair
    token = (await tokens(a.http, live_world, "sup_a"))["sup_a"]

    async def closed_with(ws: GraphQLWS) -> int | None:
        with pytest.raises(Exception):  # noqa: B017 - the socket closes, the recv raises
            await ws.receive(5)
        return ws.conn.close_code

    silent = await GraphQLWS.open(a.ws, init=False)
    assert await closed_with(silent) == 4408  # no connection_init in time
    early = await GraphQLWS.open(a.ws, init=False)
    await early.subscribe("1", INTAKE)
    assert await closed_with(early) == 4401  # subscribe before the ack
    bad = await GraphQLWS.open(a.ws, init=False)
    await bad.send({"type": "connection_init", "payload": {"authorization": "Bearer forged.token"}})
    assert await closed_with(bad) == 4403
    anonymous = await GraphQLWS.open(a.ws, init=False)
    await anonymous.send({"type": "connection_init", "payload": {}})
    assert await closed_with(anonymous) == 4403
    twice = await GraphQLWS.open(a.ws, token)
    await twice.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    assert await closed_with(twice) == 4429
    busy = await GraphQLWS.open(a.ws, token)
    for i in range(3):
        await busy.subscribe(str(i), INTAKE)
    await busy.subscribe("3", INTAKE)
    refused = await busy.receive(5)
    assert refused["type"] == "error" and refused["id"] == "3"
    await busy.close()
    legacy_refused = False
    try:
        from websockets.asyncio.client import connect

        async with connect(a.ws, subprotocols=["graphql-ws"]) as legacy:  # type: ignore[list-item]
            await legacy.recv()
    except Exception:  # noqa: BLE001 - the legacy protocol is refused at the handshake or closed
        legacy_refused = True
    assert legacy_refused


async def test_resume_after_a_cursor_replays_then_goes_live_without_gap_or_duplicate(
        pg_pair: tuple[ServerProcess, ServerProcess], live_world: LiveWorld) -> None:
    a, b = pg_pair
    t = await tokens(a.http, live_world, "fac_a1", "sup_a")
    hid = await new_household(a.http, t["fac_a1"], live_world, ".74.01.1001", 2)
    ws = await GraphQLWS.open(b.ws, t["sup_a"])
    await ws.subscribe("1", INTAKE)
    await asyncio.sleep(0.2)
    await file(a.http, t["fac_a1"], hid)
    first = (await ws.next_data())["intake"]
    await ws.close()
    missed = [await file(a.http, t["fac_a1"], hid, sector) for sector in ("FOOD", "EDUCATION", "PKH")]
    ws = await GraphQLWS.open(a.ws, t["sup_a"])
    try:
        await ws.subscribe("1", INTAKE, {"after": first["cursor"]})
        replayed = [(await ws.next_data())["intake"] for _ in missed]
        assert [r["complaint"]["id"] for r in replayed] == missed
        live = await file(b.http, t["fac_a1"], hid, "HOUSING")
        after_seam = (await ws.next_data())["intake"]
        assert after_seam["complaint"]["id"] == live
        cursors = [int(first["cursor"])] + [int(r["cursor"]) for r in replayed] + [int(after_seam["cursor"])]
        assert cursors == sorted(set(cursors))
        with pytest.raises(TimeoutError):
            await ws.next_data(wait=1.0)
    finally:
        await ws.close()


async def test_scope_each_role_receives_only_its_area(pg_pair: tuple[ServerProcess, ServerProcess],
                                                      live_world: LiveWorld) -> None:
    a, b = pg_pair
    names = ["fac_a1", "fac_b1", "sup_a", "sup_b", "manager"]
    t = await tokens(a.http, live_world, *names)
    sockets = {}
    for i, name in enumerate(names):
        sockets[name] = await GraphQLWS.open((a, b)[i % 2].ws, t[name])
        await sockets[name].subscribe("1", CASE_EVENTS)
    await asyncio.sleep(0.2)
    made = {
        ".74.01.1001": await new_household(a.http, t["fac_a1"], live_world, ".74.01.1001", 11),
        ".74.02.1001": await new_household(b.http, t["fac_b1"], live_world, ".74.02.1001", 12),
    }
    await file(a.http, t["fac_a1"], made[".74.01.1001"])
    await file(b.http, t["fac_b1"], made[".74.02.1001"])
    expected = {
        "fac_a1": {live_world.code(".74.01.1001")}, "fac_b1": {live_world.code(".74.02.1001")},
        "sup_a": {live_world.code(".74.01.1001")}, "sup_b": {live_world.code(".74.02.1001")},
        "manager": {live_world.code(".74.01.1001"), live_world.code(".74.02.1001")},
    }
    try:
        for name, ws in sockets.items():
            regions: list[str] = []
            while len(regions) < 2 * len(expected[name]):
                regions.append((await ws.next_data(wait=3))["caseEvents"]["regionCode"])
            assert set(regions) == expected[name], name
            with pytest.raises(TimeoutError):
                await ws.next_data(wait=0.5)
    finally:
        for ws in sockets.values():
            await ws.close()


# --- exactly once under concurrency -----------------------------------------------------------------------------


async def _writer(services: Services, world: LiveWorld, household_id: int, count: int, rng: random.Random) -> None:
    """Updates its own household ``count`` times, each transaction held open a random while after its
    change and before its commit, so transactions that began earlier often commit later."""
    actor = world.actor("manager")
    for i in range(count):
        async with services.sessionmaker() as session:
            async with session.begin():
                household = await households.get_household(session, actor=actor, household_id=household_id)
                await households.update_household(
                    session, actor=actor, household_id=household_id, expected_version=household.version,
                    changes=households.HouseholdChanges(address=f"Jl. Cengkeh No. {i}"))
                await asyncio.sleep(rng.uniform(0, 0.02))
                await write_events(session)


async def _follower(servers: tuple[ServerProcess, ...], token: str, start: int, until: int,
                    rng: random.Random) -> list[int]:
    """Subscribes, drops the socket at random points and resumes with the last cursor, until ``until``."""
    seen: list[int] = []
    cursor = start
    while cursor < until:
        ws = await GraphQLWS.open(rng.choice(servers).ws, token)
        try:
            await ws.subscribe("1", CASE_EVENTS, {"after": str(cursor)})
            for _ in range(rng.randint(20, 400)):
                try:
                    event = (await ws.next_data(wait=20))["caseEvents"]
                except StreamError as cut:  # told to resume: the cursor it names is the last one delivered
                    assert cut.code == "SLOW_CONSUMER"
                    assert int(cut.errors[0]["message"].split('"')[1]) == cursor
                    break
                seen.append(int(event["cursor"]))
                cursor = seen[-1]
                if cursor >= until:
                    break
        finally:
            await ws.close()
    return seen


async def test_exactly_once_in_cursor_order_with_concurrent_writers_and_random_resumes(
        pg_pair: tuple[ServerProcess, ServerProcess], live_world: LiveWorld, live_engine: AsyncEngine,
        live_services: Services) -> None:
    a, b = pg_pair
    rng = random.Random(20261123)
    async with live_services.sessionmaker() as session:
        ids = []
        for n, desa in enumerate([".74.01.1001", ".74.01.1002", ".74.02.1001"] * 3):
            kec = live_world.code(desa)[:-5]
            born = dt.date(1960, 1, 1) + dt.timedelta(days=n)
            made = await households.register_household(session, actor=live_world.actor("manager"),
                                                       cipher=live_services.cipher, data=households.HouseholdData(
                region_code=live_world.code(desa), address="Jl. Awal", dtks_status=DtksStatus.REGISTERED,
                family_cards=[kec.replace(".", "") + f"020202{n:04d}"],
                members=[households.MemberData(name="Kepala", sex=Sex.MALE, birth_date=born, relation=Relation.HEAD,
                                               nik=nik(kec, born, female=False, serial=500 + n))]))
            ids.append(made.household.id)
        await write_events(session)
        await session.commit()
        start = int(await session.scalar(select(CaseEvent.id).order_by(CaseEvent.id.desc()).limit(1)) or 0)
    t = await tokens(a.http, live_world, "sup_a", "sup_b", "manager")
    per_writer = 230
    await asyncio.gather(*[_writer(live_services, live_world, hid, per_writer, random.Random(i))
                           for i, hid in enumerate(ids)])
    async with live_engine.connect() as conn:
        rows = (await conn.execute(select(CaseEvent.id, CaseEvent.region_code).where(CaseEvent.id > start)
                                   .order_by(CaseEvent.id))).all()
    assert len(rows) == per_writer * len(ids)
    until = rows[-1].id
    scopes = {"sup_a": live_world.code(".74.01"), "sup_b": live_world.code(".74.02"),
              "manager": live_world.code(".74")}
    expected = {name: [r.id for r in rows if r.region_code.startswith(scope + ".")]
                for name, scope in scopes.items()}
    followers = {name: asyncio.create_task(_follower((a, b), t[name], start, expected[name][-1], rng))
                 for name in scopes}
    results = {name: await task for name, task in followers.items()}
    for name in scopes:
        assert results[name] == expected[name], name
    assert until == expected["manager"][-1]


# --- dropped listener connections ------------------------------------------------------------------------------


async def _deliveries(ws: GraphQLWS, n: int, wait: float) -> list[dict[str, Any]]:
    return [(await ws.next_data(wait=wait))["intake"] for _ in range(n)]


async def test_killing_the_postgres_listener_connection_loses_nothing(
        pg_pair: tuple[ServerProcess, ServerProcess], live_world: LiveWorld, live_database_url: str) -> None:
    a, b = pg_pair
    t = await tokens(a.http, live_world, "fac_a1", "sup_a")
    hid = await new_household(a.http, t["fac_a1"], live_world, ".74.01.1001", 21)
    ws = await GraphQLWS.open(b.ws, t["sup_a"])
    try:
        await ws.subscribe("1", INTAKE)
        await asyncio.sleep(0.2)
        before = await file(a.http, t["fac_a1"], hid)
        assert (await _deliveries(ws, 1, 3))[0]["complaint"]["id"] == before
        conn = await asyncpg.connect(live_database_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            killed = await conn.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                         "WHERE application_name = 'rujuk-listener'")
        finally:
            await conn.close()
        assert killed >= 2
        during = [await file(a.http, t["fac_a1"], hid, s) for s in ("FOOD", "EDUCATION", "HOUSING")]
        got = await _deliveries(ws, 3, 10)
        assert [g["complaint"]["id"] for g in got] == during
        await asyncio.sleep(1.0)
        after = await file(a.http, t["fac_a1"], hid, "PKH")
        started = time.monotonic()
        assert (await _deliveries(ws, 1, 5))[0]["complaint"]["id"] == after
        assert time.monotonic() - started < 1.0, "wake-ups did not come back after the reconnect"
    finally:
        await ws.close()
    assert "listener reconnected" in a.output() + b.output()


async def test_dropping_the_redis_connections_loses_nothing(redis_pair: tuple[ServerProcess, ServerProcess],
                                                            live_world: LiveWorld) -> None:
    import redis.asyncio as redis

    a, b = redis_pair
    t = await tokens(a.http, live_world, "fac_a1", "sup_a")
    hid = await new_household(a.http, t["fac_a1"], live_world, ".74.01.1001", 31)
    ws = await GraphQLWS.open(b.ws, t["sup_a"])
    try:
        await ws.subscribe("1", INTAKE)
        await asyncio.sleep(0.2)
        await file(a.http, t["fac_a1"], hid)
        await _deliveries(ws, 1, 3)
        admin = redis.Redis.from_url(REDIS_URL)
        await admin.client_kill_filter(_type="pubsub")
        await admin.aclose()
        during = [await file(a.http, t["fac_a1"], hid, s) for s in ("FOOD", "EDUCATION")]
        got = await _deliveries(ws, 2, 10)
        assert [g["complaint"]["id"] for g in got] == during
        await asyncio.sleep(1.0)
        after = await file(a.http, t["fac_a1"], hid, "PKH")
        started = time.monotonic()
        assert (await _deliveries(ws, 1, 5))[0]["complaint"]["id"] == after
        assert time.monotonic() - started < 1.0
    finally:
        await ws.close()
    assert "listener reconnected" in a.output() + b.output()


# --- slow consumers -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_queue_server(live_database_url: str, log_dir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(live_database_url, log_dir, RUJUK_SUBSCRIBER_QUEUE_SIZE="20",
                           RUJUK_EVENT_POLL_SECONDS="0.5")
    server.start()
    yield server
    server.stop()


async def _burst(services: Services, world: LiveWorld, household_id: int, transactions: int, per: int) -> None:
    actor = world.actor("manager")
    for _ in range(transactions):
        async with services.sessionmaker() as session, session.begin():
            for _ in range(per):
                h = await households.get_household(session, actor=actor, household_id=household_id)
                await households.update_household(session, actor=actor, household_id=household_id,
                                                  expected_version=h.version,
                                                  changes=households.HouseholdChanges(address=f"Jl. {h.version}"))
            await write_events(session)


async def test_a_slow_consumer_is_told_to_resume_and_memory_stays_bounded(
        small_queue_server: ServerProcess, live_world: LiveWorld, live_services: Services) -> None:
    server = small_queue_server
    t = await tokens(server.http, live_world, "fac_a1", "sup_a")
    hid_gid = await new_household(server.http, t["fac_a1"], live_world, ".74.01.1001", 41)
    async with live_services.sessionmaker() as session:
        hid = int(await session.scalar(select(Household.id).where(Household.address == "Jl. Asahan 41")) or 0)
    assert hid and hid_gid
    ws = await GraphQLWS.open(server.ws, t["sup_a"])
    rss_before = server.rss_kib()
    try:
        await ws.subscribe("1", CASE_EVENTS)
        await asyncio.sleep(0.3)
        await _burst(live_services, live_world, hid, transactions=1, per=100)  # one batch of 100 > queue of 20
        with pytest.raises(StreamError) as cut:
            while True:
                await ws.next_data(wait=5)
        assert cut.value.code == "SLOW_CONSUMER"
        resume_after = cut.value.errors[0]["message"].split('"')[1]
    finally:
        await ws.close()
    async with live_services.sessionmaker() as session:
        expected = list(await session.scalars(select(CaseEvent.id).where(
            CaseEvent.id > int(resume_after), CaseEvent.household_id == hid).order_by(CaseEvent.id)))
    assert expected, "the cut-off subscriber missed events that it must now catch up on"
    ws = await GraphQLWS.open(server.ws, t["sup_a"])
    try:
        await ws.subscribe("1", CASE_EVENTS, {"after": resume_after})
        cursors = [int((await ws.next_data())["caseEvents"]["cursor"]) for _ in expected]
    finally:
        await ws.close()
    assert cursors == expected
    # a subscriber that stops reading altogether: the server buffers at most its queue per subscriber
    stalled = await GraphQLWS.open(server.ws, t["sup_a"])
    try:
        await stalled.subscribe("1", CASE_EVENTS)
        await asyncio.sleep(0.3)
        await _burst(live_services, live_world, hid, transactions=30, per=50)
        await asyncio.sleep(2)
        grown = server.rss_kib() - rss_before
        assert grown < 40_000, f"server grew by {grown} KiB"
    finally:
        await stalled.close()


async def test_graceful_shutdown_closes_sockets_with_a_reconnect_code(live_database_url: str, log_dir: Path,
                                                                      live_world: LiveWorld) -> None:
    server = ServerProcess(live_database_url, log_dir).start()
    try:
        token = (await tokens(server.http, live_world, "sup_a"))["sup_a"]
        ws = await GraphQLWS.open(server.ws, token)
        await ws.subscribe("1", INTAKE)
        await asyncio.sleep(0.2)
        server.stop()
        with pytest.raises(Exception):  # noqa: B017 - the socket is closed by the server
            await ws.receive(10)
        assert ws.conn.close_code in {1001, 1012}
    finally:
        server.stop()


async def test_no_session_is_left_open(pg_pair: tuple[ServerProcess, ServerProcess], live_database_url: str,
                                       live_world: LiveWorld) -> None:
    """After all the subscribing, dropping and resuming above, and while subscribers sit waiting for their next
    event, no server holds a transaction (or a pooled connection) open."""
    a, b = pg_pair
    t = await tokens(a.http, live_world, "fac_a1", "sup_a")
    hid = await new_household(a.http, t["fac_a1"], live_world, ".74.01.1001", 51)
    waiting = []
    for server in (a, b):
        for query in (INTAKE, CASE_EVENTS, "subscription { workloadChanged { entries { open staff { fullName } } } }"):
            ws = await GraphQLWS.open(server.ws, t["sup_a"])
            await ws.subscribe("1", query)
            waiting.append(ws)
    await asyncio.sleep(0.3)
    await file(a.http, t["fac_a1"], hid)
    for ws in waiting:
        await ws.next_data(wait=5)
    await asyncio.sleep(1.5)
    conn = await asyncpg.connect(live_database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        stuck = await conn.fetch("SELECT pid, left(query, 80) AS query FROM pg_stat_activity "
                                 "WHERE application_name = 'rujuk' AND state = 'idle in transaction' "
                                 "AND state_change < now() - interval '1 second'")
    finally:
        await conn.close()
        for ws in waiting:
            await ws.close()
    assert [dict(r) for r in stuck] == []
