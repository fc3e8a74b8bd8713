"""Compiled reads answer exactly as the resolvers do.

Two real servers share one database seeded with the demo district: one compiles the hot list queries into
one SQL statement (the default), the other runs every query through the resolvers (``RUJUK_COMPILED_READS=0``).
Every query below is sent to both, as every kind of account, and the answers must be equal — data, cursors,
errors — while the compiling server's metrics show it really compiled them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from domain.crypto import PersonalDataCipher
from server import db
from server.settings import DEV_PII_KEY
from tests.conftest import scratch_database
from tests.support.demo import seed_demo_district
from tests.support.servers import ServerProcess, compiled_and_resolved

PASSWORD = "rujuk-demo"
ROLES = ["admin", "manajer", "supervisor1", "fasilitator01", "puskesos1"]

HOUSEHOLD_FIELDS = """
  __typename id regionCode rt rw dtksStatus indicators version createdAt updatedAt address latitude longitude
  familyCards { __typename id numberMasked }
  members { __typename id name sex birthDate relation nikStatus nikMasked nikFromOtherRegion education occupation
            disability chronicIllness programs version }
  complaints { ...complaintFields referrals { ...referralFields } }
"""
COMPLAINT_FRAGMENT = """
fragment complaintFields on Complaint {
  __typename id kind sector description channel priority status regionCode slaDueAt slaState decision statusReason
  closedAt reportedAt version createdAt updatedAt
}"""
REFERRAL_FRAGMENT = """
fragment referralFields on Referral {
  __typename id status receivingAgency note consentGiven consentOverrideReason rejectionReason revocationReason
  outcome sentAt respondedAt completedAt version createdAt updatedAt
}
"""
COMPLAINT_FIELDS = COMPLAINT_FRAGMENT + REFERRAL_FRAGMENT

HOUSEHOLDS = """
query Households($first: Int, $after: String, $filter: HouseholdFilter) {
  __typename
  households(first: $first, after: $after, filter: $filter) {
    __typename totalCount
    edges { __typename cursor node { HOUSEHOLD_FIELDS } }
    pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
  }
}
""".replace("HOUSEHOLD_FIELDS", HOUSEHOLD_FIELDS) + COMPLAINT_FIELDS

COMPLAINTS = """
query Complaints($first: Int, $after: String, $filter: ComplaintFilter, $order: ComplaintOrder) {
  complaints(first: $first, after: $after, filter: $filter, orderBy: $order) {
    totalCount
    edges { cursor node { ...complaintFields ... on Node { nodeId: id }
                          household { id address members { id nikMasked } familyCards { numberMasked } }
                          referrals { ...referralFields } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}""" + COMPLAINT_FIELDS

REFERRALS = """
query Referrals($first: Int, $after: String, $filter: ReferralFilter) {
  referrals(first: $first, after: $after, filter: $filter) {
    edges { cursor node { ...referralFields } }
    pageInfo { hasNextPage endCursor startCursor }
    count: totalCount
  }
}""" + REFERRAL_FRAGMENT

#: two roots in one operation, aliases, a field asked twice, the page info without edges
TWO_ROOTS = """
query {
  newest: complaints(first: 3) { edges { node { id status status } } }
  due: complaints(first: 4, orderBy: SLA_DUE, filter: {slaState: [AT_RISK, BREACHED]}) {
    pageInfo { endCursor } totalCount
  }
  families: households(first: 2) { edges { node { id members { name } } } }
}"""

CHANGES = """
query($after: String, $first: Int) {
  changes(after: $after, first: $first) {
    __typename endCursor hasMore
    events { __typename id cursor kind occurredAt regionCode householdId complaintId referralId actorId data }
  }
}"""

NIK_SEARCH = """
query($nik: String!) {
  households(filter: {nik: $nik}) { totalCount edges { node { id address members { id name nikMasked } } } }
}"""

#: shapes the compiler hands to the resolvers: they must still answer (and the same)
NOT_COMPILED = [
    ("{ households(first: 2) { edges { node { id members { nik } } } } }", None),
    ("{ complaints(first: 2) { edges { node { id assignee { fullName } } } } }", None),
    ("query($yes: Boolean!) { complaints(first: 2) { edges { node { id @include(if: $yes) } } } }", {"yes": False}),
    ("{ households(first: 2) { edges { node { id complaints { household { id } } } } } }", None),
]


@pytest.fixture(scope="module")
def demo_database(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "rujuk_compiled", migrated=True) as url:
        # whole-second timestamps take the other branch of the ISO formatting
        seed_demo_district(url, households=240,
                           then="UPDATE complaints SET created_at = date_trunc('second', created_at), "
                                "closed_at = date_trunc('second', closed_at) WHERE id % 3 = 0")
        yield url


@pytest.fixture(scope="module")
def servers(demo_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess,
                                                                                             ServerProcess]]:
    with compiled_and_resolved(demo_database, Path(tmp_path_factory.mktemp("compiled"))) as pair:
        yield pair


class Pair:
    """One client per server, logged in as the same account."""

    def __init__(self, compiled: httpx.AsyncClient, resolved: httpx.AsyncClient) -> None:
        self.compiled, self.resolved = compiled, resolved
        self.tokens: dict[str, tuple[str, str]] = {}

    async def login(self, username: str) -> None:
        query = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }"
        tokens = []
        for client in (self.compiled, self.resolved):
            body = (await client.post("/graphql", json={"query": query,
                                                        "variables": {"u": username, "p": PASSWORD}})).json()
            tokens.append(body["data"]["login"]["accessToken"])
        self.tokens[username] = (tokens[0], tokens[1])

    async def both(self, who: str | None, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The answer, asserted equal from both servers."""
        answers = []
        for client, token in zip((self.compiled, self.resolved), self.tokens.get(who or "", (None, None)),
                                 strict=True):
            headers = {"authorization": f"Bearer {token}"} if token else {}
            response = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                                         headers=headers)
            assert response.status_code == 200, response.text
            answers.append(response.json())
        for answer in answers:
            for error in answer.get("errors") or []:
                error.get("extensions", {}).pop("requestId", None)
                error["message"] = re.sub(r"reference \w+", "reference", error["message"])
        assert answers[0] == answers[1], (who, query[:80], variables)
        return answers[0]


@pytest.fixture(scope="module")
async def pair(servers: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[Pair]:
    compiled, resolved = servers
    async with httpx.AsyncClient(base_url=compiled.http, timeout=60) as a, \
            httpx.AsyncClient(base_url=resolved.http, timeout=60) as b:
        p = Pair(a, b)
        for username in ROLES:
            await p.login(username)
        yield p


def _compiled_count(server: ServerProcess) -> float:
    metrics = httpx.get(f"{server.http}/metrics").text
    found = re.search(r'^rujuk_compiled_reads_total\{outcome="compiled"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


async def _pages(pair: Pair, who: str, query: str, root: str, variables: dict[str, Any]) -> int:
    """Page through a whole connection on both servers; returns how many items it held."""
    after, seen = None, 0
    while True:
        data = (await pair.both(who, query, {**variables, "after": after}))["data"][root]
        seen += len(data["edges"])
        assert seen <= data.get("totalCount", data.get("count", seen))
        if not data["pageInfo"]["hasNextPage"]:
            return seen
        after = data["pageInfo"]["endCursor"]


@pytest.mark.parametrize("who", ROLES)
async def test_household_pages_are_the_same(pair: Pair, servers: tuple[ServerProcess, ServerProcess],
                                            who: str) -> None:
    before = _compiled_count(servers[0])
    data = (await pair.both(who, HOUSEHOLDS, {"first": 25}))["data"]["households"]
    assert data["edges"] and data["totalCount"] > 0
    total = await _pages(pair, who, HOUSEHOLDS, "households", {"first": 60})
    assert total == data["totalCount"]
    region = {"admin": "12.74.01", "manajer": "12.74.02"}.get(who)
    if region:
        await pair.both(who, HOUSEHOLDS, {"first": 10, "filter": {"regionCode": region, "dtksStatus": "REGISTERED"}})
    await pair.both(who, HOUSEHOLDS, {"first": 7, "filter": {"updatedAfter": "2020-01-01T00:00:00+07:00"}})
    assert _compiled_count(servers[0]) > before


@pytest.mark.parametrize("order", [None, "NEWEST", "OLDEST", "UPDATED", "SLA_DUE", "RECENT"])
async def test_complaint_orderings_page_the_same(pair: Pair, order: str | None) -> None:
    for who in ("admin", "supervisor1"):
        await _pages(pair, who, COMPLAINTS, "complaints", {"first": 97, "order": order})


@pytest.mark.parametrize("who", ROLES)
async def test_complaint_filters_are_the_same(pair: Pair, who: str) -> None:
    for filter_ in [{"status": ["NEW", "VERIFIED"]}, {"slaState": ["AT_RISK", "BREACHED"]},
                    {"sector": ["HEALTH"], "priority": ["HIGH", "URGENT"]}, {"regionCode": "12.74.03"},
                    {"unassigned": False, "kind": ["COMPLAINT"]},
                    {"createdAfter": "2024-01-01T00:00:00Z", "createdBefore": "2030-01-01T00:00:00Z"}]:
        await pair.both(who, COMPLAINTS, {"first": 40, "filter": filter_, "order": "SLA_DUE"})
    await _pages(pair, who, REFERRALS, "referrals", {"first": 50})
    await pair.both(who, REFERRALS, {"first": 20, "filter": {"status": ["SENT", "ACCEPTED"]}})


async def _changes(pair: Pair, who: str, first: int) -> int:
    after, seen = None, 0
    while True:
        page = (await pair.both(who, CHANGES, {"after": after, "first": first}))["data"]["changes"]
        seen += len(page["events"])
        if not page["hasMore"]:
            return seen
        after = page["endCursor"]


@pytest.mark.parametrize("who", ROLES)
async def test_the_event_feed_is_the_same(pair: Pair, who: str) -> None:
    assert await _changes(pair, who, 700) > 0
    bad = await pair.both(who, CHANGES, {"after": "x", "first": 5})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


WORKLOAD = """
query($region: String) {
  workload(regionCode: $region) {
    __typename open newToday atRisk breached oldestOpenAt
    staff { __typename id username fullName role regionCode regionCodes active createdAt }
  }
}"""


async def test_the_workload_board_is_the_same(pair: Pair) -> None:
    for who, region in [("admin", "12.74"), ("admin", "12.74.01"), ("manajer", None), ("manajer", "12.74.03"),
                        ("supervisor1", None)]:
        assert (await pair.both(who, WORKLOAD, {"region": region}))["data"]["workload"]
    assert (await pair.both("admin", WORKLOAD, {"region": "12.99"}))["data"]["workload"] == []
    outside = await pair.both("supervisor1", WORKLOAD, {"region": "12.74.06"})
    assert outside["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    refused = await pair.both("fasilitator01", WORKLOAD, {"region": None})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_several_roots_aliases_and_typenames(pair: Pair) -> None:
    for who in ROLES:
        data = (await pair.both(who, TWO_ROOTS))["data"]
        assert list(data) == ["newest", "due", "families"]


async def test_nik_search_is_the_same_and_audited_on_both(pair: Pair, demo_database: str) -> None:
    conn = await asyncpg.connect(demo_database.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        nik_sealed = await conn.fetch("SELECT nik_sealed FROM members WHERE nik_sealed IS NOT NULL LIMIT 3")
        cipher = PersonalDataCipher(DEV_PII_KEY)
        from domain.crypto import NIK

        niks = [cipher.open(bytes(r["nik_sealed"]), kind=NIK) for r in nik_sealed]
        audits = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'SEARCH_BY_NIK'")
        for nik in [*niks, "1274010101010001"]:
            data = (await pair.both("admin", NIK_SEARCH, {"nik": nik}))["data"]["households"]
            assert data["totalCount"] == (1 if nik in niks else 0)
        after = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'SEARCH_BY_NIK'")
        assert after - audits == 2 * (len(niks) + 1)  # one audit entry per search, on each server
    finally:
        await conn.close()


async def test_errors_are_the_same(pair: Pair) -> None:
    bad_cursor = await pair.both("admin", COMPLAINTS, {"first": 5, "after": "not-a-cursor"})
    assert bad_cursor["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    other_ordering = (await pair.both("admin", COMPLAINTS, {"first": 5}))["data"]["complaints"]["pageInfo"]
    wrong = await pair.both("admin", COMPLAINTS, {"first": 5, "order": "SLA_DUE", "after": other_ordering["endCursor"]})
    assert wrong["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    too_many = await pair.both("admin", HOUSEHOLDS, {"first": 5000})
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID_PAGE_SIZE"
    anonymous = await pair.both(None, HOUSEHOLDS, {"first": 5})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    naive = await pair.both("admin", COMPLAINTS, {"first": 5, "filter": {"updatedAfter": "2026-01-01T00:00:00"}})
    assert naive["errors"][0]["extensions"]["code"] == "INVALID_TIME"
    region = await pair.both("admin", COMPLAINTS, {"first": 5, "filter": {"regionCode": "12.x"}})
    assert region["errors"][0]["extensions"]["code"] == "INVALID_REGION_CODE"


@pytest.mark.parametrize(("query", "variables"), NOT_COMPILED)
async def test_what_is_not_compiled_still_answers_the_same(pair: Pair, query: str,
                                                           variables: dict[str, Any] | None) -> None:
    for who in ("admin", "supervisor1"):
        answer = await pair.both(who, query, variables)
        assert "errors" not in answer, answer


async def test_partner_keys_scoped_by_program_read_the_same(pair: Pair) -> None:
    partner = """mutation($u: String!) { createUser(input: {username: $u, password: "rujuk-demo-partner",
                 fullName: "Mitra PKH", role: PARTNER, regionCode: "12.74"}) { staff { id } errors { code } } }"""
    key_mutation = """mutation($id: ID!, $pd: Boolean!) { createApiKey(input: {partnerId: $id, name: "pkh sync",
                      programCodes: ["PKH"], personalData: $pd}) { secret errors { code } } }"""
    token = pair.tokens["admin"][0]
    headers = {"authorization": f"Bearer {token}"}
    created = (await pair.compiled.post("/graphql", json={"query": partner, "variables": {"u": "mitra-pkh"}},
                                        headers=headers)).json()["data"]["createUser"]
    for personal_data in (False, True):
        key = (await pair.compiled.post("/graphql", json={"query": key_mutation, "variables": {
            "id": created["staff"]["id"], "pd": personal_data}}, headers=headers)).json()["data"]["createApiKey"]
        name = f"partner-{personal_data}"
        pair.tokens[name] = (key["secret"], key["secret"])
        total = await _pages(pair, name, COMPLAINTS, "complaints", {"first": 80})
        assert total > 0
        assert await _changes(pair, name, 300) > 0
        await pair.both(name, HOUSEHOLDS, {"first": 30})
        search = await pair.both(name, NIK_SEARCH, {"nik": "1274010101010001"})
        if not personal_data:
            assert search["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_changed_or_deactivated_account_is_never_served_from_memory(pair: Pair, demo_database: str) -> None:
    """The compiling server remembers accounts between requests, but each compiled read checks the staff row
    in its own statement: a moved or deactivated account is answered as the database says, at once."""
    who = "fasilitator02"
    await pair.login(who)
    query = "{ households(first: 100) { totalCount edges { node { regionCode } } } }"
    before = (await pair.both(who, query))["data"]["households"]
    conn = await asyncpg.connect(demo_database.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        home = await conn.fetchval("SELECT region_code FROM staff WHERE username = $1", who)
        elsewhere = await conn.fetchval("SELECT code FROM regions WHERE level = 'DESA' AND code <> $1 "
                                        "AND EXISTS (SELECT 1 FROM households h WHERE h.region_code = code) "
                                        "ORDER BY code LIMIT 1", home)
        await conn.execute("UPDATE staff SET region_code = $2 WHERE username = $1", who, elsewhere)
        moved = (await pair.both(who, query))["data"]["households"]
        assert {e["node"]["regionCode"] for e in moved["edges"]} == {elsewhere}
        assert {e["node"]["regionCode"] for e in before["edges"]} == {home}
        await conn.execute("UPDATE staff SET active = false WHERE username = $1", who)
        gone = await pair.both(who, query)
        assert gone["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await conn.execute("UPDATE staff SET active = true, region_code = $2 WHERE username = $1", who, home)
        await conn.close()


@pytest.mark.parametrize("kind", ["complaints", "referrals"])
async def test_export_lines_written_by_postgresql_match_the_python_encoding(
        pair: Pair, demo_database: str, kind: str) -> None:
    """The bulk export's complaint and referral lines are JSON written by PostgreSQL; they must be the rows
    the Python encoding of :mod:`domain.export` gives, field for field."""
    import orjson

    from domain import export
    from domain.actor import Actor
    from domain.enums import Role
    from server.export import _encode

    token = pair.tokens["supervisor1"][0]
    response = await pair.compiled.get(f"/export/{kind}.ndjson", headers={"authorization": f"Bearer {token}"})
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    trailer, rows = lines[-1], lines[:-1]
    assert trailer["type"] == "end" and trailer["rows"] == len(rows) > 0
    engine = db.make_engine(demo_database, pool_size=1)
    try:
        async with db.make_sessionmaker(engine)() as session:
            conn = await asyncpg.connect(demo_database.replace("postgresql+asyncpg://", "postgresql://"))
            staff = await conn.fetchrow("SELECT id, region_code, extra_region_codes FROM staff "
                                        "WHERE username = 'supervisor1'")
            await conn.close()
            actor = Actor(id=staff["id"], role=Role.SUPERVISOR, username="supervisor1",
                          regions=(staff["region_code"], *staff["extra_region_codes"]))
            source = export.complaints if kind == "complaints" else export.referrals
            expected = [orjson.loads(orjson.dumps(row, default=_encode, option=orjson.OPT_PASSTHROUGH_DATACLASS))
                        async for row in source(session, actor=actor, region=None)]
    finally:
        await engine.dispose()
    assert rows == expected


#: two lists paged by cursors of their own, and one cursor variable given to two lists
TWO_CURSORS = """
query($h: String, $c: String) {
  households(first: 4, after: $h) { edges { node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } }
  complaints(first: 3, after: $c, orderBy: UPDATED) { edges { cursor node { id updatedAt } } pageInfo { endCursor } }
}"""
ONE_CURSOR_TWICE = """
query($c: String) {
  a: complaints(first: 3, after: $c) { edges { node { id } } pageInfo { endCursor } }
  b: complaints(first: 5, after: $c) { edges { node { id } } pageInfo { endCursor } }
}"""


async def test_one_statement_serves_every_cursor_of_its_list(pair: Pair) -> None:
    """The statement of a page is kept and answers the next cursors with their values as its parameters: pages
    forward, backward to an earlier cursor and the first page again are all the resolvers' pages."""
    cursors: list[str | None] = [None]
    ids: list[str] = []
    for _ in range(5):
        page = (await pair.both("admin", COMPLAINTS, {"first": 11, "order": "SLA_DUE", "after": cursors[-1]})
                )["data"]["complaints"]
        ids += [edge["node"]["id"] for edge in page["edges"]]
        cursors.append(page["pageInfo"]["endCursor"])
    assert len(ids) == len(set(ids)) == 55  # each page begins where the one before ended
    for after in (cursors[2], cursors[0], cursors[4]):  # cursors asked before, in another order
        page = (await pair.both("admin", COMPLAINTS, {"first": 11, "order": "SLA_DUE", "after": after})
                )["data"]["complaints"]
        start = cursors.index(after) * 11
        assert [edge["node"]["id"] for edge in page["edges"]] == ids[start:start + 11]


async def test_a_bad_cursor_for_a_kept_statement_is_the_resolvers_error(pair: Pair) -> None:
    first = (await pair.both("admin", COMPLAINTS, {"first": 6}))["data"]["complaints"]["pageInfo"]
    await pair.both("admin", COMPLAINTS, {"first": 6, "after": first["endCursor"]})  # kept, with its cursor
    other = (await pair.both("admin", COMPLAINTS, {"first": 2, "order": "SLA_DUE"}))["data"]["complaints"]["pageInfo"]
    for bad in ("not-a-cursor", other["endCursor"], first["endCursor"][:-4]):
        answer = await pair.both("admin", COMPLAINTS, {"first": 6, "after": bad})
        assert answer["errors"][0]["extensions"]["code"] == "INVALID_CURSOR", bad
    mistyped = await pair.both("admin", COMPLAINTS, {"first": 6, "after": 12})
    assert mistyped["errors"] and mistyped["data"] is None


async def test_lists_with_cursors_of_their_own_or_one_cursor_twice_page_the_same(pair: Pair) -> None:
    h: str | None = None
    c: str | None = None
    for step in range(6):  # the households' cursor moves every page, the complaints' every other page
        data = (await pair.both("supervisor1", TWO_CURSORS, {"h": h, "c": c}))["data"]
        h = data["households"]["pageInfo"]["endCursor"]
        if step % 2:
            c = data["complaints"]["pageInfo"]["endCursor"]
    after: str | None = None
    for _ in range(4):
        data = (await pair.both("admin", ONE_CURSOR_TWICE, {"c": after}))["data"]
        assert [e["node"]["id"] for e in data["a"]["edges"]] == [e["node"]["id"] for e in data["b"]["edges"]][:3]
        after = data["a"]["pageInfo"]["endCursor"]
