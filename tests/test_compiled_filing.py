"""A plain ``fileComplaint`` filed by one compiled statement writes and answers exactly as the service does.

Two real servers share one database seeded with the demo district: one files plain complaints with one statement
(the default), the other runs every operation through the resolvers (``RUJUK_COMPILED_READS=0``). The same input
is filed on both, as every role that may file, and the rows each wrote (complaint, assignment, case event, audit
entry, idempotency key) and the answers must agree; filings the statement does not make (bad data, another
household's member, an assignee, a replayed key, a deactivated account) must get the service's answer from both,
and write nothing more."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from domain.events import EVENT_ORDER_LOCK
from schema.relay import from_global_id, to_global_id
from tests.conftest import scratch_database
from tests.support.demo import seed_demo_district
from tests.support.servers import ServerProcess, compiled_and_resolved

PASSWORD = "rujuk-demo"
FILERS = ["fasilitator01", "puskesos1", "supervisor1", "manajer", "admin"]

FILE = """
mutation File($input: FileComplaintInput!) {
  __typename
  filed: fileComplaint(input: $input) {
    __typename replayed
    errors { __typename field message code }
    complaint {
      __typename id kind sector description channel priority status regionCode slaDueAt slaState decision
      statusReason closedAt reportedAt version createdAt updatedAt ... on Node { nodeId: id }
      household { id address rt members { id nikMasked } }
      referrals { id status }
    }
  }
}"""

#: the fields the bench and the tablets ask for
SHORT = """
mutation($input: FileComplaintInput!) {
  fileComplaint(input: $input) { complaint { id status slaDueAt createdAt } replayed errors { code } }
}"""

#: a selection the statement does not write: the resolvers answer it
WITH_ASSIGNEE = """
mutation($input: FileComplaintInput!) {
  fileComplaint(input: $input) { complaint { id assignee { username } } errors { code } }
}"""


def _pk(gid: str) -> int:
    """The key of a global id of any type."""
    parsed = from_global_id(gid)
    assert parsed is not None
    return int(parsed[1])


@pytest.fixture(scope="module")
def demo_database(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "rujuk_filing", migrated=True) as url:
        seed_demo_district(url, households=240)
        yield url


@pytest.fixture(scope="module")
def servers(demo_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess,
                                                                                             ServerProcess]]:
    with compiled_and_resolved(demo_database, Path(tmp_path_factory.mktemp("filing"))) as pair:
        yield pair


@pytest.fixture
async def conn(demo_database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(demo_database.replace("postgresql+asyncpg://", "postgresql://"))
    yield connection
    await connection.close()


class Pair:
    """One client per server, each logged in (on its own server) as the same accounts."""

    def __init__(self, compiled: httpx.AsyncClient, resolved: httpx.AsyncClient) -> None:
        self.clients = {"compiled": compiled, "resolved": resolved}
        self.tokens: dict[tuple[str, str], str] = {}

    async def login(self, username: str) -> None:
        query = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }"
        for side, client in self.clients.items():
            body = (await client.post("/graphql", json={"query": query,
                                                        "variables": {"u": username, "p": PASSWORD}})).json()
            self.tokens[side, username] = body["data"]["login"]["accessToken"]

    async def post(self, side: str, who: str | None, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.tokens[side, who]}"} if who else {}
        response = await self.clients[side].post("/graphql", json={"query": query, "variables": variables},
                                                  headers=headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        for error in answer.get("errors") or []:
            error.get("extensions", {}).pop("requestId", None)
            error["message"] = re.sub(r"reference \w+", "reference", error["message"])
        return answer

    async def household(self, who: str, *, outside: str | None = None) -> str:
        """A household in ``who``'s area (or, with ``outside``, in ``who``'s area but not in that account's)."""
        query = "query($after: String) { households(first: 100, after: $after) { edges { node { id } } } }"
        found = (await self.post("resolved", who, query, {"after": None}))["data"]["households"]["edges"]
        ids = [edge["node"]["id"] for edge in found]
        if outside is not None:
            theirs = (await self.post("resolved", outside, query, {"after": None}))["data"]["households"]["edges"]
            ids = [i for i in ids if i not in {edge["node"]["id"] for edge in theirs}]
        assert ids, who
        return ids[-1]


@pytest.fixture(scope="module")
async def pair(servers: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[Pair]:
    compiled, resolved = servers
    async with httpx.AsyncClient(base_url=compiled.http, timeout=60) as a, \
            httpx.AsyncClient(base_url=resolved.http, timeout=60) as b:
        p = Pair(a, b)
        for username in [*FILERS, "fasilitator02", "fasilitator03"]:
            await p.login(username)
        yield p


def _filed_count(server: ServerProcess) -> float:
    metrics = httpx.get(f"{server.http}/metrics").text
    found = re.search(r"^rujuk_compiled_filings_total (\S+)$", metrics, re.M)
    return float(found.group(1)) if found else 0.0


def _input(household: str, **more: Any) -> dict[str, Any]:
    return {"idempotencyKey": str(uuid.uuid4()), "householdId": household, "sector": "HEALTH", "kind": "COMPLAINT",
            "channel": "FACILITATOR_VISIT", "priority": "NORMAL",
            "description": "  Ibu menderita hipertensi, belum memiliki KIS — \"tidak sanggup\" berobat.\n", **more}


async def _written(conn: asyncpg.Connection, complaint_id: int) -> dict[str, Any]:
    """Everything a filing wrote, minus what differs between two filings (ids, times)."""
    row = dict(await conn.fetchrow("SELECT * FROM complaints WHERE id = $1", complaint_id))
    assignments = [dict(r) for r in await conn.fetch(
        "SELECT from_staff_id, to_staff_id, by_staff_id, reason FROM assignments WHERE complaint_id = $1",
        complaint_id)]
    events = [dict(r) for r in await conn.fetch("SELECT * FROM case_events WHERE complaint_id = $1", complaint_id)]
    assert len(events) == 1
    event = events[0]
    audits = [dict(r) for r in await conn.fetch(
        "SELECT * FROM audit_log WHERE action = 'CHANGE' AND detail->'events' @> to_jsonb($1::bigint)", event["id"])]
    assert len(audits) == 1
    audit = audits[0]
    keys = [dict(r) for r in await conn.fetch("SELECT * FROM idempotency_keys WHERE result_id = $1 AND "
                                              "operation = 'fileComplaint'", complaint_id)]
    # the stamp follows commit order: taken after the event's id, at or after the row was written
    assert row["updated_at"] >= row["created_at"]
    window = row["sla_due_at"] - row["sla_started_at"]
    for name in ("id", "created_at", "updated_at", "sla_started_at", "sla_due_at"):
        row.pop(name)
    return {
        "complaint": row, "window": window, "assignments": assignments,
        "event": {k: v for k, v in event.items() if k not in {"id", "occurred_at", "complaint_id"}},
        "audit": {"actor_id": audit["actor_id"], "entity_type": audit["entity_type"], "origin": audit["origin"],
                  "entity_id": audit["entity_id"], "detail": audit["detail"].replace(str(event["id"]), "E")},
        "keys": [{k: v for k, v in key.items() if k not in {"key", "created_at", "result_id"}} for key in keys],
    }


async def _counts(conn: asyncpg.Connection) -> list[int]:
    """The rows of every table a filing writes to."""
    return list(await conn.fetchrow(
        "SELECT (SELECT count(*) FROM complaints), (SELECT count(*) FROM assignments), "
        "(SELECT count(*) FROM case_events), (SELECT count(*) FROM audit_log), "
        "(SELECT count(*) FROM idempotency_keys), (SELECT coalesce(sum(attempts), 0) FROM idempotency_keys)"))


def _normalised(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with what differs between two filings (the new complaint's id and times) taken out."""
    complaint = ((answer.get("data") or {}).get("filed") or {}).get("complaint")
    if complaint:
        for name in ("id", "nodeId", "createdAt", "updatedAt", "slaDueAt"):
            complaint[name] = "*"
    return answer


@pytest.mark.parametrize("who", FILERS)
@pytest.mark.parametrize("variant", ["plain", "reported", "no key", "short"])
async def test_a_plain_filing_writes_and_answers_as_the_service_does(
        pair: Pair, servers: tuple[ServerProcess, ServerProcess], conn: asyncpg.Connection, who: str,
        variant: str) -> None:
    household = await pair.household(who)
    reported = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).astimezone(dt.timezone(dt.timedelta(hours=7)))
    given = _input(household, priority="HIGH", sector="EDUCATION", kind="QUESTION", channel="HOTLINE")
    if variant == "reported":
        given["reportedAt"] = reported.isoformat()
    if variant == "no key":
        del given["idempotencyKey"]
    query = SHORT if variant == "short" else FILE
    before = _filed_count(servers[0])
    answers, written = {}, {}
    for side in ("compiled", "resolved"):
        started = dt.datetime.now(dt.UTC)
        answer = await pair.post(side, who, query, {"input": {**given, "idempotencyKey": str(uuid.uuid4())}
                                                    if "idempotencyKey" in given else given})
        root = answer["data"]["filed" if query is FILE else "fileComplaint"]
        assert root["errors"] == [] and root["replayed"] is False, answer
        complaint = root["complaint"]
        complaint_id = _pk(complaint["id"])
        stored = await conn.fetchrow("SELECT created_at, updated_at, sla_due_at FROM complaints WHERE id = $1",
                                     complaint_id)
        assert complaint["createdAt"] == stored["created_at"].isoformat()
        assert complaint["slaDueAt"] == stored["sla_due_at"].isoformat()
        assert stored["created_at"] >= started - dt.timedelta(seconds=5)
        if side == "compiled" and query is FILE:
            # the answer shows the row as stored (the service answers before its commit stamps it)
            assert complaint["updatedAt"] == stored["updated_at"].isoformat()
            assert complaint["nodeId"] == complaint["id"]
        written[side] = await _written(conn, complaint_id)
        answers[side] = _normalised(answer) if query is FILE else {"status": complaint["status"]}
    assert _filed_count(servers[0]) == before + 1, "the compiled server filed it with one statement"
    assert written["compiled"] == written["resolved"]
    assert answers["compiled"] == answers["resolved"]
    complaint_row = written["compiled"]["complaint"]
    assert complaint_row["description"] == given["description"].strip()
    if variant == "reported":
        assert complaint_row["reported_at"] == reported
    assert written["compiled"]["keys"] == ([] if variant == "no key" else
                                           [{"actor_id": complaint_row["filed_by_id"], "operation": "fileComplaint",
                                             "attempts": 1}])


async def test_filings_the_service_makes_answer_the_same(pair: Pair, servers: tuple[ServerProcess, ServerProcess],
                                                          conn: asyncpg.Connection) -> None:
    who = "fasilitator01"
    household = await pair.household(who)
    elsewhere = await pair.household("admin", outside=who)
    member = await conn.fetchval("SELECT id FROM members WHERE household_id = $1 LIMIT 1", _pk(household))
    other_member = await conn.fetchval("SELECT id FROM members WHERE household_id <> $1 LIMIT 1", _pk(household))
    program = await conn.fetchrow("SELECT id, sector FROM programs WHERE active LIMIT 1")
    me = await conn.fetchval("SELECT id FROM staff WHERE username = $1", who)
    now = dt.datetime.now(dt.UTC)
    cases: list[tuple[str | None, dict[str, Any]]] = [
        (who, _input(household, description="   ")),
        (who, _input(household, description="x" * 4001)),
        (who, _input(household, reportedAt=now.replace(tzinfo=None).isoformat())),
        (who, _input(household, reportedAt=(now + dt.timedelta(days=1)).isoformat())),
        (who, _input(household, reportedAt=(now - dt.timedelta(days=400)).isoformat())),
        (who, _input(elsewhere)),
        (who, _input("not-a-global-id")),
        (who, _input(to_global_id("Member", member))),
        (who, _input(to_global_id("Household", 10**9))),
        (who, _input(household, idempotencyKey="k" * 101)),
        (who, _input(household, idempotencyKey="   ")),
        (who, _input(household, memberId=to_global_id("Member", other_member))),
        (who, _input(household, memberId=to_global_id("Member", member))),
        (who, _input(household, programId=to_global_id("Program", program["id"]),
                     sector="FOOD" if program["sector"] != "FOOD" else "HEALTH")),
        (who, _input(household, programId=to_global_id("Program", program["id"]), sector=program["sector"])),
        (who, _input(household, assigneeId=to_global_id("Staff", me))),
        (None, _input(household)),
    ]
    before = _filed_count(servers[0])
    for i, (account, given) in enumerate(cases):
        counts = []
        answers = []
        for side in ("compiled", "resolved"):
            start = await _counts(conn)
            fresh = len(given["idempotencyKey"]) == 36  # (a good key: each side files with its own)
            answer = await pair.post(side, account, FILE, {"input": {**given, "idempotencyKey": str(uuid.uuid4())}
                                                           if fresh else given})
            answers.append(_normalised(answer))
            counts.append([b - a for a, b in zip(start, await _counts(conn), strict=True)])
        assert answers[0] == answers[1], (i, answers)
        assert counts[0] == counts[1], (i, counts)
    answer = await pair.post("compiled", who, WITH_ASSIGNEE, {"input": _input(household)})
    assert answer["data"]["fileComplaint"]["complaint"]["assignee"] == {"username": who}
    assert _filed_count(servers[0]) == before, "the service filed every one of these"


async def test_a_replayed_key_answers_the_first_filing(pair: Pair, servers: tuple[ServerProcess, ServerProcess],
                                                        conn: asyncpg.Connection) -> None:
    who = "fasilitator02"
    given = _input(await pair.household(who))
    before = _filed_count(servers[0])
    first = await pair.post("compiled", who, FILE, {"input": given})
    again = [await pair.post("compiled", who, FILE, {"input": {**given, "description": "changed"}})
             for _ in range(3)]
    assert _filed_count(servers[0]) == before + 1
    assert first["data"]["filed"]["replayed"] is False
    for answer in again:
        assert answer["data"]["filed"]["replayed"] is True
        assert answer["data"]["filed"]["complaint"] == first["data"]["filed"]["complaint"]
    key = await conn.fetchrow("SELECT * FROM idempotency_keys WHERE key = $1", given["idempotencyKey"])
    assert key["attempts"] == 4 and key["result_id"] == _pk(first["data"]["filed"]["complaint"]["id"])


async def test_concurrent_sends_of_one_key_file_once(pair: Pair, conn: asyncpg.Connection) -> None:
    who = "fasilitator03"
    given = _input(await pair.household(who))
    answers = await asyncio.gather(*(pair.post("compiled", who, SHORT, {"input": given}) for _ in range(8)))
    ids = {a["data"]["fileComplaint"]["complaint"]["id"] for a in answers}
    assert len(ids) == 1
    assert sorted(a["data"]["fileComplaint"]["replayed"] for a in answers) == [False] + [True] * 7
    assert await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", given["idempotencyKey"]) == 1
    assert await conn.fetchval("SELECT count(*) FROM case_events WHERE complaint_id = $1", _pk(ids.pop())) == 1


async def test_the_filing_is_in_the_event_feed_in_commit_order(pair: Pair, conn: asyncpg.Connection) -> None:
    who = "supervisor1"
    changes = "query($after: String) { changes(after: $after, first: 50) { endCursor events { kind complaintId " \
              "data } } }"
    cursor = (await pair.post("compiled", who, changes, {"after": None}))["data"]["changes"]["endCursor"]
    while True:  # to the end of the feed
        page = (await pair.post("compiled", who, changes, {"after": cursor}))["data"]["changes"]
        if not page["events"]:
            break
        cursor = page["endCursor"]
    household = await pair.household(who)
    filed = await asyncio.gather(*(pair.post("compiled", who, SHORT, {"input": _input(household)}) for _ in range(5)))
    ids = [a["data"]["fileComplaint"]["complaint"]["id"] for a in filed]
    page = (await pair.post("compiled", who, changes, {"after": cursor}))["data"]["changes"]
    assert sorted(e["complaintId"] for e in page["events"]) == sorted(ids)
    assert all(e["kind"] == "COMPLAINT_FILED" and e["data"]["status"] == "NEW" for e in page["events"])
    # ids and stamps were taken under the event-order lock: the later event stamped its complaint later
    rows = await conn.fetch("SELECT e.id, c.updated_at FROM case_events e JOIN complaints c ON c.id = e.complaint_id "
                            "WHERE e.complaint_id = ANY($1::bigint[]) ORDER BY e.id", [_pk(i) for i in ids])
    stamps = [r["updated_at"] for r in rows]
    assert stamps == sorted(stamps)


async def test_a_deactivated_account_files_nothing(pair: Pair, servers: tuple[ServerProcess, ServerProcess],
                                                   conn: asyncpg.Connection) -> None:
    who = "fasilitator02"
    household = await pair.household(who)
    first = await pair.post("compiled", who, SHORT, {"input": _input(household)})
    assert first["data"]["fileComplaint"]["complaint"]  # the server now remembers the account
    await conn.execute("UPDATE staff SET active = false WHERE username = $1", who)
    try:
        before = await conn.fetchval("SELECT count(*) FROM complaints")
        filed = _filed_count(servers[0])
        answers = [await pair.post(side, who, SHORT, {"input": _input(household)})
                   for side in ("compiled", "resolved")]
        assert answers[0] == answers[1]
        assert answers[0]["data"]["fileComplaint"] == {"complaint": None, "replayed": False,
                                                       "errors": [{"code": "UNAUTHENTICATED"}]}
        assert await conn.fetchval("SELECT count(*) FROM complaints") == before
        assert _filed_count(servers[0]) == filed
    finally:
        await conn.execute("UPDATE staff SET active = true WHERE username = $1", who)


#: how a filing statement begins (PostgreSQL shows the first 1,024 characters of a statement)
FILING_SQL = "WITH given (ord, "


async def _waiting(conn: asyncpg.Connection, text: str, *, advisory: bool | None = None) -> None:
    """Until a backend running a statement that begins with ``text`` waits for a lock (with ``advisory``: for
    the event-order lock, or for anything else)."""
    for _ in range(200):
        if await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                               "AND starts_with(query, $1) AND ($2::boolean IS NULL OR $2 = (wait_event = 'advisory'))",
                               text, advisory):
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the filing never waited for the lock")


async def test_the_stamp_and_the_event_id_are_taken_after_the_event_order_lock(
        pair: Pair, servers: tuple[ServerProcess, ServerProcess], conn: asyncpg.Connection) -> None:
    who = "puskesos1"
    household = await pair.household(who)
    await pair.post("compiled", who, SHORT, {"input": _input(household)})  # the account is remembered
    before = _filed_count(servers[0])
    await conn.execute("SELECT pg_advisory_lock($1)", EVENT_ORDER_LOCK)
    try:
        filing = asyncio.create_task(pair.post("compiled", who, SHORT, {"input": _input(household)}))
        await _waiting(conn, FILING_SQL, advisory=True)
        held = await conn.fetchrow("SELECT clock_timestamp() AS at, (SELECT max(id) FROM case_events) AS event")
        await asyncio.sleep(0.05)
        assert not filing.done()
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", EVENT_ORDER_LOCK)
    answer = await filing
    assert _filed_count(servers[0]) == before + 1
    complaint_id = _pk(answer["data"]["fileComplaint"]["complaint"]["id"])
    row = await conn.fetchrow("SELECT c.updated_at, e.id FROM complaints c JOIN case_events e ON "
                              "e.complaint_id = c.id WHERE c.id = $1", complaint_id)
    assert row["updated_at"] > held["at"] and row["id"] > held["event"]


@pytest.mark.parametrize("key", [True, False])
async def test_a_filing_waits_for_a_locked_household_before_the_event_order_lock(
        pair: Pair, servers: tuple[ServerProcess, ServerProcess], demo_database: str, key: bool) -> None:
    """A household update holds the row and then takes the event-order lock to commit: a filing for that
    household, with an idempotency key or without, must wait for the row without holding the lock (else the two
    deadlock)."""
    who = "puskesos1"
    household = await pair.household(who)
    await pair.post("compiled", who, SHORT, {"input": _input(household)})
    before = _filed_count(servers[0])
    updater = await asyncpg.connect(demo_database.replace("postgresql+asyncpg://", "postgresql://"))
    watcher = await asyncpg.connect(demo_database.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with updater.transaction():
            await updater.execute("SELECT 1 FROM households WHERE id = $1 FOR UPDATE", _pk(household))
            given = _input(household) if key else _input(household, idempotencyKey=None)
            filing = asyncio.create_task(pair.post("compiled", who, SHORT, {"input": given}))
            await _waiting(watcher, FILING_SQL, advisory=False)
            await updater.execute("SET LOCAL lock_timeout = '3s'")
            await updater.execute("SELECT pg_advisory_xact_lock($1)", EVENT_ORDER_LOCK)  # granted: nobody holds it
        answer = await filing
    finally:
        await updater.close()
        await watcher.close()
    assert answer["data"]["fileComplaint"]["errors"] == [] and answer["data"]["fileComplaint"]["complaint"]
    assert _filed_count(servers[0]) == before + 1


async def test_documents_the_statement_leaves_to_the_service(pair: Pair, servers: tuple[ServerProcess, ServerProcess],
                                                             conn: asyncpg.Connection) -> None:
    """The audit entry names the root fields of the document's operations: a fragment at the root or a second
    operation is filed by the service, which names them as it always has."""
    who = "fasilitator01"
    household = await pair.household(who)
    documents = [
        ("mutation { ...F } fragment F on Mutation { fileComplaint(input: $input) { complaint { id } } }"
         .replace("mutation {", "mutation($input: FileComplaintInput!) {"), None),
        ("mutation A($input: FileComplaintInput!) { fileComplaint(input: $input) { complaint { id } } } "
         "query B { __typename }", "A"),
    ]
    before = _filed_count(servers[0])
    for document, name in documents:
        details = []
        for side in ("compiled", "resolved"):
            headers = {"authorization": f"Bearer {pair.tokens[side, who]}"}
            response = await pair.clients[side].post("/graphql", headers=headers, json={
                "query": document, "operationName": name, "variables": {"input": _input(household)}})
            complaint = response.json()["data"]["fileComplaint"]["complaint"]
            event = await conn.fetchval("SELECT id FROM case_events WHERE complaint_id = $1", _pk(complaint["id"]))
            details.append(await conn.fetchval("SELECT detail->>'operation' FROM audit_log WHERE action = 'CHANGE' "
                                               "AND detail->'events' @> to_jsonb($1::bigint)", event))
        assert details[0] == details[1], (document, details)
    assert _filed_count(servers[0]) == before


# -- group commit (server.filing_batches): filings that arrive while one is being written go together --------------

DESCRIBED = """
mutation($input: FileComplaintInput!) {
  fileComplaint(input: $input) { complaint { id description household { id } } errors { code } }
}"""


def _metric(server: ServerProcess, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", httpx.get(f"{server.http}/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


async def _queued(server: ServerProcess, count: int) -> None:
    """Until ``count`` filings wait for the transaction in flight."""
    for _ in range(400):
        if _metric(server, "rujuk_filings_waiting") == count:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{_metric(server, 'rujuk_filings_waiting')} filings waiting, not {count}")


#: the filing transactions a server keeps in flight (``RUJUK_FILING_TRANSACTIONS``, its default)
IN_FLIGHT = 1


async def _lock_waiters(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))


async def _occupy(pair: Pair, conn: asyncpg.Connection, who: str, household: str) -> list[asyncio.Task[Any]]:
    """With the event-order lock held: one filing per transaction the server keeps in flight, each sent and
    waiting in PostgreSQL for the lock; the filings sent after them wait in the server, to go together."""
    tasks = []
    for sent in range(1, IN_FLIGHT + 1):
        tasks.append(asyncio.create_task(pair.post("compiled", who, SHORT, {"input": _input(household)})))
        for _ in range(400):
            if await _lock_waiters(conn) == sent:
                break
            await asyncio.sleep(0.025)
        else:
            raise AssertionError(f"{await _lock_waiters(conn)} filings wait for the lock, not {sent}")
    return tasks


async def _households(pair: Pair, who: str, count: int) -> list[str]:
    """``count`` households in ``who``'s area, after a filing that makes the compiled server remember the account
    (a request that authenticates it first runs in its own unit of work, not with the others)."""
    query = "query { households(first: 100) { edges { node { id } } } }"
    edges = (await pair.post("resolved", who, query, {}))["data"]["households"]["edges"]
    assert len(edges) >= count
    await pair.post("compiled", who, SHORT, {"input": _input(edges[0]["node"]["id"])})
    return [edge["node"]["id"] for edge in edges[:count]]


class _Held:
    """The event-order lock, held by a connection of the test's while the server's filings queue behind it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> _Held:
        await self.conn.execute("SELECT pg_advisory_lock($1)", EVENT_ORDER_LOCK)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.execute("SELECT pg_advisory_unlock($1)", EVENT_ORDER_LOCK)


async def _transactions(conn: asyncpg.Connection, complaint_ids: list[int]) -> dict[int, str]:
    """The transaction that wrote each complaint's event."""
    rows = await conn.fetch("SELECT complaint_id, xmin::text AS tx FROM case_events WHERE complaint_id = ANY($1)",
                            complaint_ids)
    return {r["complaint_id"]: r["tx"] for r in rows}


async def test_filings_that_arrive_while_one_is_written_commit_together(
        pair: Pair, servers: tuple[ServerProcess, ServerProcess], conn: asyncpg.Connection) -> None:
    """The first filing waits for the lock; ten more, from four accounts and with two documents, queue behind it
    and commit in one transaction per document (per JSON answer), each with its own rows and its own answer."""
    accounts = ["fasilitator01", "fasilitator02", "puskesos1", "supervisor1"]
    places = {who: await _households(pair, who, 3) for who in accounts}
    filed = _filed_count(servers[0])
    async with _Held(conn):
        first = await _occupy(pair, conn, "puskesos1", places["puskesos1"][0])
        sent = []
        for i in range(10):
            who = accounts[i % len(accounts)]
            given = _input(places[who][i % 3], description=f"Keluhan nomor {i}: anak belum menerima PIP.")
            sent.append((who, given, asyncio.create_task(pair.post("compiled", who, DESCRIBED if i % 2 else SHORT,
                                                                   {"input": given}))))
        await _queued(servers[0], 10)
    ids = []
    for i, (who, given, task) in enumerate(sent):
        answer = (await task)["data"]["fileComplaint"]
        assert answer["errors"] == [] and answer["complaint"], answer
        if i % 2:  # each request got its own filing's payload
            assert answer["complaint"]["description"] == given["description"]
            assert answer["complaint"]["household"]["id"] == given["householdId"]
        row = await conn.fetchrow("SELECT c.id, c.description, c.household_id, s.username FROM complaints c "
                                  "JOIN staff s ON s.id = c.filed_by_id WHERE c.id = $1",
                                  _pk(answer["complaint"]["id"]))
        assert (row["description"], row["household_id"], row["username"]) == (
            given["description"], _pk(given["householdId"]), who)
        ids.append(row["id"])
    before = [_pk((await task)["data"]["fileComplaint"]["complaint"]["id"]) for task in first]
    assert _filed_count(servers[0]) == filed + IN_FLIGHT + 10
    together = await _transactions(conn, ids)
    assert len(together) == 10
    # one transaction for the filings answering with the same JSON: the short document's, from every account;
    # the other's, whose household may read differently by role, at most one per account
    short, described = ({together[i] for n, i in enumerate(ids) if n % 2 == odd} for odd in (0, 1))
    assert len(short) == 1 and 1 <= len(described) <= len(accounts) and not short & described
    assert not set((await _transactions(conn, before)).values()) & set(together.values())
    # one event, one CHANGE entry and one key per filing; ids and stamps in order, after the first filing's
    rows = await conn.fetch("SELECT e.id, c.updated_at, (SELECT count(*) FROM audit_log a WHERE a.action = 'CHANGE' "
                            "AND a.detail->'events' = jsonb_build_array(e.id)) AS audited, "
                            "(SELECT count(*) FROM idempotency_keys k WHERE k.result_id = c.id) AS keys "
                            "FROM case_events e JOIN complaints c ON c.id = e.complaint_id "
                            "WHERE e.complaint_id = ANY($1) ORDER BY e.id", ids)
    assert [r["audited"] for r in rows] == [1] * 10 and [r["keys"] for r in rows] == [1] * 10
    assert [r["updated_at"] for r in rows] == sorted(r["updated_at"] for r in rows)


async def test_a_transaction_postgresql_refuses_is_sent_again_filing_by_filing(
        pair: Pair, servers: tuple[ServerProcess, ServerProcess], conn: asyncpg.Connection) -> None:
    """PostgreSQL refuses one filing of a transaction, once (a trigger of the test's): nothing of the transaction
    was written, so each filing is sent again alone, and every one lands, once."""
    who = "fasilitator01"
    households = await _households(pair, who, 4)
    await conn.execute("""
        CREATE SEQUENCE refuse_test_filing_once;
        CREATE FUNCTION refuse_test_filing() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF nextval('refuse_test_filing_once') = 1 THEN RAISE EXCEPTION 'refused by the test'; END IF;
              RETURN NEW; END $$;
        CREATE TRIGGER refuse_test_filing BEFORE INSERT ON complaints FOR EACH ROW
        WHEN (NEW.description = 'Ditolak sekali oleh basis data.') EXECUTE FUNCTION refuse_test_filing();""")
    try:
        async with _Held(conn):
            first = await _occupy(pair, conn, who, households[0])
            given = [*(_input(h) for h in households[:2]),
                     _input(households[1], description="Ditolak sekali oleh basis data."),
                     *(_input(h) for h in households[2:])]
            tasks = [asyncio.create_task(pair.post("compiled", who, SHORT, {"input": g})) for g in given]
            await _queued(servers[0], 5)
        await asyncio.gather(*first)
        answers = [await task for task in tasks]
        assert await conn.fetchval("SELECT last_value FROM refuse_test_filing_once") == 2  # refused, then filed
    finally:
        await conn.execute("DROP TRIGGER refuse_test_filing ON complaints; DROP FUNCTION refuse_test_filing(); "
                           "DROP SEQUENCE refuse_test_filing_once")
    assert all(a["data"]["fileComplaint"]["errors"] == [] for a in answers)
    ids = [_pk(a["data"]["fileComplaint"]["complaint"]["id"]) for a in answers]
    assert len(set((await _transactions(conn, ids)).values())) == 5  # each alone
    keys = [g["idempotencyKey"] for g in given]
    assert await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = ANY($1)", keys) == 5
    assert await conn.fetchval("SELECT count(*) FROM case_events WHERE complaint_id = ANY($1)", ids) == 5


async def test_a_batch_locks_its_rows_before_the_event_order_lock(
        pair: Pair, servers: tuple[ServerProcess, ServerProcess], demo_database: str,
        conn: asyncpg.Connection) -> None:
    """A household update holds its row and then takes the event-order lock to commit. A transaction of two
    filings without idempotency keys has the second for that household: it must wait for the row before it takes
    the lock (with no key to claim, only its reading every household first makes it), else the two deadlock
    (PostgreSQL would break it by failing one)."""
    who = "puskesos1"
    households = await _households(pair, who, 3)
    updater = await asyncpg.connect(demo_database.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with updater.transaction():
            await updater.execute("SELECT 1 FROM households WHERE id = $1 FOR UPDATE", _pk(households[2]))
            async with _Held(conn):
                first = await _occupy(pair, conn, who, households[0])
                tasks = [asyncio.create_task(pair.post("compiled", who, SHORT, {"input": _input(
                    h, idempotencyKey=None)})) for h in households[1:]]
                await _queued(servers[0], 2)
            await asyncio.gather(*first)
            await _waiting(conn, FILING_SQL, advisory=False)  # (for the household's row)
            await updater.execute("SET LOCAL lock_timeout = '3s'")
            await updater.execute("SELECT pg_advisory_xact_lock($1)", EVENT_ORDER_LOCK)  # granted: nobody holds it
        answers = [await task for task in tasks]
    finally:
        await updater.close()
    ids = [_pk(a["data"]["fileComplaint"]["complaint"]["id"]) for a in answers]
    assert len(set((await _transactions(conn, ids)).values())) == 1  # together, not failed and sent again alone


async def test_a_batch_the_database_lost_is_reported_unsure_and_can_be_sent_again(
        pair: Pair, servers: tuple[ServerProcess, ServerProcess], demo_database: str,
        conn: asyncpg.Connection) -> None:
    who = "fasilitator02"
    households = await _households(pair, who, 3)
    other = await asyncpg.connect(demo_database.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with _Held(conn):
            first = await _occupy(pair, conn, who, households[0])
            given = [_input(h) for h in households[1:]]
            tasks = [asyncio.create_task(pair.post("compiled", who, SHORT, {"input": g})) for g in given]
            await _queued(servers[0], 2)
            # the next holder of the lock, after the filings in flight: the batch will wait for it
            taken = asyncio.create_task(other.execute("SELECT pg_advisory_lock($1)", EVENT_ORDER_LOCK))
            for _ in range(200):
                if await _lock_waiters(conn) == IN_FLIGHT + 1:
                    break
                await asyncio.sleep(0.025)
        await asyncio.gather(*first)
        await taken
        await _waiting(conn, FILING_SQL, advisory=True)
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND starts_with(query, $1)", FILING_SQL)
        answers = [await task for task in tasks]
    finally:
        await other.close()
    for answer in answers:
        assert answer["data"] is None
        assert answer["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "may not have been saved" in answer["errors"][0]["message"]
    keys = [g["idempotencyKey"] for g in given]
    assert await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = ANY($1)", keys) == 0
    again = [await pair.post("compiled", who, SHORT, {"input": g}) for g in given]
    assert all(a["data"]["fileComplaint"]["complaint"] and not a["data"]["fileComplaint"]["replayed"] for a in again)


async def test_a_key_in_flight_waits_for_its_transaction(demo_database: str, conn: asyncpg.Connection) -> None:
    """With two filing transactions in flight (``RUJUK_FILING_TRANSACTIONS=2``), a resend of a key whose filing is
    in the other transaction is not sent beside it (in one transaction after another statement had taken the
    lock, its key's insert could wait for the other, which waits for that lock): it goes once that one ended,
    alone, finds the key used and writes nothing (the service answers the replay)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from domain.actor import Actor
    from domain.complaints import at_once
    from domain.complaints.service import ComplaintData
    from domain.enums import Channel, ComplaintKind, Priority, Role, Sector
    from resolvers.compiled import Statement
    from server.filing_batches import FilingBatches
    from server.observability import REGISTRY

    admin = await conn.fetchval("SELECT id FROM staff WHERE username = 'admin'")
    households = [r["id"] for r in await conn.fetch("SELECT id FROM households ORDER BY id LIMIT 2")]
    actor = Actor(id=admin, role=Role.ADMIN, username="admin", regions=None)

    def filing(key: str, household: int, payload: str) -> Statement:
        data = ComplaintData(household_id=household, kind=ComplaintKind.COMPLAINT, sector=Sector.PKH,
                             description="Lansia belum terdaftar PKH.", channel=Channel.FACILITATOR_VISIT,
                             priority=Priority.NORMAL)
        given = at_once.given(actor, data, idempotency_key=key, origin=None, confirm=None, operation="fileComplaint")
        return Statement(sql="", params=[], confirms=False, writes=True, filing=given, payload=payload)

    def sizes() -> tuple[float, float]:
        return (REGISTRY.get_sample_value("rujuk_filing_transaction_size_count") or 0.0,
                REGISTRY.get_sample_value("rujuk_filing_transaction_size_bucket", {"le": "1.0"}) or 0.0)

    engine = create_async_engine(demo_database, pool_size=4)
    batches = FilingBatches(engine, size=64, transactions=2)
    first_key, other_key = str(uuid.uuid4()), str(uuid.uuid4())
    before = sizes()
    try:
        async with _Held(conn):
            first = asyncio.create_task(batches.file(filing(first_key, households[0], "'1'::json")))
            for _ in range(400):
                if await _lock_waiters(conn) == 1:
                    break
                await asyncio.sleep(0.025)
            other = asyncio.create_task(batches.file(filing(other_key, households[1], "'1'::json")))
            resent = asyncio.create_task(batches.file(filing(first_key, households[0], "'2'::json")))
            for _ in range(400):
                if await _lock_waiters(conn) == 2:
                    break
                await asyncio.sleep(0.025)
            await asyncio.sleep(0.1)
            assert not resent.done()
        rows = [await first, await other, await resent]
    finally:
        await engine.dispose()
    assert [row[2] is not None for row in rows] == [True, True, False]
    count, alone = sizes()
    assert (count - before[0], alone - before[1]) == (3, 3)  # three transactions, each of one filing
    assert await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = ANY($1)",
                               [first_key, other_key]) == 2


@pytest.mark.parametrize("transactions", [1, 2])
async def test_every_filing_of_clients_filing_back_to_back_is_answered(demo_database: str, conn: asyncpg.Connection,
                                                                    transactions: int) -> None:
    """Clients each filing again as soon as answered, some resending a key, with two documents: every filing is
    answered (none is left queued with no transaction to send it, e.g. in the moment a sender has found nothing
    more to send but has not yet ended), each key files once, nothing else is written."""
    import random

    from sqlalchemy.ext.asyncio import create_async_engine

    from domain.actor import Actor
    from domain.complaints import at_once
    from domain.complaints.service import ComplaintData
    from domain.enums import Channel, ComplaintKind, Priority, Role, Sector
    from resolvers.compiled import Statement
    from server.filing_batches import FilingBatches

    admin = await conn.fetchval("SELECT id FROM staff WHERE username = 'admin'")
    households = [r["id"] for r in await conn.fetch("SELECT id FROM households ORDER BY id LIMIT 40")]
    actor = Actor(id=admin, role=Role.ADMIN, username="admin", regions=None)
    rng = random.Random(transactions)
    keys = [str(uuid.uuid4()) for _ in range(150)]
    engine = create_async_engine(demo_database, pool_size=4)
    batches = FilingBatches(engine, size=64, transactions=transactions)

    async def client(n: int) -> list[Any]:
        rows = []
        for _ in range(12):
            data = ComplaintData(household_id=rng.choice(households), kind=ComplaintKind.COMPLAINT,
                                 sector=Sector.FOOD, description="Belum menerima bantuan pangan.",
                                 channel=Channel.FACILITATOR_VISIT, priority=Priority.NORMAL)
            given = at_once.given(actor, data, idempotency_key=rng.choice(keys), origin=None, confirm=None,
                                  operation="fileComplaint")
            rows.append(await batches.file(Statement(sql="", params=[], confirms=False, writes=True, filing=given,
                                                     payload=f"'{n % 2}'::json")))
        return rows

    try:
        answered = await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(24))), timeout=30)
    finally:
        await engine.dispose()
    rows = [row for rows in answered for row in rows]
    assert len(rows) == 24 * 12
    filed = [row for row in rows if row[2] is not None]
    used = await conn.fetch("SELECT key, result_id FROM idempotency_keys WHERE key = ANY($1)", keys)
    assert len(filed) == len(used) == len({row["key"] for row in used})  # each key used filed once, no more
    assert await conn.fetchval("SELECT count(*) FROM complaints WHERE id = ANY($1)",
                               [row["result_id"] for row in used]) == len(used)
    assert await conn.fetchval("SELECT count(*) FROM case_events WHERE complaint_id = ANY($1)",
                               [row["result_id"] for row in used]) == len(used)
