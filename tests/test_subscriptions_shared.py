"""Shared subscription streams, end to end on one real uvicorn process: sockets on the same document share one
execution per event, yet each gets only what its actor may see, every event exactly once, and a resumed
socket joins the shared stream after its replay without a gap or a duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.enums import Role
from domain.staff.models import Staff
from domain.staff.tokens import TokenSigner
from schema.relay import to_global_id
from server import db
from server.settings import DEV_SECRET_KEY
from tests.conftest import PASSWORD_HASH, LiveWorld
from tests.support.servers import GraphQLWS, ServerProcess, StreamError, graphql
from tests.test_subscriptions import file, new_household

pytestmark = pytest.mark.e2e

WATCH = """subscription($after: String) {
  caseEvents(after: $after) { cursor kind regionCode household { address members { name } } }
}"""
CREATE_KEY = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id } secret errors { code } } }"""


@pytest.fixture(scope="module")
def server(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(live_database_url, tmp_path_factory.mktemp("shared"),
                            RUJUK_MAX_SUBSCRIPTIONS_PER_SOCKET="5", RUJUK_EVENT_POLL_SECONDS="5")
    process.start()
    try:
        yield process
    finally:
        process.stop()
    assert "Traceback" not in process.output(), process.output()


async def _tokens(world: LiveWorld, live_engine: AsyncEngine) -> dict[str, str]:
    """Access tokens for the district's staff, an admin and a partner of the kabupaten (signed as the test
    server signs them)."""
    p = world.province
    extra = {"admin": Staff(username=f"p{p}-admin", password_hash=PASSWORD_HASH, full_name="Admin",
                            role=Role.ADMIN.value, region_code=None),
             "partner": Staff(username=f"p{p}-partner", password_hash=PASSWORD_HASH, full_name="BPJS",
                              role=Role.PARTNER.value, region_code=f"{p}.74")}
    async with db.make_sessionmaker(live_engine)() as session, session.begin():
        session.add_all(extra.values())
    ids = {name: s.id for name, s in world.staff.items()} | {name: s.id for name, s in extra.items()}
    signer = TokenSigner(DEV_SECRET_KEY, access_ttl=600, refresh_ttl=3600)
    return {name: signer.issue(i, "access") for name, i in ids.items()} | {"partner_id": str(ids["partner"])}


async def _partner_secret(server: ServerProcess, tokens: dict[str, str]) -> str:
    partner = to_global_id("Staff", int(tokens["partner_id"]))
    body = await graphql(server.http, CREATE_KEY, {"i": {"partnerId": partner, "name": "shared stream test"}},
                         tokens["admin"])
    assert body["data"]["createApiKey"]["errors"] == [], body
    secret: str = body["data"]["createApiKey"]["secret"]
    return secret


async def _counters(server: ServerProcess) -> dict[str, float]:
    """The shared streams' counters from /metrics: results executed, and results sent to sockets."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{server.http}/metrics")).text
    names = {"rujuk_shared_subscription_results_total": "results", "rujuk_shared_subscription_sends_total": "sends"}
    return {names[line.split()[0]]: float(line.split()[1]) for line in text.splitlines()
            if line.split(" ")[0] in names}


async def _events(ws: GraphQLWS, count: int) -> list[dict[str, Any]]:
    return [(await ws.next_data(wait=5))["caseEvents"] for _ in range(count)]


async def _nothing_more(*sockets: GraphQLWS) -> None:
    for ws in sockets:
        with pytest.raises(TimeoutError):
            await ws.next_data(wait=0.5)


async def test_same_document_different_scopes_and_grants_each_see_only_their_share(
        server: ServerProcess, live_world: LiveWorld, live_engine: AsyncEngine) -> None:
    """Supervisors of two kecamatan, the manager of the kabupaten and a partner without the personal-data grant
    subscribe to the same document (two sockets each for the supervisors): each receives the events of its
    area only, and the partner's copies are masked while the others' are not."""
    t = await _tokens(live_world, live_engine)
    partner = await _partner_secret(server, t)
    sockets: dict[str, list[GraphQLWS]] = {}
    for name, token in [("sup_a", t["sup_a"]), ("sup_a", t["sup_a"]), ("sup_a2", t["sup_a2"]), ("sup_b", t["sup_b"]),
                        ("sup_b", t["sup_b"]), ("manager", t["manager"]), ("partner", partner)]:
        ws = await GraphQLWS.open(server.ws, token)
        await ws.subscribe("1", WATCH)
        sockets.setdefault(name, []).append(ws)
    try:
        await asyncio.sleep(0.3)
        in_a = await new_household(server.http, t["fac_a1"], live_world, ".74.01.1001", 301)
        in_b = await new_household(server.http, t["fac_b1"], live_world, ".74.02.1001", 302)
        await file(server.http, t["fac_a1"], in_a)
        await file(server.http, t["fac_b1"], in_b)
        a, b = live_world.code(".74.01.1001"), live_world.code(".74.02.1001")
        expected = {"sup_a": [a, a], "sup_a2": [a, a], "sup_b": [b, b], "manager": [a, b, a, b],
                    "partner": [a, b, a, b]}
        for name, group in sockets.items():
            for ws in group:
                events = await _events(ws, len(expected[name]))
                assert [e["regionCode"] for e in events] == expected[name], name
                cursors = [int(e["cursor"]) for e in events]
                assert cursors == sorted(set(cursors)), name
                for event in events:
                    household = event["household"]
                    if name == "partner":
                        assert household["address"] is None
                        assert all(m["name"] != "Warga 301" and m["name"] != "Warga 302"
                                   for m in household["members"])
                    else:
                        assert household["address"].startswith("Jl. Asahan 30")
                        assert {m["name"] for m in household["members"]} <= {"Warga 301", "Warga 302"}
        await _nothing_more(*(ws for group in sockets.values() for ws in group))
    finally:
        for group in sockets.values():
            for ws in group:
                await ws.close()


async def test_many_sockets_on_one_document_each_get_every_event_exactly_once(
        server: ServerProcess, live_world: LiveWorld, live_engine: AsyncEngine, live_database_url: str) -> None:
    """Forty sockets of one supervisor (two subscriptions on some, one of them resumed from a cursor while the
    events flow) all receive every event of the area once, in cursor order."""
    t = await _tokens(live_world, live_engine)
    hid = await new_household(server.http, t["fac_a1"], live_world, ".74.01.1001", 311)
    sockets = [await GraphQLWS.open(server.ws, t["sup_a"]) for _ in range(40)]
    counted = await _counters(server)
    try:
        for i, ws in enumerate(sockets):
            await ws.subscribe("1", WATCH)
            if i % 10 == 0:
                await ws.subscribe("2", WATCH)
        await asyncio.sleep(0.3)
        filed = [await file(server.http, t["fac_a1"], hid) for _ in range(3)]
        conn = await asyncpg.connect(live_database_url.replace("postgresql+asyncpg", "postgresql"))
        try:  # the event before the three complaints: the household's registration
            before = await conn.fetchval("SELECT id FROM case_events WHERE region_code LIKE $1 ORDER BY id DESC "
                                         "LIMIT 1 OFFSET 3", live_world.province + ".%")
        finally:
            await conn.close()
        writes = asyncio.gather(*(file(server.http, t["fac_a1"], hid) for _ in range(5)))
        late = await GraphQLWS.open(server.ws, t["sup_a"])
        sockets.append(late)
        await late.subscribe("1", WATCH, {"after": str(before)})  # replays the first three while more are filed
        filed += await writes
        per_stream: list[list[int]] = []
        for ws in sockets:
            streams: dict[str, list[int]] = {}
            subscriptions = 2 if ws in sockets[:40:10] else 1
            while sum(len(c) for c in streams.values()) < (len(filed) * subscriptions):
                message = await ws.receive(5)
                if message["type"] == "next":
                    assert not message["payload"].get("errors"), message
                    event = message["payload"]["data"]["caseEvents"]
                    streams.setdefault(message["id"], []).append(int(event["cursor"]))
            per_stream += streams.values()
        assert len(per_stream) == 40 + 4 + 1
        for cursors in per_stream:
            assert cursors == sorted(set(cursors))
            assert len(cursors) == len(filed)
        assert all(cursors == per_stream[0] for cursors in per_stream)
        await _nothing_more(*sockets)
        after = await _counters(server)
        # one execution per event for 45 subscriptions, plus the late socket's replay (the first three, and any
        # filed while it joined)
        assert after["sends"] - counted["sends"] == 45 * len(filed)
        assert len(filed) + 3 <= after["results"] - counted["results"] <= 2 * len(filed)
    finally:
        for ws in sockets:
            await ws.close()


async def test_a_socket_that_completes_leaves_the_others_streaming(
        server: ServerProcess, live_world: LiveWorld, live_engine: AsyncEngine) -> None:
    t = await _tokens(live_world, live_engine)
    hid = await new_household(server.http, t["fac_a1"], live_world, ".74.01.1001", 321)
    first = await GraphQLWS.open(server.ws, t["sup_a"])
    second = await GraphQLWS.open(server.ws, t["sup_a"])
    try:
        await first.subscribe("1", WATCH)
        await second.subscribe("1", WATCH)
        await asyncio.sleep(0.3)
        await file(server.http, t["fac_a1"], hid)
        assert (await first.next_data())["caseEvents"]["kind"] == "COMPLAINT_FILED"
        assert (await second.next_data())["caseEvents"]["kind"] == "COMPLAINT_FILED"
        await first.send({"id": "1", "type": "complete"})
        await first.subscribe("1", WATCH)  # the id is free again
        await asyncio.sleep(0.3)
        await file(server.http, t["fac_a1"], hid)
        assert (await first.next_data())["caseEvents"]["kind"] == "COMPLAINT_FILED"
        assert (await second.next_data())["caseEvents"]["kind"] == "COMPLAINT_FILED"
        await first.close()
        await file(server.http, t["fac_a1"], hid)
        assert (await second.next_data())["caseEvents"]["kind"] == "COMPLAINT_FILED"
    finally:
        await first.close()
        await second.close()


async def test_an_invalid_region_ends_every_sharer_with_its_error(
        server: ServerProcess, live_world: LiveWorld, live_engine: AsyncEngine) -> None:
    t = await _tokens(live_world, live_engine)
    query = "subscription($r: String) { intake(regionCode: $r) { cursor } }"
    sockets = [await GraphQLWS.open(server.ws, t["sup_a"]) for _ in range(3)]
    try:
        for ws in sockets:
            await ws.subscribe("7", query, {"r": "not-a-region"})
        for ws in sockets:
            with pytest.raises(StreamError) as ended:
                await ws.next_data()
            assert ended.value.code == "INVALID_REGION_CODE"
            assert (await ws.receive())["type"] == "complete"
    finally:
        for ws in sockets:
            await ws.close()


async def test_personal_data_in_a_shared_result_is_audited_for_every_actor_it_reached(
        server: ServerProcess, live_world: LiveWorld, live_engine: AsyncEngine, live_database_url: str) -> None:
    """Two supervisors of the same kecamatan share the stream of a document that shows NIKs: each of them gets
    its own READ_PERSONAL_DATA audit entry for the member shown."""
    t = await _tokens(live_world, live_engine)
    query = "subscription { caseEvents { cursor kind household { members { nik } } } }"
    sockets = {name: await GraphQLWS.open(server.ws, t[name]) for name in ("sup_a", "sup_a2")}
    try:
        for ws in sockets.values():
            await ws.subscribe("1", query)
        await asyncio.sleep(0.3)
        await new_household(server.http, t["fac_a1"], live_world, ".74.01.1001", 331)
        for ws in sockets.values():
            event = (await ws.next_data())["caseEvents"]
            assert event["kind"] == "HOUSEHOLD_REGISTERED"
            assert len(event["household"]["members"][0]["nik"]) == 16
        await asyncio.sleep(0.5)
    finally:
        for ws in sockets.values():
            await ws.close()
    conn = await asyncpg.connect(live_database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        readers = await conn.fetch("SELECT actor_id, origin FROM audit_log WHERE action = 'READ_PERSONAL_DATA' "
                                   "AND actor_id = ANY($1::bigint[])",
                                   [live_world.staff["sup_a"].id, live_world.staff["sup_a2"].id])
    finally:
        await conn.close()
    assert sorted(r["actor_id"] for r in readers) == sorted([live_world.staff["sup_a"].id,
                                                               live_world.staff["sup_a2"].id])
    assert all(r["origin"] == "127.0.0.1" for r in readers)
