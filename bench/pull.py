"""Partner pull: one client paging through the event log (``changes``) and through every complaint
(keyset ``complaints`` pages) 1,000 rows at a time, against the same keyset reads in plain SQL."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.client import Fixture, GraphQL, GraphQLError

PAGE = 1000

CHANGES = """
query($after: String, $first: Int!) {
  changes(after: $after, first: $first) {
    events { cursor kind occurredAt regionCode householdId complaintId referralId data }
    endCursor hasMore
  }
}"""

COMPLAINTS = """
query($after: String, $first: Int!) {
  complaints(first: $first, after: $after) {
    edges { node { id status kind sector priority channel regionCode slaDueAt slaState createdAt updatedAt version } }
    pageInfo { hasNextPage endCursor }
  }
}"""

CHANGES_SQL = """
SELECT id, kind, occurred_at, region_code, household_id, complaint_id, referral_id, data::text
FROM case_events WHERE id > $1 ORDER BY id LIMIT $2"""

COMPLAINTS_SQL = """
SELECT id, status, kind, sector, priority, channel, region_code, sla_due_at,
       CASE WHEN status IN ('RESOLVED', 'REJECTED') THEN 'CLOSED' WHEN now() > sla_due_at THEN 'BREACHED'
            WHEN extract(epoch FROM sla_due_at - now()) < extract(epoch FROM sla_due_at - sla_started_at) * 0.25
            THEN 'AT_RISK' ELSE 'ON_TRACK' END, created_at, updated_at, version
FROM complaints WHERE id < $1 ORDER BY id DESC LIMIT $2"""


@dataclass(frozen=True, slots=True)
class Pulled:
    rows: int
    pages: int
    seconds: float
    complete: bool

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "pages": self.pages, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rate, 1), "complete": self.complete}


#: fetch the page after a cursor: (rows on it, next cursor or None at the end)
Page = Callable[[Any], Awaitable[tuple[int, Any]]]


async def pull(page: Page, first_cursor: Any, *, duration: float, max_pages: int = 100_000) -> Pulled:
    """Page from ``first_cursor`` until the end, ``duration`` seconds or ``max_pages``, whichever is first."""
    rows = pages = 0
    cursor = first_cursor
    start = time.monotonic()
    complete = False
    while time.monotonic() - start < duration and pages < max_pages:
        n, cursor = await page(cursor)
        rows += n
        pages += 1
        if cursor is None:
            complete = True
            break
    return Pulled(rows=rows, pages=pages, seconds=time.monotonic() - start, complete=complete)


async def changes_rujuk(client: GraphQL, fixture: Fixture, *, duration: float) -> Pulled:
    token = fixture.tokens[fixture.admin]

    async def page(after: str | None) -> tuple[int, str | None]:
        data = (await client.data(CHANGES, {"after": after, "first": PAGE}, token=token))["changes"]
        return len(data["events"]), data["endCursor"] if data["hasMore"] else None

    return await pull(page, None, duration=duration)


async def complaints_rujuk(client: GraphQL, fixture: Fixture, *, duration: float) -> Pulled:
    token = fixture.tokens[fixture.admin]

    async def page(after: str | None) -> tuple[int, str | None]:
        data = (await client.data(COMPLAINTS, {"after": after, "first": PAGE}, token=token))["complaints"]
        info = data["pageInfo"]
        return len(data["edges"]), info["endCursor"] if info["hasNextPage"] else None

    return await pull(page, None, duration=duration)


async def export_rujuk(client: GraphQL, fixture: Fixture, *, duration: float) -> Pulled:
    """Every complaint through the bulk export (``GET /export/complaints.ndjson``, one streamed snapshot), read
    counting its lines until its end line or ``duration``."""
    token = fixture.tokens[fixture.admin]
    url = client.url.rsplit("/graphql", 1)[0] + "/export/complaints.ndjson"
    rows = 0
    complete = False
    start = time.monotonic()
    async with client.http.stream("GET", url, headers={"authorization": f"Bearer {token}"}) as response:
        if response.status_code != 200:
            raise GraphQLError(f"export answered {response.status_code}: {(await response.aread())[:300]!r}")
        # counted in bytes, as a fast consumer reads NDJSON: whole lines per chunk, the rest kept for the next
        pending = b""
        async for chunk in response.aiter_bytes():
            data = pending + chunk
            cut = data.rfind(b"\n") + 1
            lines, pending = data[:cut], data[cut:]
            end = _end_line(lines)
            if end >= 0:
                rows += lines[:end].count(b"\n")
                complete = True
                break
            rows += lines.count(b"\n")
            if time.monotonic() - start > duration:
                break
    return Pulled(rows=rows, pages=1, seconds=time.monotonic() - start, complete=complete)


def _end_line(lines: bytes) -> int:
    """Where the export's end line starts in ``lines`` (whole lines), or -1."""
    for marker in (b'{"type":"end"', b'{"type": "end"'):
        at = lines.find(b"\n" + marker)
        if at >= 0:
            return at + 1
        if lines.startswith(marker):
            return 0
    return -1


async def changes_floor(pool: asyncpg.Pool, *, duration: float) -> Pulled:
    async def page(after: int) -> tuple[int, int | None]:
        rows = await pool.fetch(CHANGES_SQL, after, PAGE)
        return len(rows), rows[-1]["id"] if len(rows) == PAGE else None

    return await pull(page, 0, duration=duration)


async def complaints_floor(pool: asyncpg.Pool, *, duration: float) -> Pulled:
    async def page(before: int) -> tuple[int, int | None]:
        rows = await pool.fetch(COMPLAINTS_SQL, before, PAGE)
        return len(rows), rows[-1]["id"] if len(rows) == PAGE else None

    return await pull(page, 2**62, duration=duration)
