"""Reads: the nested household page, NIK search and the workload board, each through rujuk, and through
PostGraphile or plain SQL (asyncpg) as the baseline."""

from __future__ import annotations

import json
import random
from typing import Any

import asyncpg

from bench.client import Fixture, GraphQL
from bench.load import Failed, Measured, closed_loop
from domain.crypto import PersonalDataCipher

PAGE = 50

NESTED_PAGE = """
query($first: Int!) {
  households(first: $first) {
    edges { node {
      id regionCode address dtksStatus
      members { id name nikMasked relation sex birthDate }
      complaints { id status sector description createdAt referrals { id status createdAt } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""

NESTED_PAGE_POSTGRAPHILE = """
query($first: Int!) {
  allHouseholds(first: $first, orderBy: PRIMARY_KEY_DESC) {
    nodes {
      rowId regionCode address dtksStatus
      membersByHouseholdId(orderBy: PRIMARY_KEY_ASC) { nodes { rowId name nikMasked relation sex birthDate } }
      complaintsByHouseholdId(orderBy: PRIMARY_KEY_ASC) { nodes {
        rowId status sector description createdAt
        referralsByComplaintId(orderBy: PRIMARY_KEY_ASC) { nodes { rowId status createdAt } }
      } }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""

#: the same page as one JSON document built by PostgreSQL in one statement: the floor
NESTED_PAGE_SQL = """
SELECT json_build_object('households', coalesce(json_agg(page ORDER BY page.id DESC), '[]'), 'hasNextPage',
                         EXISTS (SELECT 1 FROM households WHERE id < min(page.id)))::text
FROM (
  SELECT h.id, h.region_code AS "regionCode", h.address, h.dtks_status AS "dtksStatus",
    (SELECT coalesce(json_agg(json_build_object('id', m.id, 'name', m.name, 'nikMasked', m.nik_masked,
                                                'relation', m.relation, 'sex', m.sex, 'birthDate', m.birth_date)
                              ORDER BY m.id), '[]')
       FROM members m WHERE m.household_id = h.id) AS members,
    (SELECT coalesce(json_agg(json_build_object(
              'id', c.id, 'status', c.status, 'sector', c.sector, 'description', c.description,
              'createdAt', c.created_at,
              'referrals', (SELECT coalesce(json_agg(json_build_object('id', r.id, 'status', r.status,
                                                                       'createdAt', r.created_at) ORDER BY r.id), '[]')
                              FROM referrals r WHERE r.complaint_id = c.id)) ORDER BY c.id), '[]')
       FROM complaints c WHERE c.household_id = h.id) AS complaints
  FROM households h ORDER BY h.id DESC LIMIT $1
) page"""


def expect_households(body: dict[str, Any], count: int) -> None:
    """Raise :class:`Failed` unless the answer is a page of ``count`` households without errors."""
    data = body.get("data") or {}
    conn = data.get("households") or data.get("allHouseholds") or {}
    items = conn.get("edges") or conn.get("nodes") or []
    if body.get("errors") or len(items) != count:
        raise Failed(f"expected {count} households: {str(body)[:300]}")


async def nested_rujuk(client: GraphQL, fixture: Fixture, *, clients: int, duration: float,
                       warmup: float) -> Measured:
    token = fixture.tokens[fixture.admin]

    async def request(i: int) -> None:
        expect_households(await client.post(NESTED_PAGE, {"first": PAGE}, token=token), PAGE)

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)


async def nested_postgraphile(client: GraphQL, *, clients: int, duration: float, warmup: float) -> Measured:
    async def request(i: int) -> None:
        expect_households(await client.post(NESTED_PAGE_POSTGRAPHILE, {"first": PAGE}), PAGE)

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)


async def nested_floor(pool: asyncpg.Pool, *, clients: int, duration: float, warmup: float) -> Measured:
    async def request(i: int) -> None:
        if not await pool.fetchval(NESTED_PAGE_SQL, PAGE):
            raise Failed("no page")

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)


NIK_SEARCH = """
query($nik: String!) {
  households(filter: {nik: $nik}, first: 5) { edges { node { id regionCode members { id name nikMasked } } } }
}"""

NIK_SEARCH_SQL = """
SELECT h.id, h.region_code, (SELECT json_agg(json_build_object('id', m.id, 'name', m.name,
                                                               'nikMasked', m.nik_masked) ORDER BY m.id)
                             FROM members m WHERE m.household_id = h.id)::text
FROM households h WHERE h.id IN (SELECT household_id FROM members WHERE nik_hash = $1) ORDER BY h.id DESC LIMIT 6"""


async def nik_rujuk(client: GraphQL, fixture: Fixture, *, clients: int, duration: float,
                    warmup: float) -> Measured:
    rng = random.Random(3)
    token = fixture.tokens[fixture.admin]

    async def request(i: int) -> None:
        expect_households(await client.post(NIK_SEARCH, {"nik": rng.choice(fixture.niks)}, token=token), 1)

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)


NIK_SEARCH_AUDIT = ("INSERT INTO audit_log (actor_id, action, entity_type, detail) "
                    "VALUES ((SELECT id FROM staff WHERE username = $1), 'SEARCH_BY_NIK', 'Household', $2::jsonb)")


async def nik_floor(pool: asyncpg.Pool, fixture: Fixture, cipher: PersonalDataCipher, *, clients: int,
                    duration: float, warmup: float) -> Measured:
    """The search and the audit row the app must write for it, committed: one transaction per search."""
    rng = random.Random(3)

    async def request(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(NIK_SEARCH_SQL, cipher.digest(rng.choice(fixture.niks)))
            await conn.execute(NIK_SEARCH_AUDIT, fixture.admin, json.dumps({"matches": len(rows)}))
        if len(rows) != 1:
            raise Failed("expected 1 household")

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)


WORKLOAD = """
query($region: String!) {
  workload(regionCode: $region) { staff { id fullName } open newToday atRisk breached oldestOpenAt }
}"""

def workload_sql(kabupaten: str) -> tuple[str, list[Any]]:
    """The floor: the board's own statement (``domain.complaints.queries.workload_statement``, the query rujuk
    runs, whose plan its indexes were made for) as SQL with its parameters, sent through asyncpg directly."""
    from domain.actor import Actor
    from domain.complaints.queries import workload_statement
    from domain.enums import Role
    from resolvers.compiled import bind

    params: list[Any] = []
    manager = Actor(id=0, role=Role.MANAGER, username="bench", regions=(kabupaten,))
    return bind(workload_statement(manager, region_code=kabupaten), params), params


async def workload_rujuk(client: GraphQL, fixture: Fixture, *, clients: int, duration: float,
                         warmup: float) -> Measured:
    token = fixture.tokens[fixture.manager]

    async def request(i: int) -> None:
        body = await client.post(WORKLOAD, {"region": fixture.kabupaten}, token=token)
        if body.get("errors") or not (body.get("data") or {}).get("workload"):
            raise Failed(str(body)[:300])

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)


async def workload_floor(pool: asyncpg.Pool, fixture: Fixture, *, clients: int, duration: float,
                         warmup: float) -> Measured:
    sql, params = workload_sql(fixture.kabupaten)

    async def request(i: int) -> None:
        if not await pool.fetch(sql, *params):
            raise Failed("empty workload board")

    return await closed_loop(request, clients=clients, duration=duration, warmup=warmup)
