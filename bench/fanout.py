"""Fan-out: N supervisor consoles subscribed to ``intake`` over graphql-transport-ws while a writer files
complaints at a steady rate; delivery latency, and server memory per idle subscription. The floor is one
PostgreSQL LISTEN/NOTIFY hop (asyncpg) at the same rate.

Commit-to-delivery is bracketed by clocks (wall time, one machine): after the complaint's ``createdAt``
(the transaction's start, so an upper bound that includes the mutation's own work up to COMMIT, queueing for a
busy worker included), after its ``updated_at`` as stamped under the event-order lock right before COMMIT (read
back from the database after the run: the tightest upper bound), and after the mutation's HTTP response
arrived (a lower bound: the push may beat the response, then it is negative).

Consoles watch the kecamatan of one kabupaten (round robin), as the supervisors of a district do; the
writer files in that kabupaten as its facilitators, so each complaint is due at every console watching
its kecamatan."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import gc
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from bench import ws
from bench.client import Fixture, GraphQL
from bench.dataset import plain_url
from bench.intake import FILE_COMPLAINT, file_complaint_input, write_complaint
from bench.load import paced, percentile
from bench.servers import Rujuk

INTAKE = "subscription($region: String) { intake(regionCode: $region) { cursor kind complaintId } }"


@dataclass(slots=True)
class Deliveries:
    """When each complaint reached each console (wall-clock seconds); ``complete`` is set once ``expect``'s
    count has arrived."""

    at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    count: int = 0
    target: int | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, key: str, at: float) -> None:
        self.at[key].append(at)
        self.count += 1
        self._check()

    def expect(self, target: int) -> None:
        self.target = target
        self._check()

    def _check(self) -> None:
        if self.target is not None and self.count >= self.target:
            self.complete.set()

    async def wait(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.complete.wait(), within)


class Console:
    """A graphql-transport-ws client (``connection_init``, ``subscribe``, answers pings) recording deliveries,
    on the lean client of :mod:`bench.ws`."""

    def __init__(self, region: str, deliveries: Deliveries) -> None:
        self.region = region
        self.deliveries = deliveries
        self.conn: ws.Connection | None = None
        self.acked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, url: str, token: str, region: str, deliveries: Deliveries) -> Console:
        console = cls(region, deliveries)
        console.conn = conn = await ws.connect(url, "graphql-transport-ws", console._on_message)
        conn.send(orjson.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}).decode())
        ack = await asyncio.wait_for(console.acked, 30)
        if ack.get("type") != "connection_ack":
            await conn.close()
            raise RuntimeError(f"no connection_ack: {ack}")
        conn.send(orjson.dumps({"id": "1", "type": "subscribe",
                                "payload": {"query": INTAKE, "variables": {"region": region}}}).decode())
        return console

    def _on_message(self, raw: str, now: float) -> None:
        message = orjson.loads(raw)
        kind = message.get("type")
        if kind == "next":
            payload = message["payload"]
            if payload.get("errors"):
                self.deliveries.errors.append(str(payload["errors"])[:200])
            else:
                self.deliveries.record(payload["data"]["intake"]["complaintId"], now)
        elif kind == "ping":
            assert self.conn is not None
            self.conn.send('{"type":"pong"}')
        elif not self.acked.done():
            self.acked.set_result(message)
        elif kind in {"error", "complete"}:
            self.deliveries.errors.append(str(message)[:200])

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()


async def open_consoles(url: str, token: str, regions: list[str], n: int, deliveries: Deliveries, *,
                        concurrency: int = 50) -> list[Console]:
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Console:
        async with slots:
            return await Console.open(url, token, regions[i % len(regions)], deliveries)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def _after(deliveries: Deliveries, start: dict[str, float]) -> list[float]:
    return [t - start[key] for key, times in deliveries.at.items() if key in start for t in times]


async def _commit_stamps(database_url: str, complaint_ids: list[str]) -> dict[str, float]:
    """``updated_at`` of each complaint (global id -> wall-clock seconds): stamped with ``clock_timestamp()``
    under the event-order lock just before COMMIT (see ``domain.events.write_events``)."""
    keys = {int(base64.urlsafe_b64decode(gid + "=" * (-len(gid) % 4)).decode().split(":")[1]): gid
            for gid in complaint_ids}
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        rows = await conn.fetch("SELECT id, updated_at FROM complaints WHERE id = ANY($1::bigint[])", list(keys))
    finally:
        await conn.close()
    return {keys[r["id"]]: r["updated_at"].timestamp() for r in rows}


def _latency_summary(latencies: list[float]) -> dict[str, Any]:
    return {"deliveries": len(latencies), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2)}


async def rujuk(server: Rujuk, client: GraphQL, fixture: Fixture, *, sockets: int, rate: float,
                duration: float) -> dict[str, Any]:
    """Open ``sockets`` subscribed consoles (RSS before and after, idle), then file complaints at ``rate``
    per second for ``duration`` seconds and measure when each console received each of them."""
    settle = min(2.0, max(0.5, duration / 5))  # for the server's memory to settle before each reading
    deliveries = Deliveries()
    regions = fixture.kecamatan
    watchers = {r: sockets // len(regions) + (1 if i < sockets % len(regions) else 0) for i, r in enumerate(regions)}
    await asyncio.sleep(settle)
    rss_before = server.rss_kib()
    opened = time.monotonic()
    consoles = await open_consoles(f"ws://127.0.0.1:{server.port}/graphql", fixture.tokens[fixture.console],
                                   regions, sockets, deliveries)
    open_seconds = time.monotonic() - opened
    # the consoles live until the end: out of the load generator's collector, whose full passes over thousands
    # of sockets would otherwise stall the clock readings of every delivery for a few hundred ms
    gc.collect()
    gc.freeze()
    await asyncio.sleep(settle)
    rss_after = server.rss_kib()
    rng = random.Random(5)
    responded: dict[str, float] = {}
    created: dict[str, float] = {}
    expected = 0
    failures = 0

    async def file(k: int) -> None:
        nonlocal expected, failures
        fac, hid, region = fixture.household(rng, k)
        body = await client.post(FILE_COMPLAINT, {"input": file_complaint_input(hid)},
                                 token=fixture.tokens[fac.username])
        at = time.time()
        complaint = ((body.get("data") or {}).get("fileComplaint") or {}).get("complaint")
        if not complaint:
            failures += 1
            return
        responded[complaint["id"]] = at
        created[complaint["id"]] = dt.datetime.fromisoformat(complaint["createdAt"]).timestamp()
        expected += watchers.get(region[:8], 0)

    try:
        filed = await paced(file, rate=rate, duration=duration)
        deliveries.expect(expected)
        await deliveries.wait(max(5.0, duration))
    finally:
        await asyncio.gather(*(c.close() for c in consoles))
        gc.unfreeze()
    after_created = _after(deliveries, created)
    after_response = _after(deliveries, responded)
    after_stamp = _after(deliveries, await _commit_stamps(server.database_url, list(created)))
    delivered = len(after_created)
    return {
        "sockets": sockets, "workers": server.workers, "rate_per_second": rate, "filed": filed,
        "filing_failures": failures, "expected_deliveries": expected, "delivered": delivered,
        "delivered_share": round(delivered / expected, 4) if expected else None,
        "stream_errors": deliveries.errors[:5], "stream_error_count": len(deliveries.errors),
        "open_seconds": round(open_seconds, 2),
        "after_created_at": _latency_summary(after_created),
        "after_commit_stamp": _latency_summary(after_stamp),
        "after_response": _latency_summary(after_response),
        "rss_before_kib": rss_before, "rss_after_kib": rss_after,
        "rss_per_subscription_kib": round((rss_after - rss_before) / sockets, 1) if sockets else None,
    }


async def floor(url: str, fixture: Fixture, *, rate: float, duration: float) -> dict[str, Any]:
    """The same rate of complaints written by asyncpg with ``pg_notify`` in the transaction, received by one
    LISTEN connection, on the same two clocks (``created_at``, COMMIT returned)."""
    channel = "rujuk_bench_floor"
    received = Deliveries()
    created: dict[str, float] = {}
    committed: dict[str, float] = {}
    rng = random.Random(5)

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        received.record(payload, time.time())

    async def write(k: int) -> None:
        fac, hid, region = fixture.household(rng, k)
        async with pool.acquire() as conn:
            complaint, created_at = await write_complaint(conn, facilitator=fac.id, household=hid, region=region,
                                                          notify=channel)
        committed[str(complaint)] = time.time()
        created[str(complaint)] = created_at.timestamp()

    listener = await asyncpg.connect(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=10)
    try:
        await listener.add_listener(channel, on_notify)
        filed = await paced(write, rate=rate, duration=duration)
        received.expect(filed)
        await received.wait(5.0)
    finally:
        await listener.close()
        await pool.close()
    return {"filed": filed, "delivered": received.count,
            "after_created_at": _latency_summary(_after(received, created)),
            "after_response": _latency_summary(_after(received, committed))}
