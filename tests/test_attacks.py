"""Attacks against a real uvicorn process over HTTP and WebSocket, one per test.

Each attack must get a clear client error (never a 500, a stack trace, SQL, a driver's name or a NIK), and
where it tried to write, the database must be unchanged afterwards (rows counted with asyncpg). The last test
checks every response any test in this module received, and the servers' logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from domain.enums import Role
from domain.staff.models import Staff
from domain.staff.tokens import TokenSigner
from schema.relay import to_global_id
from server import db
from server.settings import DEV_SECRET_KEY
from tests.conftest import PASSWORD, PASSWORD_HASH, LiveWorld, nik
from tests.support.servers import GraphQLWS, ServerProcess

pytestmark = pytest.mark.e2e

PROD_SECRET = "prod-signing-" + "k" * 40
PROD_PII = "prod-personal-data-" + "p" * 40
#: every response any test received: (what was asked, status, body)
RESPONSES: list[tuple[str, int, str]] = []
#: NIKs and family card numbers the tests stored; none may ever come back in a response or a log line
SECRETS: set[str] = set()
SERVERS: list[ServerProcess] = []


# --- servers -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("attack-servers"))


def _serve(live_database_url: str, log_dir: Path, **env: str) -> Iterator[ServerProcess]:
    server = ServerProcess(live_database_url, log_dir, **env)
    server.start()
    SERVERS.append(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(live_database_url: str, log_dir: Path) -> Iterator[ServerProcess]:
    yield from _serve(live_database_url, log_dir, RUJUK_MAX_SUBSCRIPTIONS_PER_SOCKET="3",
                      RUJUK_WS_INIT_TIMEOUT_SECONDS="1")


@pytest.fixture(scope="module")
def prod(live_database_url: str, log_dir: Path) -> Iterator[ServerProcess]:
    yield from _serve(live_database_url, log_dir, RUJUK_ENV="production", RUJUK_SECRET_KEY=PROD_SECRET,
                      RUJUK_PII_KEY=PROD_PII)


@pytest.fixture(scope="module")
def limited(live_database_url: str, log_dir: Path) -> Iterator[ServerProcess]:
    """Low limits: 1 request a second (burst 3) per principal, 0.2 a second (burst 3) per anonymous address."""
    yield from _serve(live_database_url, log_dir, RUJUK_RATE_LIMIT="1", RUJUK_RATE_BURST="3",
                      RUJUK_ANONYMOUS_RATE_LIMIT="0.2", RUJUK_ANONYMOUS_RATE_BURST="3")


# --- clients that keep what they got -------------------------------------------------------------------------------


async def request(method: str, url: str, *, source: str | None = None, **kwargs: Any) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
    async with httpx.AsyncClient(timeout=30, transport=transport) as http:
        response = await http.request(method, url, **kwargs)
    RESPONSES.append((f"{method} {url}", response.status_code, response.text))
    return response


async def gql(base: str, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None,
              headers: dict[str, str] | None = None, source: str | None = None) -> httpx.Response:
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    return await request("POST", f"{base}/graphql", json={"query": query, "variables": variables or {}},
                         headers=h, source=source)


class WS(GraphQLWS):
    async def receive(self, wait: float = 5.0) -> dict[str, Any]:
        message = await super().receive(wait)
        RESPONSES.append(("ws", 101, json.dumps(message)))
        return message


async def ws_open(url: str, *, token: str | None = None, init: bool = True, origin: str | None = None,
                  cookie: str | None = None) -> WS:
    conn = await connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                         origin=origin, additional_headers={"Cookie": cookie} if cookie else None,  # type: ignore[arg-type]
                         max_queue=None)
    ws = WS(conn)
    if init:
        await ws.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"} if token else {}})
        ack = await ws.receive(5)
        assert ack["type"] == "connection_ack", ack
    return ws


async def closed_with(ws: WS, wait: float = 5.0) -> int | None:
    """The close code once the server has closed the socket (messages before it are read and dropped)."""
    with contextlib.suppress(Exception):
        while True:
            await ws.receive(wait)
    return ws.conn.close_code


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert isinstance(body, dict), body
    return list(body.get("errors") or [])


def codes(response: httpx.Response) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in errors_of(response)]


# --- people and rows -----------------------------------------------------------------------------------------------


@dataclass
class People:
    world: LiveWorld
    ids: dict[str, int]
    tokens: dict[str, str]

    @property
    def province(self) -> str:
        return self.world.province


@pytest.fixture
async def people(live_world: LiveWorld, live_engine: AsyncEngine) -> People:
    """The live district plus an admin and a partner account, with access tokens signed like the test servers
    sign them (so no test spends an anonymous rate-limit token on logging in)."""
    p = live_world.province
    maker = db.make_sessionmaker(live_engine)
    async with maker() as session, session.begin():
        extra = {"admin": Staff(username=f"p{p}-admin", password_hash=PASSWORD_HASH, full_name="Admin",
                                role=Role.ADMIN.value, region_code=None),
                 "partner": Staff(username=f"p{p}-partner", password_hash=PASSWORD_HASH, full_name="BPJS",
                                  role=Role.PARTNER.value, region_code=f"{p}.74")}
        session.add_all(extra.values())
    ids = {name: s.id for name, s in live_world.staff.items()} | {name: s.id for name, s in extra.items()}
    signer = TokenSigner(DEV_SECRET_KEY, access_ttl=600, refresh_ttl=3600)
    tokens = {name: signer.issue(i, "access") for name, i in ids.items()}
    return People(world=live_world, ids=ids, tokens=tokens)


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def rows(live_database_url: str, province: str) -> dict[str, int]:
    """How many rows the province has in every table an attack could write to."""
    conn = await asyncpg.connect(_plain(live_database_url))
    try:
        record = await conn.fetchrow(
            """select (select count(*) from households where region_code like $1) as households,
                      (select count(*) from members m join households h on h.id = m.household_id
                        where h.region_code like $1) as members,
                      (select count(*) from complaints where region_code like $1) as complaints,
                      (select count(*) from referrals where region_code like $1) as referrals,
                      (select count(*) from case_events where region_code like $1) as events,
                      (select count(*) from staff) as staff,
                      (select count(*) from api_keys) as api_keys""", province + ".%")
    finally:
        await conn.close()
    assert record is not None
    return dict(record)


_serial = iter(range(1, 9999))


def household(province: str, *, name: str = "Rahmat Lubis", address: str = "Jl. Imam Bonjol 5") -> dict[str, Any]:
    n = next(_serial)
    kec = f"{province}.74.01"
    born = dt.date(1970, 1, 1) + dt.timedelta(days=n)
    number = nik(kec, born, female=False, serial=n)
    kk = kec.replace(".", "") + f"{n + 500000:010d}"
    SECRETS.update({number, kk})
    return {"regionCode": f"{kec}.1001", "address": address, "familyCards": [kk],
            "members": [{"name": name, "sex": "MALE", "birthDate": born.isoformat(), "relation": "HEAD",
                         "nik": number}]}


REGISTER = """mutation($i: RegisterHouseholdInput!) {
  registerHousehold(input: $i) { household { id } errors { code } } }"""


def register_with(selection: str) -> str:
    return "mutation($i: RegisterHouseholdInput!) { registerHousehold(input: $i) { " + selection + " } }"


async def register(base: str, people: People, token_of: str = "fac_a1") -> str:
    response = await gql(base, REGISTER, {"i": household(people.province)}, token=people.tokens[token_of])
    payload = response.json()["data"]["registerHousehold"]
    assert payload["errors"] == [], payload
    return str(payload["household"]["id"])


# --- query shape limits --------------------------------------------------------------------------------------------


def nested(field: str, depth: int, leaf: str) -> str:
    return f"{field} {{ " * depth + leaf + " }" * depth


async def test_deep_nesting_is_refused_before_anything_runs(server: ServerProcess, people: People,
                                                            live_database_url: str) -> None:
    token = people.tokens["manager"]
    deep = await gql(server.http, "{ regions { " + nested("children", 13, "code") + " } }", token=token)
    assert deep.status_code in {200, 400}
    assert deep.json().get("data") is None and any("depth" in e["message"] for e in errors_of(deep)), deep.text
    # the same depth spread over fragments
    through_fragments = ("{ regions { ...A } } fragment A on Region { children { ...B } } "
                         "fragment B on Region { children { ...C } } fragment C on Region { "
                         + nested("children", 11, "code") + " }")
    deep = await gql(server.http, through_fragments, token=token)
    assert deep.json().get("data") is None and any("depth" in e["message"] for e in errors_of(deep)), deep.text
    # a deep write changes nothing
    before = await rows(live_database_url, people.province)
    deep = await gql(server.http, register_with("household { " + nested("complaints { household", 7, "id")
                                                + " }" * 7 + " } errors { code }"),
                     {"i": household(people.province)}, token=people.tokens["fac_a1"])
    assert deep.json().get("data") is None and any("depth" in e["message"] for e in errors_of(deep)), deep.text
    assert await rows(live_database_url, people.province) == before
    # within the limit it works
    fine = await gql(server.http, "{ regions { " + nested("children", 3, "code") + " } }", token=token)
    assert fine.status_code == 200 and "errors" not in fine.json(), fine.text


async def test_a_spread_of_an_undefined_fragment_is_a_validation_error(server: ServerProcess,
                                                                         people: People) -> None:
    """The depth limit measures through fragments: one that is not defined is the client's error (it was a 500
    for an account the compiled reads knew, and an error without a code otherwise)."""
    token = people.tokens["manager"]
    for _ in range(2):  # the first request loads the account, the second takes the compiled path
        for document in ["{ complaints(first: 2) { edges { node { household { ...oN } } } } }",
                         "{ regions { ...Nope } }",
                         "mutation { fileComplaint(input: {householdId: \"x\", kind: COMPLAINT, sector: HEALTH, "
                         "description: \"d\", channel: HOTLINE}) { complaint { ...X } } }"]:
            answer = await gql(server.http, document, token=token)
            assert answer.status_code == 200, answer.text
            assert answer.json().get("data") is None and codes(answer) == ["GRAPHQL_VALIDATION_FAILED"], answer.text
            assert "Unknown fragment" in errors_of(answer)[0]["message"]


async def test_alias_overloading_is_refused_also_through_fragments(server: ServerProcess, people: People,
                                                                   live_database_url: str) -> None:
    token = people.tokens["manager"]
    many = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    refused = await gql(server.http, many, token=token)
    assert refused.json().get("data") is None and any("aliases" in e["message"] for e in errors_of(refused))
    # 16 + 16 aliases in one fragment spread under two parents, and 16 + 15 in two fragments
    spread = ("{ me { ...F } boss: me { ...F } } fragment F on Staff { "
              + " ".join(f"f{i}: id" for i in range(16)) + " }")
    refused = await gql(server.http, spread, token=token)
    assert refused.json().get("data") is None and any("aliases" in e["message"] for e in errors_of(refused))
    split = ("{ ...F ...G } fragment F on Query { " + " ".join(f"f{i}: __typename" for i in range(16))
             + " } fragment G on Query { " + " ".join(f"g{i}: __typename" for i in range(15)) + " }")
    refused = await gql(server.http, split, token=token)
    assert refused.json().get("data") is None and any("aliases" in e["message"] for e in errors_of(refused))
    # 31 aliased writes (two fragments on Mutation) write nothing
    before = await rows(live_database_url, people.province)
    variables = {f"i{k}": household(people.province) for k in range(31)}
    header = "mutation(" + ", ".join(f"$i{k}: RegisterHouseholdInput!" for k in range(31)) + ")"
    fields = [f"r{k}: registerHousehold(input: $i{k}) {{ errors {{ code }} }}" for k in range(31)]
    writes = (header + " { ...W ...V } fragment W on Mutation { " + " ".join(fields[:16])
              + " } fragment V on Mutation { " + " ".join(fields[16:]) + " }")
    refused = await gql(server.http, writes, variables, token=people.tokens["fac_a1"])
    assert refused.json().get("data") is None and any("aliases" in e["message"] for e in errors_of(refused))
    assert await rows(live_database_url, people.province) == before
    logins = "mutation { " + " ".join(f'l{i}: login(username: "{people.world.staff["sup_a"].username}", '
                                      f'password: "guess-{i}") {{ accessToken }}' for i in range(31)) + " }"
    refused = await gql(server.http, logins)
    assert refused.json().get("data") is None and any("aliases" in e["message"] for e in errors_of(refused))


async def test_token_flood_is_refused(server: ServerProcess, people: People, live_database_url: str) -> None:
    flood = "{ " + "__typename " * 4100 + "}"
    refused = await gql(server.http, flood, token=people.tokens["manager"])
    assert refused.status_code in {200, 400}
    assert refused.json().get("data") is None and any("token" in e["message"].lower()
                                                       for e in errors_of(refused)), refused.text[:300]
    before = await rows(live_database_url, people.province)
    refused = await gql(server.http, register_with("errors { code } " + "__typename " * 4100),
                        {"i": household(people.province)}, token=people.tokens["fac_a1"])
    assert refused.json().get("data") is None and errors_of(refused)
    assert await rows(live_database_url, people.province) == before


@pytest.mark.parametrize("document", ["subscription { intake { cursor " + "__typename " * 4100 + "} }",
                                      "subscription { intake { cursor "], ids=["token-flood", "syntax-error"])
async def test_unparseable_subscription_gets_an_error_and_the_socket_lives_on(server: ServerProcess,
                                                                              people: People, document: str) -> None:
    """Over a WebSocket, a document the parser refuses must be answered with an ``error`` for that operation
    (not a bare ``complete`` with an "Exception in worker task" traceback, carrying the document, in the log)."""
    ws = await ws_open(server.ws, token=people.tokens["manager"])
    try:
        await ws.subscribe("1", document)
        answer = await ws.receive(5)
        assert answer["type"] == "error" and answer["id"] == "1", answer
        await ws.send({"type": "ping"})
        assert (await ws.receive(5))["type"] == "pong"
    finally:
        await ws.close()


async def test_huge_body_with_content_length_gets_413_and_writes_nothing(server: ServerProcess, people: People,
                                                                          live_database_url: str) -> None:
    before = await rows(live_database_url, people.province)
    data = household(people.province, address="Jl. " + "x" * 1_200_000)
    response = await gql(server.http, REGISTER, {"i": data}, token=people.tokens["fac_a1"])
    assert response.status_code == 413, response.text[:300]
    assert codes(response) == ["PAYLOAD_TOO_LARGE"]
    assert await rows(live_database_url, people.province) == before


async def test_huge_body_streamed_without_content_length_gets_413_and_writes_nothing(
        server: ServerProcess, people: People, live_database_url: str) -> None:
    before = await rows(live_database_url, people.province)
    body = json.dumps({"query": REGISTER, "variables": {"i": household(people.province,
                                                                        address="Jl. " + "y" * 1_500_000)}}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]

    response = await request("POST", f"{server.http}/graphql", content=chunks(),
                             headers={"content-type": "application/json",
                                      "authorization": f"Bearer {people.tokens['fac_a1']}"})
    assert "content-length" not in response.request.headers  # really streamed
    assert response.status_code == 413, response.text[:300]
    assert codes(response) == ["PAYLOAD_TOO_LARGE"]
    assert await rows(live_database_url, people.province) == before


async def test_array_batching_is_a_400_not_a_500(server: ServerProcess, people: People,
                                                 live_database_url: str) -> None:
    before = await rows(live_database_url, people.province)
    headers = {"content-type": "application/json", "authorization": f"Bearer {people.tokens['fac_a1']}"}
    for body in ([{"query": "{ me { id } }"}, {"query": REGISTER, "variables": {"i": household(people.province)}}],
                 [], [1, 2], [{"query": REGISTER, "variables": {"i": household(people.province)}}] * 50):
        response = await request("POST", f"{server.http}/graphql", content=json.dumps(body), headers=headers)
        assert response.status_code == 400, (body, response.status_code, response.text[:200])
    assert await rows(live_database_url, people.province) == before


@pytest.mark.parametrize("field", ["households", "complaints", "referrals", "changes"])
async def test_page_size_out_of_range_is_invalid_page_size(server: ServerProcess, people: People, field: str) -> None:
    selection = "endCursor" if field == "changes" else "totalCount"
    for first in (99999999, 0, -1):
        response = await gql(server.http, f"{{ {field}(first: {first}) {{ {selection} }} }}",
                             token=people.tokens["manager"])
        assert response.status_code == 200, response.text
        assert codes(response) == ["INVALID_PAGE_SIZE"], (first, response.text)
    by_variable = await gql(server.http, f"query($n: Int) {{ {field}(first: $n) {{ {selection} }} }}",
                            {"n": 99999999}, token=people.tokens["manager"])
    assert codes(by_variable) == ["INVALID_PAGE_SIZE"], by_variable.text
    overflow = await gql(server.http, f"{{ {field}(first: 99999999999) {{ {selection} }} }}",
                         token=people.tokens["manager"])
    assert overflow.status_code in {200, 400} and overflow.json().get("data") is None
    assert "INTERNAL_SERVER_ERROR" not in codes(overflow)


async def test_expensive_query_with_legal_page_sizes_exceeds_the_cost_budget(server: ServerProcess,
                                                                               people: People) -> None:
    expensive = ("{ households(first: 1000) { edges { node { complaints { referrals { program { name } } } } } } }")
    response = await gql(server.http, expensive, token=people.tokens["manager"])
    assert response.status_code == 200
    assert codes(response) == ["COST_LIMIT_EXCEEDED"], response.text
    assert response.json().get("data") is None
    cheaper = "{ households(first: 100) { edges { node { complaints { referrals { program { name } } } } } } }"
    assert "errors" not in (await gql(server.http, cheaper, token=people.tokens["manager"])).json()


# --- production mode -----------------------------------------------------------------------------------------------


def prod_token(people: People, name: str) -> str:
    return TokenSigner(PROD_SECRET, access_ttl=600, refresh_ttl=3600).issue(people.ids[name], "access")


async def test_introspection_is_refused_in_production(prod: ServerProcess, people: People) -> None:
    token = prod_token(people, "manager")
    for query in ("{ __schema { types { name } } }", '{ __type(name: "Household") { fields { name } } }',
                  "{ s: __schema { queryType { name } } }",
                  "{ ...F } fragment F on Query { __schema { mutationType { fields { name } } } }"):
        for who in (None, token):
            response = await gql(prod.http, query, token=who)
            assert response.json().get("data") is None, (query, response.text[:300])
            assert any("introspection" in e["message"].lower() for e in errors_of(response)), response.text[:300]
    ok = await gql(prod.http, "{ __typename me { role } }", token=token)
    assert ok.json()["data"] == {"__typename": "Query", "me": {"role": "MANAGER"}}
    ide = await request("GET", f"{prod.http}/graphql", headers={"accept": "text/html"})
    assert ide.status_code >= 400 and "graphiql" not in ide.text.lower()
    ws = await ws_open(prod.ws, token=token)
    try:
        await ws.subscribe("1", "query { __schema { types { name } } }")
        answer = await ws.receive(5)
        assert answer["type"] == "error", answer
        assert "introspection" in json.dumps(answer["payload"]).lower(), answer
    finally:
        await ws.close()


async def test_misspelled_field_gets_no_suggestion_in_production(prod: ServerProcess, people: People) -> None:
    token = prod_token(people, "manager")
    for query in ("{ househods { totalCount } }", "{ me { usernme } }", "{ households { edges { node { adress } } } }"):
        response = await gql(prod.http, query, token=token)
        assert errors_of(response), response.text
        assert [e["message"] for e in errors_of(response) if "did you mean" in e["message"].lower()] == []


@pytest.mark.parametrize("query", [
    "{ households(firts: 1) { totalCount } }",                                # argument name
    "{ complaints(orderBy: NEWST) { totalCount } }",                          # enum value
    '{ households(filter: {regionCod: "12"}) { totalCount } }',              # input field
    "query($f: HouseholdFiltr) { households(filter: $f) { totalCount } }",   # type name
    '{ node(id: "x") { ... on Househol { id } } }',                           # type in a fragment
], ids=["argument", "enum-value", "input-field", "type", "fragment-type"])
async def test_no_schema_hints_in_any_validation_error_in_production(prod: ServerProcess, people: People,
                                                                     query: str) -> None:
    """With introspection off, "Did you mean ..." in any validation message still hands out the schema piece by
    piece (argument names, enum values, input fields, type names)."""
    response = await gql(prod.http, query, token=prod_token(people, "manager"))
    assert errors_of(response), response.text
    hints = [e["message"] for e in errors_of(response) if "did you mean" in e["message"].lower()]
    assert hints == [], hints


# --- malformed input -----------------------------------------------------------------------------------------------


async def test_malformed_ids_cursors_and_values_get_typed_client_errors(server: ServerProcess,
                                                                        people: People) -> None:
    token = people.tokens["manager"]
    cases = [
        ('{ node(id: "not-a-global-id") { id } }', {}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Household", "9" * 40)}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Household", "1; DROP TABLE staff")}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Region", "'; select 1; --")}),
        ('{ changes(after: "99999999999999999999999999") { endCursor } }', {}),
        ('{ changes(after: "-1") { endCursor } }', {}),
        ("{ households(after: \"garbage'--\") { totalCount } }", {}),
        ('{ complaints(filter: {updatedAfter: "2026-13-45T99:00:00"}) { totalCount } }', {}),
        ('{ complaints(filter: {assigneeId: "SG91c2Vob2xkOjE"}) { totalCount } }', {}),
        ("query($n: Int) { households(first: $n) { totalCount } }", {"n": "fifty"}),
        ('{ workload(regionCode: "12.74\' OR 1=1 --") { open } }', {}),
        ('{ staff(regionCode: "%") { id } }', {}),
    ]
    for query, variables in cases:
        response = await gql(server.http, query, variables, token=token)
        assert response.status_code < 500, (query, response.status_code)
        assert "INTERNAL_SERVER_ERROR" not in response.text, (query, response.text)


async def test_nul_bytes_in_input_are_a_client_error_and_never_reach_the_log(server: ServerProcess,
                                                                             people: People,
                                                                             live_database_url: str) -> None:
    """PostgreSQL refuses NUL in text; that must come back as a typed client error, not an unexpected one whose
    traceback (SQL and bound parameters: names, addresses) lands in the server log."""
    before = await rows(live_database_url, people.province)
    marker = f"Nama Rahasia {uuid.uuid4().hex[:8]}"
    data = household(people.province, name=marker + "\u0000", address=f"Jl. Rahasia\u0000 {marker}")
    response = await gql(server.http, REGISTER, {"i": data}, token=people.tokens["fac_a1"])
    login_response = await gql(server.http, 'mutation { login(username: "adm\\u0000in", password: "x") { '
                                             "accessToken errors { code } } }")
    await asyncio.sleep(0.2)
    assert await rows(live_database_url, people.province) == before
    assert marker not in server.output(), "personal data (a name and an address) was written to the server log"
    for r in (response, login_response):
        assert r.status_code < 500
        assert "INTERNAL_SERVER_ERROR" not in codes(r) and "INTERNAL_SERVER_ERROR" not in r.text, r.text


# --- cross-site requests -------------------------------------------------------------------------------------------


async def test_csrf_content_types_and_get_mutations_are_refused_and_write_nothing(
        server: ServerProcess, people: People, live_database_url: str) -> None:
    before = await rows(live_database_url, people.province)
    url = f"{server.http}/graphql"
    auth = {"authorization": f"Bearer {people.tokens['fac_a1']}"}
    body = json.dumps({"query": REGISTER, "variables": {"i": household(people.province)}})
    attempts = [
        ("POST", {"content": body, "headers": auth | {"content-type": "text/plain"}}),
        ("POST", {"content": body, "headers": auth | {"content-type": "text/plain; charset=application/json"}}),
        ("POST", {"data": {"query": REGISTER, "variables": json.dumps({"i": household(people.province)})},
                  "headers": auth}),
        ("POST", {"files": {"operations": (None, body), "map": (None, "{}")}, "headers": auth}),
        ("POST", {"content": body, "headers": auth}),  # no content type at all
        ("GET", {"params": {"query": REGISTER, "variables": json.dumps({"i": household(people.province)})},
                 "headers": auth}),
        ("GET", {"params": {"query": "{ me { id } }"}, "headers": auth}),
    ]
    for method, kwargs in attempts:
        response = await request(method, url, **kwargs)
        assert 400 <= response.status_code < 500, (method, kwargs.get("headers"), response.status_code,
                                                   response.text[:200])
    assert await rows(live_database_url, people.province) == before


async def test_cross_origin_preflight_is_not_granted(server: ServerProcess) -> None:
    response = await request("OPTIONS", f"{server.http}/graphql",
                             headers={"origin": "https://evil.example", "access-control-request-method": "POST",
                                      "access-control-request-headers": "content-type, x-rujuk-console"})
    assert response.headers.get("access-control-allow-origin") not in {"*", "https://evil.example"}
    assert "access-control-allow-credentials" not in response.headers


async def console_cookie(server: ServerProcess, people: People) -> str:
    response = await request("POST", f"{server.http}/console/login",
                             data={"username": people.world.staff["sup_a"].username, "password": PASSWORD},
                             headers={"origin": server.http})
    assert response.status_code == 303, response.text[:200]
    cookie = response.cookies.get("rujuk_console")
    assert cookie
    return cookie


async def test_console_cookie_from_a_foreign_origin_carries_no_actor(server: ServerProcess, people: People,
                                                                     live_database_url: str) -> None:
    cookie = await console_cookie(server, people)
    jar = {"cookie": f"rujuk_console={cookie}"}
    me = "{ me { username } }"
    own = await gql(server.http, me, headers=jar | {"origin": server.http, "x-rujuk-console": "1"})
    assert own.json()["data"]["me"]["username"] == people.world.staff["sup_a"].username  # the cookie works at home
    port = server.http.rsplit(":", 1)[1]
    for headers in ({"origin": "https://evil.example", "x-rujuk-console": "1"},
                    {"origin": "null", "x-rujuk-console": "1"},
                    {"origin": f"http://127.0.0.1:{port}.evil.example", "x-rujuk-console": "1"},
                    {"origin": f"http://evil.example:{port}", "x-rujuk-console": "1"},
                    {"x-rujuk-console": "1"},
                    {"origin": server.http}):
        response = await gql(server.http, me, headers=jar | headers)
        assert response.json()["data"]["me"] is None, (headers, response.text)
    before = await rows(live_database_url, people.province)
    write = await gql(server.http, REGISTER, {"i": household(people.province)},
                      headers=jar | {"origin": "https://evil.example", "x-rujuk-console": "1"})
    assert write.json()["data"]["registerHousehold"]["errors"] == [{"code": "UNAUTHENTICATED"}]
    assert await rows(live_database_url, people.province) == before
    # cross-site WebSocket hijacking: the cookie rides along, the foreign Origin must not
    try:
        hijack = await ws_open(server.ws, init=False, origin="https://evil.example", cookie=f"rujuk_console={cookie}")
    except InvalidStatus as refused:  # refused at the handshake
        assert refused.response.status_code == 403
    else:
        await hijack.send({"type": "connection_init", "payload": {}})
        assert await closed_with(hijack) == 4403
    home = await ws_open(server.ws, origin=server.http, cookie=f"rujuk_console={cookie}")  # the console itself
    await home.close()


# --- WebSocket protocol abuse --------------------------------------------------------------------------------------

INTAKE = "subscription { intake { cursor kind regionCode } }"


async def test_websocket_without_duplicate_late_init_and_bad_credentials_are_closed(
        server: ServerProcess, people: People, live_database_url: str) -> None:
    token = people.tokens["sup_a"]
    before = await rows(live_database_url, people.province)
    early = await ws_open(server.ws, init=False)
    await early.subscribe("1", REGISTER, {"i": household(people.province)})
    assert await closed_with(early) == 4401  # subscribe (here: a mutation) without connection_init
    twice = await ws_open(server.ws, token=token)
    await twice.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    assert await closed_with(twice) == 4429  # a second connection_init
    silent = await ws_open(server.ws, init=False)
    assert await closed_with(silent) == 4408  # no connection_init within RUJUK_WS_INIT_TIMEOUT_SECONDS
    late = await ws_open(server.ws, init=False)
    await asyncio.sleep(1.5)
    with contextlib.suppress(Exception):
        await late.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    assert await closed_with(late) == 4408
    expired = TokenSigner(DEV_SECRET_KEY, access_ttl=600, refresh_ttl=3600).issue(
        people.ids["sup_a"], "access", now=dt.datetime.now(dt.UTC).timestamp() - 7200)
    refresh = TokenSigner(DEV_SECRET_KEY, access_ttl=600, refresh_ttl=3600).issue(people.ids["sup_a"], "refresh")
    forged = TokenSigner("not-the-server-key-" + "z" * 30, access_ttl=600, refresh_ttl=3600).issue(
        people.ids["admin"], "access")
    for bad in ({"authorization": "Bearer forged.token"}, {"authorization": f"Bearer {expired}"},
                {"authorization": f"Bearer {refresh}"}, {"authorization": f"Bearer {forged}"},
                {"authorization": "Bearer rjk_abcdefgh_" + secrets.token_urlsafe(32)},
                {"authorization": f"Basic {token}"}, {"token": "x"}, {}):
        ws = await ws_open(server.ws, init=False)
        await ws.send({"type": "connection_init", "payload": bad})
        await ws.subscribe("1", REGISTER, {"i": household(people.province)})  # pipelined behind the init
        assert await closed_with(ws) == 4403, bad
    assert await rows(live_database_url, people.province) == before
    for bad_header in (f"Bearer {refresh}", f"Bearer {expired}", f"Bearer {forged}"):
        response = await gql(server.http, "{ complaints { totalCount } }", headers={"authorization": bad_header})
        assert codes(response)[0] in {"UNAUTHENTICATED", "TOKEN_EXPIRED"}, response.text


async def test_subscription_flood_is_refused_and_the_socket_stays_usable(server: ServerProcess,
                                                                         people: People) -> None:
    ws = await ws_open(server.ws, token=people.tokens["sup_a"])
    workload = "subscription { workloadChanged { regionCode entries { open } } }"
    try:
        for i in range(3):
            await ws.subscribe(str(i), workload)
            assert (await ws.next_data())["workloadChanged"] is not None
        await ws.subscribe("3", workload)
        refused = await ws.receive(5)
        assert refused["type"] == "error" and refused["id"] == "3", refused
        await ws.send({"type": "ping"})
        assert (await ws.receive(5))["type"] == "pong"
        await ws.send({"id": "0", "type": "complete"})
        await asyncio.sleep(0.2)
        await ws.subscribe("4", workload)
        message = await ws.receive(5)
        assert message["type"] == "next" and message["id"] == "4", message
    finally:
        await ws.close()


# --- rate limits ---------------------------------------------------------------------------------------------------


async def test_anonymous_requests_are_rate_limited_with_a_numeric_retry_after(limited: ServerProcess) -> None:
    answers = [await gql(limited.http, "{ __typename }", source="127.0.0.2") for _ in range(6)]
    limited_answers = [a for a in answers if a.status_code == 429]
    assert limited_answers, [a.status_code for a in answers]
    for answer in limited_answers:
        assert re.fullmatch(r"[1-9][0-9]*", answer.headers.get("retry-after", "")), answer.headers
        assert codes(answer) == ["RATE_LIMITED"]
    # logins are anonymous too: password guessing is slowed the same way
    guesses = [await gql(limited.http, 'mutation { login(username: "admin", password: "guess") { accessToken } }',
                         source="127.0.0.2") for _ in range(3)]
    assert all(g.status_code == 429 for g in guesses), [g.status_code for g in guesses]


async def test_rate_limited_writes_write_nothing(limited: ServerProcess, people: People,
                                                 live_database_url: str) -> None:
    before = await rows(live_database_url, people.province)
    answers = [await gql(limited.http, REGISTER, {"i": household(people.province)}, token=people.tokens["fac_a1"])
               for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert 429 in statuses and set(statuses) <= {200, 429}, statuses
    stored = sum(1 for a in answers if a.status_code == 200 and a.json()["data"]["registerHousehold"]["errors"] == [])
    after = await rows(live_database_url, people.province)
    assert after["households"] - before["households"] == stored
    assert all(re.fullmatch(r"[1-9][0-9]*", a.headers.get("retry-after", "")) for a in answers if a.status_code == 429)


async def test_forged_api_key_prefixes_do_not_escape_the_anonymous_rate_limit(limited: ServerProcess) -> None:
    """Only a verified credential earns a principal's own bucket: a made-up ``rjk_<prefix>_...`` per request
    must not buy a fresh bucket each time (that would make password guessing unlimited)."""
    source = "127.0.0.3"
    while (await gql(limited.http, "{ __typename }", source=source)).status_code != 429:
        pass
    guesses = []
    for i in range(5):
        fake = f"rjk_{secrets.token_hex(4)}_{secrets.token_urlsafe(16)}"
        guess = 'mutation($p: String!) { login(username: "admin", password: $p) { accessToken } }'
        guesses.append(await gql(limited.http, guess, {"p": f"guess-{i}"}, headers={"x-api-key": fake},
                                 source=source))
        guesses.append(await gql(limited.http, "{ __typename }", headers={"authorization": f"Bearer {fake}"},
                                 source=source))
    assert sum(1 for g in guesses if g.status_code != 429) <= 1, [g.status_code for g in guesses]


# --- API keys ------------------------------------------------------------------------------------------------------

CREATE_KEY = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id } secret errors { code } } }"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } errors { code } } }"
CASE_EVENTS = "subscription { caseEvents { cursor kind regionCode } }"


async def partner_key(server: ServerProcess, people: People) -> tuple[str, str]:
    response = await gql(server.http, CREATE_KEY, {"i": {"partnerId": to_global_id("Staff", people.ids["partner"]),
                                                         "name": "BPJS nightly sync"}}, token=people.tokens["admin"])
    payload = response.json()["data"]["createApiKey"]
    assert payload["errors"] == [], payload
    return str(payload["apiKey"]["id"]), str(payload["secret"])


async def test_revoked_api_key_stops_working_at_once_over_http_and_new_sockets(server: ServerProcess,
                                                                              people: People) -> None:
    key_id, secret = await partner_key(server, people)
    query = "{ complaints { totalCount } }"
    assert "errors" not in (await gql(server.http, query, token=secret)).json()
    assert "errors" not in (await gql(server.http, query, headers={"x-api-key": secret})).json()
    revoked = await gql(server.http, REVOKE_KEY, {"id": key_id}, token=people.tokens["admin"])
    assert revoked.json()["data"]["revokeApiKey"]["apiKey"]["revokedAt"]
    assert codes(await gql(server.http, query, token=secret)) == ["UNAUTHENTICATED"]
    assert codes(await gql(server.http, query, headers={"x-api-key": secret})) == ["UNAUTHENTICATED"]
    ws = await ws_open(server.ws, init=False)
    await ws.send({"type": "connection_init", "payload": {"authorization": f"Bearer {secret}"}})
    assert await closed_with(ws) == 4403


async def test_revoked_api_key_stops_an_open_socket_at_once(server: ServerProcess, people: People) -> None:
    """"Revoke an API key at once": a socket opened with the key before must not go on receiving events, nor
    start new subscriptions, after the revocation."""
    key_id, secret = await partner_key(server, people)
    ws = await ws_open(server.ws, token=secret)
    try:
        await ws.subscribe("1", CASE_EVENTS)
        await asyncio.sleep(0.3)
        await register(server.http, people)
        assert (await ws.next_data(5))["caseEvents"]["kind"] == "HOUSEHOLD_REGISTERED"  # the key works
        revoked = await gql(server.http, REVOKE_KEY, {"id": key_id}, token=people.tokens["admin"])
        assert revoked.json()["data"]["revokeApiKey"]["errors"] == []
        await register(server.http, people)
        leaked: list[dict[str, Any]] = []
        with contextlib.suppress(Exception):
            while True:
                message = await ws.receive(2)
                if message["type"] == "next" and not message["payload"].get("errors"):
                    leaked.append(message)
        assert leaked == [], f"the revoked key still received {len(leaked)} event(s)"
        if ws.conn.close_code is None:
            await ws.subscribe("2", CASE_EVENTS)
            answer = None
            with contextlib.suppress(Exception):
                answer = await ws.receive(2)
            assert ws.conn.close_code is not None or (answer is not None and answer["type"] == "error"), \
                f"a new subscription with the revoked key was accepted: {answer}"
    finally:
        await ws.close()


# --- nothing leaked, anywhere --------------------------------------------------------------------------------------

LEAKS = [re.compile(p, re.IGNORECASE) for p in (
    r"traceback", r'file "', r"site-packages", r"sqlalchemy", r"asyncpg", r"psycopg", r"\bpostgres(ql)?\b",
    r"\bselect\b[^\"]{0,200}\bfrom\b", r"\binsert into\b", r"\bupdate \w+ set\b", r"\bdelete from\b",
    r"\[sql:", r"\[parameters:", r"/work/", r"\.py\b", r"uvicorn", r"starlette")]


def test_zz_no_response_leaked_internals_or_personal_numbers() -> None:
    assert RESPONSES, "no responses were recorded"
    problems = []
    for where, status, body in RESPONSES:
        if status >= 500:
            problems.append(f"{where}: HTTP {status}")
        for pattern in LEAKS:
            if pattern.search(body):
                problems.append(f"{where}: {pattern.pattern!r} in {body[:200]!r}")
        for number in SECRETS:
            if number in body:
                problems.append(f"{where}: a stored NIK / No. KK came back")
    assert not problems, "\n".join(problems[:30])


def test_zz_server_logs_hold_no_traceback() -> None:
    """Nothing any attack sent made a server fail unexpectedly."""
    problems = []
    for server in SERVERS:
        log = server.output()
        if "Traceback" in log:
            lines = log.splitlines()
            causes = [lines[i - 1] for i, line in enumerate(lines) if line.startswith("Traceback") and i
                      and lines[i - 1].strip() and not lines[i - 1].startswith(("The above", "During handling"))]
            finals = [line for line in lines if re.match(r"^[a-zA-Z_.]+(Error|Exception)\b", line)]
            problems.append(f"{server.log.name}: {len(causes)} unexpected failure(s) logged with a traceback:\n  "
                            + "\n  ".join(causes) + "\n  raised: " + "\n  raised: ".join(
                                sorted({f[:160] for f in finals})))
    assert not problems, "\n".join(problems)


def test_zz_server_logs_hold_no_nik_or_family_card_number() -> None:
    """NIK and No. KK are never logged (UU 27/2022), whatever a client sends and wherever it puts them."""
    problems = []
    for server in SERVERS:
        for line in server.output().splitlines():
            if any(number in line for number in SECRETS):
                problems.append(f"{server.log.name}: {re.sub(r'[0-9]{16}', '<16 digits>', line)[:300]}")
    assert not problems, "\n".join(problems)
