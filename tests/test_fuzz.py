"""Property-based fuzzing of the whole GraphQL schema over HTTP, against a real uvicorn process.

What is sent, against a seeded district (households, complaints in several states, referrals, API keys), so
that ids, versions, codes and cursors often name real objects:

* valid queries and mutations from ``hypothesis-graphql`` over every root field, each sent as a supervisor, a
  partner API key (made with ``createApiKey``), an anonymous client, a facilitator and an admin;
* operations with one schema violation each (``hypothesis-graphql``'s negative mode);
* those documents mangled (characters flipped, dropped, inserted, repeated, truncated) and odd HTTP envelopes
  (byte flips, truncated bodies, wrong shapes, content types, GET), and a fixed list of broken bodies;
* one operation per root field (subscriptions too, over plain HTTP) with variables that are well typed and
  mostly realistic, then corrupted: wrong types, huge integers, Unicode digits, NaN, null where non-null,
  dropped or unknown fields, a variable declared with another type;
* the same operations with one text spoilt by a NUL or a lone surrogate.

Properties of every answer:

* no 5xx status, and the server stays up (``/healthz`` answers 200 at the end, nothing in its log crashed);
* no unexpected error: no ``INTERNAL_SERVER_ERROR`` code, no "Unexpected error" message, and no
  ``SERVICE_UNAVAILABLE`` (the database stays up); a failure names the document, the principal, the response
  and the server's log record for it;
* no error message shows a traceback, SQL, a driver or database name, or a 16-digit number (NIK, No. KK)
  that the request did not itself contain;
* a rejected operation (top-level errors, a non-GraphQL answer, or every root payload with errors) leaves the
  rows of households, members, family cards, complaints, assignments, referrals, case events, staff, API keys
  and idempotency keys as they were.

The examples are derandomized (the same sequence on every run), bounded by ``max_examples`` (about 3,000
requests in under two minutes) and kept in no example database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import asyncpg
import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, nodes
from hypothesis_graphql import strategies as gql_st
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.enums import Role
from domain.households.service import INDICATOR_KEYS
from domain.programs import Program
from domain.staff.models import Staff
from schema import export_sdl
from schema.relay import from_global_id, to_global_id
from server import db
from tests.conftest import PASSWORD, PASSWORD_HASH, LiveWorld, nik
from tests.support.servers import ServerProcess, login
from tests.support.servers import graphql as post_graphql

pytestmark = pytest.mark.e2e

SDL = export_sdl()
SCHEMA = graphql.build_schema(SDL)

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example],
)

#: tables whose rows a rejected operation must leave alone
TABLES = ("households", "members", "family_cards", "complaints", "assignments", "referrals", "case_events", "staff",
          "api_keys", "idempotency_keys")
NODE_TYPES = ("Household", "Member", "FamilyCard", "Complaint", "Referral", "Program", "Region", "Staff", "ApiKey",
              "CaseEvent")

#: what an error message must never show, unless the request itself carried it (messages may quote input)
LEAKS: dict[str, re.Pattern[str]] = {
    "traceback": re.compile(r"Traceback|File \"[^\"]+\.py\", line \d+"),
    "SQL": re.compile(r"\b(?:SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WHERE|RETURNING)\b|SQLSTATE|\[SQL:"),
    "driver": re.compile(r"asyncpg|psycopg|sqlalchemy|sqlalche\.me|postgres|libpq|uvicorn|starlette", re.I),
    "16-digit number": re.compile(r"(?<!\d)\d{16}(?!\d)"),
}

# --- the seeded district and the principals --------------------------------------------------------------


class RowCounts:
    """Row counts of :data:`TABLES`, read over a connection of its own (on a private event loop, so the
    synchronous Hypothesis tests can use it)."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(
            asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://")))
        self.sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t}) AS {t}" for t in TABLES)

    def __call__(self) -> dict[str, int]:
        row = self.loop.run_until_complete(self.conn.fetchrow(self.sql))
        return dict(row)

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


@dataclass
class Outcome:
    principal: str
    request: str
    status: int
    text: str
    body: Any


@dataclass(repr=False)
class Target:
    """The running server, the seeded district's ids and strings, and the principals to send as."""

    server: ServerProcess
    province: str
    principals: dict[str, dict[str, str]]
    ids: list[str]
    strings: list[str]
    counts: RowCounts
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))
    #: strategies for variable values, by (type, field, input type)
    values: dict[tuple[str, str, str], st.SearchStrategy[Any]] = field(default_factory=dict)
    sent: int = 0

    @property
    def url(self) -> str:
        return f"{self.server.http}/graphql"

    def send_json(self, principal: str, payload: Any) -> Outcome:
        return self.send(principal, json.dumps(payload).encode())

    def send(self, principal: str, body: bytes, *, content_type: str = "application/json",
             method: str = "POST") -> Outcome:
        """Send one request and check every property of its answer."""
        headers = {**self.principals[principal], "content-type": content_type}
        before = self.counts()
        for attempt in range(2):
            try:
                if method == "GET":
                    response = self.http.get(self.url, params={"query": body.decode(errors="replace")},
                                             headers=headers)
                else:
                    response = self.http.post(self.url, content=body, headers=headers)
                break
            except httpx.TransportError as error:
                # after a 500 the server closes the kept-alive connection: that 500 was reported already
                if attempt:
                    raise AssertionError(f"the server dropped the connection twice ({error!r}) for {principal}: "
                                         f"{body[:2000]!r}") from error
        self.sent += 1
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = None
        outcome = Outcome(principal, body.decode(errors="replace"), response.status_code, response.text, parsed)
        self.check(outcome, before)
        return outcome

    def check(self, outcome: Outcome, before: dict[str, int]) -> None:
        problems: list[str] = []
        if outcome.status >= 500:
            problems.append(f"HTTP {outcome.status}")
        messages = [m for m in error_messages(outcome.body)] if outcome.body is not None else [outcome.text]
        for error in top_level_errors(outcome.body):
            code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
            if code == "INTERNAL_SERVER_ERROR":
                problems.append("an INTERNAL_SERVER_ERROR")
            if code == "SERVICE_UNAVAILABLE":  # the database is up all along: something broke a connection
                problems.append("a SERVICE_UNAVAILABLE while the database was up")
        request = outcome.request + json.dumps(_decoded(outcome.request), ensure_ascii=False)
        for message in messages:
            if "Unexpected error" in message:
                problems.append(f"an unexpected error: {message!r}")
            for leak, pattern in LEAKS.items():
                for match in pattern.finditer(message):
                    if match.group(0).lower() not in request.lower():
                        problems.append(f"a {leak} in an error message: {message!r}")
        if rejected(outcome):
            after = self.counts()
            if after != before:
                moved = {t: (before[t], after[t]) for t in TABLES if before[t] != after[t]}
                problems.append(f"a rejected operation changed rows: {moved}")
        if problems:
            raise AssertionError(self.report(outcome, problems))

    def report(self, outcome: Outcome, problems: list[str]) -> str:
        lines = ["; ".join(sorted(set(problems))), f"principal: {outcome.principal}",
                 f"request: {outcome.request[:6000]}", f"status: {outcome.status}",
                 f"response: {outcome.text[:6000]}"]
        for reference in re.findall(r"reference ([0-9a-zA-Z-]+)", outcome.text):
            lines.append(f"server log for {reference}:\n{server_log_for(self.server, reference)}")
        return "\n".join(lines)

    @cached_property
    def strategies(self) -> dict[str, st.SearchStrategy[str]]:
        """Documents from hypothesis-graphql, with this district's ids and codes for every scalar. Logging in
        costs an Argon2 hash, so most mutation documents leave ``login`` and ``refreshToken`` out."""
        scalars = custom_scalars(self)
        assert SCHEMA.mutation_type is not None
        cheap = [name for name in SCHEMA.mutation_type.fields if name not in {"login", "refreshToken"}]
        every = gql_st.mutations(SDL, custom_scalars=scalars)
        return {
            "queries": gql_st.queries(SDL, custom_scalars=scalars),
            "mutations": st.one_of(gql_st.mutations(SDL, fields=cheap, custom_scalars=scalars), every),
            "operations": gql_st.from_schema(SDL, custom_scalars=scalars),
            "negative": gql_st.from_schema(SDL, custom_scalars=scalars, mode=Mode.NEGATIVE),
        }

    def ids_of(self, type_name: str) -> list[str]:
        """The district's global ids of one type (all of them when it has none of that type)."""
        prefix = f"{type_name}:"
        found = [gid for gid in self.ids if (from_global_id(gid) or ("", ""))[0] + ":" == prefix]
        return found or self.ids

    def __repr__(self) -> str:
        return f"Target(province={self.province!r}, {len(self.ids)} ids, {len(self.strings)} strings)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis shows the fixture in a failing example (not every field, token and id)."""
        printer.text(repr(self))

    def healthy(self) -> bool:
        return self.http.get(f"{self.server.http}/healthz").status_code == 200


def _decoded(request: str) -> Any:
    try:
        return json.loads(request)
    except (ValueError, RecursionError):
        return None


def top_level_errors(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return list(body["errors"])
    if isinstance(body, list):  # a batch
        return [e for item in body for e in top_level_errors(item)]
    return []


def error_messages(body: Any) -> Iterator[str]:
    """Messages of top-level errors and of the typed ``errors`` of payloads, anywhere in the answer."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "errors" and isinstance(value, list):
                for error in value:
                    if isinstance(error, dict) and isinstance(error.get("message"), str):
                        yield error["message"]
            yield from error_messages(value)
    elif isinstance(body, list):
        for item in body:
            yield from error_messages(item)


def rejected(outcome: Outcome) -> bool:
    """Whether the server refused the whole operation, so it must have written nothing."""
    body = outcome.body
    if outcome.status >= 400 or not isinstance(body, dict):
        return True
    if body.get("errors"):
        return True
    data = body.get("data")
    return bool(data) and isinstance(data, dict) and all(
        isinstance(v, dict) and isinstance(v.get("errors"), list) and v["errors"] for v in data.values())


def server_log_for(server: ServerProcess, reference: str) -> str:
    """The server's log record for a request id, with its traceback."""
    lines = server.output().splitlines()
    for i, line in enumerate(lines):
        if reference in line:
            end = i + 1
            while end < len(lines) and (lines[end].startswith((" ", "Traceback", "During", "The above"))
                                        or (lines[end] and not lines[end].startswith(("INFO", "WARNING", "ERROR")))):
                end += 1
            return "\n".join(lines[i:min(end, i + 80)])
    return "(not found in the server log)"


@pytest.fixture(scope="module")
def server(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(live_database_url, tmp_path_factory.mktemp("fuzz")).start()
    yield process
    process.stop()


MUTATION_OK = "errors { code field message }"


async def _ok(base: str, query: str, variables: dict[str, Any], token: str, root: str) -> dict[str, Any]:
    body = await post_graphql(base, query, variables, token)
    assert not body.get("errors") and body["data"][root]["errors"] == [], body
    result: dict[str, Any] = body["data"][root]
    return result


@pytest.fixture
async def seeded(server: ServerProcess, live_world: LiveWorld, live_engine: AsyncEngine) -> dict[str, Any]:
    """An admin, a partner, an officer and programs in the test's province, then (over HTTP) households,
    complaints in several states, referrals and API keys; returns the credentials and every id and code."""
    p = live_world.province
    kec_a, kec_b = live_world.code(".74.01"), live_world.code(".74.02")
    maker = db.make_sessionmaker(live_engine)
    async with maker() as session, session.begin():
        programs = [
            Program(code=f"FZ{p}-PBI", name="PBI Jaminan Kesehatan", sector="HEALTH", owner_agency="BPJS Kesehatan",
                    sla_days=7),
            Program(code=f"FZ{p}-KIP", name="Kartu Indonesia Pintar", sector="EDUCATION",
                    owner_agency="Dinas Pendidikan", sla_days=14),
            Program(code=f"FZ{p}-OLD", name="Program lama", sector="FOOD", owner_agency="Dinas Sosial", sla_days=30,
                    active=False),
        ]
        extra = {
            "admin": Staff(username=f"p{p}-admin", password_hash=PASSWORD_HASH, full_name="Admin Nasional",
                           role=Role.ADMIN.value, region_code=None),
            "partner": Staff(username=f"p{p}-partner", password_hash=PASSWORD_HASH, full_name="BPJS Kesehatan",
                             role=Role.PARTNER.value, region_code=live_world.code(".74")),
            "officer": Staff(username=f"p{p}-officer", password_hash=PASSWORD_HASH, full_name="Petugas Puskesos",
                             role=Role.PUSKESOS_OFFICER.value, region_code=kec_a),
        }
        session.add_all([*programs, *extra.values()])
    base = server.http
    staff = {**live_world.staff, **extra}
    tokens = {name: await login(base, staff[name].username, PASSWORD)
              for name in ("sup_a", "fac_a1", "fac_a2", "fac_b1", "admin")}
    pid = {prog.code: to_global_id("Program", prog.id) for prog in programs}

    register = f"""mutation($i: RegisterHouseholdInput!) {{ registerHousehold(input: $i) {{
        household {{ id members {{ id }} familyCards {{ id }} }} {MUTATION_OK} }} }}"""
    households: list[str] = []
    niks: list[str] = []
    cards: list[str] = []
    for serial, (who, desa) in enumerate([("fac_a1", ".74.01.1001"), ("fac_a1", ".74.01.1001"),
                                          ("fac_a2", ".74.01.1002"), ("fac_b1", ".74.02.1001")], start=1):
        kec = kec_a if desa.startswith(".74.01") else kec_b
        head = nik(kec, dt.date(1970 + serial, 8, 17), female=False, serial=serial)
        card = kec.replace(".", "") + f"01012{serial:05d}"
        niks.append(head)
        cards.append(card)
        result = await _ok(base, register, {"i": {
            "regionCode": live_world.code(desa), "address": f"Jl. Imam Bonjol {serial}", "rt": "003", "rw": "011",
            "latitude": 2.96, "longitude": 99.8, "dtksStatus": "REGISTERED", "familyCards": [card],
            "indicators": {"meals_per_day": 2, "floor_type": "tanah"}, "idempotencyKey": f"fuzz-{p}-{serial}",
            "members": [
                {"name": f"Rahmat Lubis {serial}", "sex": "MALE", "birthDate": f"{1970 + serial}-08-17",
                 "relation": "HEAD", "nik": head, "programs": ["PKH"]},
                {"name": f"Siti Nasution {serial}", "sex": "FEMALE", "birthDate": "2012-01-05",
                 "relation": "CHILD"}]}}, tokens[who], "registerHousehold")
        households.append(result["household"]["id"])

    file = f"""mutation($i: FileComplaintInput!) {{ fileComplaint(input: $i) {{
        complaint {{ id version }} {MUTATION_OK} }} }}"""

    async def complaint(who: str, household: str, sector: str, program: str | None = None) -> tuple[str, int]:
        result = await _ok(base, file, {"i": {"householdId": household, "sector": sector, "programId": program,
                                              "description": "Kartu PBI tidak aktif saat berobat",
                                              "priority": "HIGH"}}, tokens[who], "fileComplaint")
        return result["complaint"]["id"], result["complaint"]["version"]

    def transition(name: str, kind: str = "ComplaintTransitionInput") -> str:
        return f"mutation($i: {kind}!) {{ {name}(input: $i) {{ complaint {{ id version }} {MUTATION_OK} }} }}"

    fresh, _ = await complaint("fac_a1", households[0], "EDUCATION")
    verified, version = await complaint("fac_a1", households[0], "HEALTH", pid[f"FZ{p}-PBI"])
    verified_result = await _ok(base, transition("verifyComplaint"),
                                {"i": {"id": verified, "expectedVersion": version}}, tokens["sup_a"],
                                "verifyComplaint")
    referred, version = await complaint("fac_a1", households[1], "HEALTH", pid[f"FZ{p}-PBI"])
    await _ok(base, transition("verifyComplaint"), {"i": {"id": referred, "expectedVersion": version}},
              tokens["sup_a"], "verifyComplaint")
    returned, version = await complaint("fac_a2", households[2], "EDUCATION", pid[f"FZ{p}-KIP"])
    await _ok(base, transition("returnComplaint"), {"i": {"id": returned, "expectedVersion": version,
                                                         "reason": "Lengkapi keterangan"}},
              tokens["sup_a"], "returnComplaint")
    elsewhere, _ = await complaint("fac_b1", households[3], "FOOD")

    create_referral = f"""mutation($i: CreateReferralInput!) {{ createReferral(input: $i) {{
        referral {{ id version }} {MUTATION_OK} }} }}"""
    draft = await _ok(base, create_referral, {"i": {"complaintId": verified, "programId": pid[f"FZ{p}-PBI"],
                                                    "consentGiven": True, "note": "Mohon diaktifkan kembali"}},
                      tokens["fac_a1"], "createReferral")
    sent = await _ok(base, create_referral, {"i": {"complaintId": referred, "programId": pid[f"FZ{p}-PBI"],
                                                   "consentGiven": True}}, tokens["fac_a1"], "createReferral")
    await _ok(base, """mutation($i: ReferralTransitionInput!) { sendReferral(input: $i) {
        referral { id } errors { code field message } } }""",
              {"i": {"id": sent["referral"]["id"], "expectedVersion": sent["referral"]["version"]}},
              tokens["sup_a"], "sendReferral")

    create_key = f"""mutation($i: CreateApiKeyInput!) {{ createApiKey(input: $i) {{
        apiKey {{ id }} secret {MUTATION_OK} }} }}"""
    partner_id = to_global_id("Staff", extra["partner"].id)
    principal_key = await _ok(base, create_key, {"i": {"partnerId": partner_id, "name": "BPJS Sumut nightly sync"}},
                              tokens["admin"], "createApiKey")
    target_key = await _ok(base, create_key, {"i": {"partnerId": partner_id, "name": "Dinas Pendidikan",
                                                    "programCodes": [f"FZ{p}-KIP"], "personalData": True}},
                           tokens["admin"], "createApiKey")

    refresh = (await post_graphql(base, """mutation($u: String!, $p: String!) { login(username: $u, password: $p) {
        refreshToken } }""", {"u": staff["fac_a2"].username, "p": PASSWORD}))["data"]["login"]["refreshToken"]
    listing = await post_graphql(base, """query($r: String!) {
        households(filter: {regionCode: $r}, first: 1) { pageInfo { endCursor }
          edges { node { id members { id } familyCards { id } complaints { id referrals { id } } } } }
        all: households(filter: {regionCode: $r}) { edges { node { id members { id } familyCards { id }
          complaints { id referrals { id } } } } }
        complaints(filter: {regionCode: $r}, first: 2) { pageInfo { endCursor } }
        referrals(first: 1) { pageInfo { endCursor } }
        changes(first: 1000) { endCursor events { id cursor } }
        latestCursor
        regions(parentCode: $r) { id code children { id code children { id code } } }
        programs(includeInactive: true) { id code }
    }""", {"r": p}, tokens["admin"])
    assert not listing.get("errors"), listing
    data = listing["data"]
    ids = {*households, verified, referred, returned, fresh, elsewhere, draft["referral"]["id"],
           sent["referral"]["id"], target_key["apiKey"]["id"], verified_result["complaint"]["id"]}
    for edge in data["all"]["edges"]:
        node = edge["node"]
        ids |= {node["id"], *(m["id"] for m in node["members"]), *(c["id"] for c in node["familyCards"])}
        for c in node["complaints"]:
            ids |= {c["id"], *(r["id"] for r in c["referrals"])}
    ids |= {e["id"] for e in data["changes"]["events"]}
    regions = [r for top in data["regions"] for r in [top, *top["children"],
                                                      *(g for c in top["children"] for g in c["children"])]]
    ids |= {to_global_id("Region", p), *(r["id"] for r in regions)}
    ids |= {prog["id"] for prog in data["programs"] if prog["code"].startswith(f"FZ{p}-")}
    ids |= {to_global_id("Staff", s.id) for s in staff.values()}
    ids.discard(principal_key["apiKey"]["id"])  # the principal's own key must survive revokeApiKey
    cursors = [data["households"]["pageInfo"]["endCursor"], data["complaints"]["pageInfo"]["endCursor"],
               data["referrals"]["pageInfo"]["endCursor"], data["changes"]["endCursor"], data["latestCursor"],
               *(e["cursor"] for e in data["changes"]["events"][-5:])]
    strings = [p, *(r["code"] for r in regions), *pid, "PKH", "BPNT", *(s.username for s in staff.values()),
               PASSWORD, refresh, *niks, *cards, *(c for c in cursors if c), "COMPLAINT", "CHANGE",
               "READ_PERSONAL_DATA", "Jl. Sudirman 1", "Anak tidak menerima KIP"]
    return {
        "principals": {
            "anonymous": {},
            "supervisor": {"authorization": f"Bearer {tokens['sup_a']}"},
            "facilitator": {"authorization": f"Bearer {tokens['fac_a1']}"},
            "admin": {"authorization": f"Bearer {tokens['admin']}"},
            "partner key": {"x-api-key": principal_key["secret"]},
            "forged token": {"authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"},
            "forged key": {"authorization": f"Bearer rjk_{'a' * 8}_{'b' * 43}"},
        },
        "ids": sorted(ids),
        "strings": sorted(set(strings)),
        "province": p,
    }


@pytest.fixture
def target(server: ServerProcess, seeded: dict[str, Any], live_database_url: str) -> Iterator[Target]:
    counts = RowCounts(live_database_url)
    fuzz = Target(server=server, province=seeded["province"], principals=seeded["principals"], ids=seeded["ids"],
                  strings=seeded["strings"], counts=counts)
    try:
        yield fuzz
        assert fuzz.healthy(), "the server stopped answering /healthz"
    finally:
        fuzz.http.close()
        counts.close()


# --- strategies -----------------------------------------------------------------------------------------

UNICODE_DIGITS = ["١٢٣", "１２３", "߁߂", "१२३", "𝟙𝟚𝟛", "๑๒", "Ⅻ", "²³", "٣٫٥"]
#: odd texts; Hypothesis draws the first ones of a list more often, so those that no text field accepts come last
ODD_TEXT = [" ", "", "\u202e\u0635", "ﷺ", "\ufeff", "\r\n", "𝕏" * 50, "'; DROP TABLE households; --", "%s%n",
            "${jndi:ldap://x}", "<script>alert(1)</script>", "\\", '"', "x" * 5000, "é" * 4001, "0", "-1", "1e400",
            "NaN", "null", "true", "12.74.01.1001.", "12..74", *UNICODE_DIGITS, "\ud800", "\udfff", "\x00", "a\x00b"]
BIG_INTS = [2**31, -(2**31) - 1, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**30, 10**300]
SMALL_INTS = [1, 2, 3, 0, -1, 4, 5, 7, 50, 500, 501, 1000, 1001, 2**31 - 1, -(2**31)]  # versions first
TIMEZONES = [None, dt.UTC, dt.timezone(dt.timedelta(hours=7)), dt.timezone(dt.timedelta(hours=14)),
             dt.timezone(dt.timedelta(hours=-12, minutes=-30))]


def forged_ids() -> st.SearchStrategy[str]:
    keys = st.one_of(st.integers(min_value=-(2**70), max_value=2**70).map(str), st.sampled_from(
        ["0", "-1", "1e3", "１２", "٣", " 1", "1 ", "+1", "0x1", "9" * 40, "1.0", "", ":"]), st.text(max_size=12))
    return st.builds(to_global_id, st.sampled_from([*NODE_TYPES, "Node", "", "Query", "household"]), keys)


def id_values(pool: list[str]) -> st.SearchStrategy[str | int]:
    real = st.sampled_from(pool)
    # half of them real (st.one_of would drop the repeats)
    return st.sampled_from((real, real, real, forged_ids(), st.text(max_size=110), st.integers())).flatmap(
        lambda chosen: chosen)


def string_values(pool: list[str], *, literal: bool = False) -> st.SearchStrategy[str]:
    """Strings: the district's codes, ids and names, odd text, digits. A GraphQL document cannot carry a lone
    surrogate (that is a syntax error), so only variables get those."""
    odd = [t for t in ODD_TEXT if not (literal and any(0xD800 <= ord(c) <= 0xDFFF for c in t))]
    # Hypothesis likes NUL; it stays among the odd texts, but most documents should get past the NUL guard
    text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")) if literal else st.text()
    return st.one_of(st.sampled_from(pool), text, st.sampled_from(odd), st.from_regex(r"\d{1,20}", fullmatch=True))


def int_values() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(SMALL_INTS), st.integers(min_value=-(2**31), max_value=2**31 - 1))


def dates() -> st.SearchStrategy[str]:
    return st.one_of(st.dates().map(dt.date.isoformat), st.sampled_from(["1975-08-17", "2012-01-05", "1899-12-31"]))


def datetimes() -> st.SearchStrategy[str]:
    return st.one_of(st.datetimes(timezones=st.sampled_from(TIMEZONES)).map(dt.datetime.isoformat),
                     st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:30",
                                      "2026-01-01T09:30:00+07:00", "2026-01-01T09:30:00"]))


def json_values(*, literal: bool = False) -> st.SearchStrategy[Any]:
    """JSON values, mostly indicator objects; a NUL, and (in variables only) a lone surrogate, among the texts."""
    indicators = st.sampled_from(sorted(INDICATOR_KEYS))
    keys = st.one_of(indicators, st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,12}", fullmatch=True))
    odd = ["tanah", "\x00"] if literal else ["tanah", "\ud800", "\x00"]
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=20), st.sampled_from(odd))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                          max_leaves=12)
    return st.one_of(st.dictionaries(indicators, scalars, max_size=4), values)


def as_node(value: Any) -> graphql.ValueNode:
    """A literal for a JSON value."""
    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, float):
        return nodes.Float(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([as_node(v) for v in value])
    return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=as_node(v))
                         for k, v in value.items()])


def custom_scalars(target: Target) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Literals for every scalar: the custom ones, and the built-in ones with the district's ids and codes."""
    return {
        "ID": id_values(target.ids).map(as_node),
        "String": string_values(target.strings, literal=True).map(nodes.String),
        "Int": int_values().map(nodes.Int),
        "Date": dates().map(nodes.String),
        "DateTime": datetimes().map(nodes.String),
        "JSON": json_values(literal=True).map(as_node),
    }


# --- mangling documents and requests ---------------------------------------------------------------------

SYNTAX = list("{}()[]:$!@.=,\"'#\\|&") + ["...", "query", "mutation", "fragment", "on", "\x00", "\ufeff", "\u2028",
                                          "é", "𝕏", "\n", "null", "__typename", "__schema { types { name } }"]


@st.composite
def mangled_text(draw: st.DrawFn, documents: st.SearchStrategy[str]) -> str:
    """A document with a few edits: flipped, dropped, inserted or duplicated characters, or a truncation."""
    text = draw(documents)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))
        edit = draw(st.sampled_from(["flip", "drop", "insert", "truncate", "duplicate", "swap"]))
        if edit == "flip":
            text = text[:at] + draw(st.sampled_from(SYNTAX) | st.characters()) + text[at + 1:]
        elif edit == "drop":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=8)):]
        elif edit == "insert":
            text = text[:at] + draw(st.sampled_from(SYNTAX) | st.text(max_size=4)) + text[at:]
        elif edit == "truncate":
            text = text[:at]
        elif edit == "duplicate":
            text = text[:at] + text[at:at + 40] * draw(st.integers(min_value=2, max_value=50)) + text[at:]
        else:
            text = text[:at] + text[at:at + 30].swapcase() + text[at + 30:]
    return text


ME = json.dumps("{ me { id username } }")
#: bodies a JSON parser or the GraphQL envelope must refuse with a 4xx
BROKEN_BODIES: dict[str, bytes] = {
    "empty": b"",
    "unclosed object": b"{",
    "JSON null": b"null",
    "JSON number": b"1",
    "JSON true": b"true",
    "JSON string": b'"query"',
    "empty batch": b"[]",
    "empty object": b"{}",
    "array nested 5000 deep": b"[" * 5000 + b"]" * 5000,
    "variables nested 5000 deep": ('{"query": ' + ME + ', "variables": ' + "[" * 5000 + "]" * 5000 + "}").encode(),
    "integer of 5001 digits": ('{"query": ' + ME + ', "variables": {"first": 1' + "0" * 5000 + "}}").encode(),
    "NaN and -Infinity": ('{"query": ' + ME + ', "variables": {"x": NaN, "y": -Infinity}}').encode(),
    "duplicate key": ('{"query": ' + ME + ', "query": 1}').encode(),
    "byte order mark": ('\ufeff{"query": ' + ME + "}").encode(),
    "UTF-16": ('{"query": ' + ME + "}").encode("utf-16"),
    "invalid UTF-8": ('{"query": ' + ME + "}").encode()[:-1] + b"\xff\xfe",
    "UTF-16 cut mid-character": ('{"query": ' + ME + "}").encode("utf-16-le")[:-1],
    "NUL first byte (read as UTF-16)": b'\x00"query": "{ latestCursor }"}',
    "lone surrogate in the document": b'{"query": "\\ud800 { me { id } }"}',
    "lone surrogate in a variable": ('{"query": ' + ME + ', "variables": {"a": "\\udfff"}}').encode(),
    "query is a number": b'{"query": 12}',
    "variables is a list": ('{"query": ' + ME + ', "variables": [1]}').encode(),
}


@st.composite
def envelopes(draw: st.DrawFn, documents: st.SearchStrategy[str]) -> tuple[bytes, str, str]:
    """(body, content type, method) for a document in an odd envelope or a broken body."""
    document = draw(documents)
    shape = draw(st.integers(min_value=1, max_value=12))
    content_type = draw(st.sampled_from(["application/json", "application/json", "application/json; charset=latin-1",
                                         "text/plain", "application/graphql", "multipart/form-data; boundary=x",
                                         "application/x-www-form-urlencoded", ""]))
    if shape == 1:
        body = json.dumps({"query": document}).encode()
        flips = draw(st.lists(st.tuples(st.integers(min_value=0, max_value=len(body) - 1),
                                        st.integers(min_value=0, max_value=255)), min_size=1, max_size=6))
        mutable = bytearray(body)
        for at, byte in flips:
            mutable[at] = byte
        return bytes(mutable), content_type, "POST"
    if shape == 2:
        body = json.dumps({"query": document}).encode()
        return body[:draw(st.integers(min_value=0, max_value=len(body)))], content_type, "POST"
    if shape == 3:
        return document.encode(errors="surrogatepass"), content_type, draw(st.sampled_from(["POST", "GET"]))
    odd: Any = draw(st.sampled_from([
        {"query": None}, {"query": 12}, {"query": [document]}, {"query": {"q": document}}, [{"query": document}],
        {"query": document, "variables": "{}"}, {"query": document, "variables": [1]},
        {"query": document, "variables": 1}, {"query": document, "operationName": 5},
        {"query": document, "operationName": "Nope"}, {"query": document, "extensions": "x"},
        {"query": document, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
        {"query": document, "variables": {"__proto__": {"x": 1}}}, {"variables": {}}, {"query": document * 3},
    ]))
    return json.dumps(odd).encode(), content_type, "POST"


# --- one operation per root field, with variables ----------------------------------------------------------


def selection(type_: graphql.GraphQLOutputType, depth: int, skip: frozenset[str] = frozenset()) -> str:
    """A selection set of every field without required arguments, ``depth`` object levels down."""
    named = graphql.get_named_type(type_)
    if graphql.is_leaf_type(named):
        return ""
    parts = ["__typename"]
    if isinstance(named, graphql.GraphQLInterfaceType):
        parts.append("id")
        if depth > 0:
            impls = SCHEMA.get_possible_types(named)
            types: dict[str, set[str]] = {}
            for impl in impls:
                for name, fld in impl.fields.items():
                    types.setdefault(name, set()).add(str(fld.type))
            # fields of one name but different types in two fragments would not validate (`kind`)
            clash = frozenset(name for name, found in types.items() if len(found) > 1)
            parts += [f"... on {impl.name} {selection(impl, depth - 1, clash)}" for impl in impls]
        return "{ " + " ".join(parts) + " }"
    assert isinstance(named, graphql.GraphQLObjectType)
    for name, fld in named.fields.items():
        if name in skip or any(graphql.is_required_argument(a) for a in fld.args.values()):
            continue
        if graphql.is_leaf_type(graphql.get_named_type(fld.type)):
            parts.append(name)
        elif depth > 0 or name == "errors":
            parts.append(f"{name} {selection(fld.type, max(depth - 1, 0))}")
    return "{ " + " ".join(parts) + " }"


@dataclass(frozen=True)
class Operation:
    kind: str
    name: str
    document: str
    arguments: dict[str, graphql.GraphQLArgument]


def operations() -> list[Operation]:
    found = []
    for kind, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type),
                       ("subscription", SCHEMA.subscription_type)):
        assert root is not None
        for name, fld in root.fields.items():
            declared = ", ".join(f"${a}: {arg.type}" for a, arg in fld.args.items())
            passed = ", ".join(f"{a}: ${a}" for a in fld.args)
            document = (f"{kind} Fuzz{'(' + declared + ')' if declared else ''} "
                        f"{{ {name}{'(' + passed + ')' if passed else ''} {selection(fld.type, 2)} }}")
            found.append(Operation(kind, name, document, dict(fld.args)))
    return found


OPERATIONS = operations()


def value_for(type_: graphql.GraphQLInputType, target: Target, field: str = "", parent: str = "",
              ) -> st.SearchStrategy[Any]:
    """A well-typed variable value: for the fields that matter to the resolvers, most often a realistic one (an id
    of the right type, a current version, a desa of the district, a household with a head...), so that a good
    share of the operations succeed and write, and a corrupted one fails late rather than at validation."""
    key = (str(type_), field, parent)
    if key not in target.values:
        target.values[key] = _value_for_field(type_, target, field, parent)
    return target.values[key]


def _value_for_field(type_: graphql.GraphQLInputType, target: Target, field: str, parent: str,
                     ) -> st.SearchStrategy[Any]:
    inner = _value_for(graphql.get_nullable_type(type_), target)
    realistic = REALISTIC.get(field) or (ID_OF_INPUT.get(parent, "Complaint") if field == "id" and parent else None)
    if realistic is not None:  # three times in four
        real = st.sampled_from(target.ids_of(realistic)) if isinstance(realistic, str) else realistic(target)
        inner = st.sampled_from((real, real, real, inner)).flatmap(lambda chosen: chosen)  # (one_of dedupes)
    if isinstance(type_, graphql.GraphQLNonNull):
        return inner
    return st.one_of(inner, st.none())


def _value_for(type_: graphql.GraphQLInputType, target: Target) -> st.SearchStrategy[Any]:
    if isinstance(type_, graphql.GraphQLList):
        return st.lists(value_for(type_.of_type, target), max_size=4)
    if isinstance(type_, graphql.GraphQLEnumType):
        return st.sampled_from(list(type_.values))
    if isinstance(type_, graphql.GraphQLInputObjectType):
        fields = {n: value_for(f.type, target, n, type_.name) for n, f in type_.fields.items()}
        required = {n: v for n, v in fields.items() if graphql.is_required_input_field(type_.fields[n])}
        return st.fixed_dictionaries(required, optional={n: v for n, v in fields.items() if n not in required})
    assert isinstance(type_, graphql.GraphQLScalarType)
    return {
        "ID": id_values(target.ids), "Int": int_values(), "Boolean": st.booleans(),
        "Float": st.one_of(st.floats(min_value=-200, max_value=200), st.sampled_from([2.96, 99.8, -0.0])),
        "Date": dates(), "DateTime": datetimes(), "JSON": json_values(),
    }.get(type_.name, string_values(target.strings))


DESAS = (".74.01.1001", ".74.01.1002", ".74.02.1001")
WORDS = ["Rahmat Lubis", "Siti Nasution", "Jl. Imam Bonjol 7", "Kartu PBI tidak aktif saat berobat",
         "Anak belum menerima KIP", "Sudah diverifikasi di lapangan", "Dirujuk ke Dinas Sosial", "Data KK berbeda"]


def _member(relation: str | None) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "name": st.sampled_from(WORDS[:2]), "sex": st.sampled_from(["MALE", "FEMALE"]),
        "birthDate": st.dates(dt.date(1930, 1, 1), dt.date(2020, 12, 31)).map(dt.date.isoformat),
        "relation": st.just(relation) if relation else st.sampled_from(["SPOUSE", "CHILD", "PARENT", "OTHER"]),
    }, optional={"occupation": st.sampled_from(["Nelayan", "Petani"]), "programs": st.just(["PKH"])})


def _realistic() -> dict[str, Callable[[Target], st.SearchStrategy[Any]] | str]:
    text = st.sampled_from(WORDS)
    return {
        "householdId": "Household", "complaintId": "Complaint", "programId": "Program", "assigneeId": "Staff",
        "memberId": "Member", "partnerId": "Staff", "supervisorId": "Staff",
        "expectedVersion": lambda t: st.integers(min_value=1, max_value=4),
        "regionCode": lambda t: st.sampled_from([t.province + desa for desa in DESAS]),
        "familyCards": lambda t: st.lists(st.from_regex(r"\d{10}", fullmatch=True).map(
            lambda d: t.province + "7401" + d), min_size=1, max_size=2),
        "members": lambda t: st.tuples(_member("HEAD"), st.lists(_member(None), max_size=2)).map(
            lambda m: [m[0], *m[1]]),
        "member": lambda t: _member(None),
        "rt": lambda t: st.from_regex(r"\d{1,3}", fullmatch=True),
        "rw": lambda t: st.from_regex(r"\d{1,3}", fullmatch=True),
        "latitude": lambda t: st.floats(min_value=-11, max_value=6),
        "longitude": lambda t: st.floats(min_value=94, max_value=142),
        "idempotencyKey": lambda t: st.uuids().map(str),
        "username": lambda t: st.from_regex(r"[a-z][a-z0-9._-]{2,20}", fullmatch=True),
        "password": lambda t: st.text(min_size=8, max_size=30),
        "nik": lambda t: st.none(),
        **{name: lambda t: text for name in ("name", "fullName", "address", "description", "reason", "decision",
                                             "outcome", "note", "receivingAgency")},
    }


REALISTIC = _realistic()
#: the type of the object an input's ``id`` names (complaint inputs are the rest)
ID_OF_INPUT = {"UpdateHouseholdInput": "Household", "ReferralTransitionInput": "Referral",
               "CompleteReferralInput": "Referral"}


HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([None, *BIG_INTS, 1.5, -0.0, 1e308, float("nan"), float("inf"), True, False, [], {}, [None],
                     {"": None}, {"id": 1}, *ODD_TEXT, "2026-02-30", "2026-13-01T00:00:00+07:00", "24:00",
                     "2026-01-01T00:00:00+25:00", "HEAD", "head", "NEW", "new", "__typename"]),
    st.integers(), st.floats(), st.text(max_size=30), st.lists(st.integers(), min_size=501, max_size=600),
)


#: characters that are valid JSON escapes but not storable or encodable text
TAINTS = ["\ud800", "\x00", "\udfff", "\udbff\udbff", "\ufffe", "\uffff", "\x7f", "\u202e", "\U0010ffff"]


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


EDITS = ("hostile", "taint", "null", "drop", "unknown", "wrap", "unwrap")


@st.composite
def corrupted(draw: st.DrawFn, value: Any, edits: tuple[str, ...] = EDITS) -> Any:
    """``value`` with one thing changed at a random place: a hostile value, a text with a NUL or a lone
    surrogate in it, a dropped or unknown key, null, a value wrapped in or taken out of a list."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(value, ())
    if len(paths) == 1:  # no variables: declare none and send one
        return {**value, draw(st.sampled_from(["x", "id", "input"])): draw(HOSTILE)}
    edit = draw(st.sampled_from(edits))
    # the root stays an object (the envelope test sends variables that are not one); leaves first, as Hypothesis
    # draws the first ones more often and a leaf spoilt leaves the rest of the input to reach the resolvers
    inner = sorted(paths[1:], key=len, reverse=True)
    texts = [p for p in inner if isinstance(_at(value, p), str)]
    if edit == "taint" and not texts:
        return value if edits == ("taint",) else draw(corrupted(value, ("hostile",)))
    path = draw(st.sampled_from(texts if edit == "taint" else inner))

    def change(node: Any, rest: tuple[Any, ...]) -> Any:
        if rest:
            copy = dict(node) if isinstance(node, dict) else list(node)
            copy[rest[0]] = change(node[rest[0]], rest[1:])
            if edit == "drop" and len(rest) == 1 and isinstance(copy, dict):
                del copy[rest[0]]
            return copy
        if edit == "hostile":
            return draw(HOSTILE)
        if edit == "taint":  # the text as it was, with a character a database or an encoder may choke on
            at = draw(st.integers(min_value=0, max_value=len(node)))
            return node[:at] + draw(st.sampled_from(TAINTS)) + node[at:]
        if edit == "null":
            return None
        if edit == "unknown" and isinstance(node, dict):
            return {**node, draw(st.sampled_from(["nope", "id", "__typename", "", "regionCode "])): 1}
        if edit == "wrap":
            return [node]
        if edit == "unwrap" and isinstance(node, list):
            return node[0] if node else None
        return node

    return change(value, path)


def _takes_text(type_: graphql.GraphQLInputType, seen: frozenset[str] = frozenset()) -> bool:
    named = graphql.get_named_type(type_)
    if isinstance(named, graphql.GraphQLInputObjectType):
        return named.name not in seen and any(_takes_text(f.type, seen | {named.name}) for f in named.fields.values())
    return named.name in {"String", "ID", "JSON"}


#: queries and mutations with some text among their arguments
TEXT_OPERATIONS = [op for op in OPERATIONS
                   if op.kind != "subscription" and any(_takes_text(a.type) for a in op.arguments.values())]


@st.composite
def typed_requests(draw: st.DrawFn, target: Target, *, taint: bool = False) -> dict[str, Any]:
    """One root field's operation with variables: well typed and then corrupted (0 to 3 times, sometimes with a
    variable declared as another type), or, with ``taint``, with one text spoilt and nothing else wrong."""
    operation = draw(st.sampled_from(TEXT_OPERATIONS if taint else OPERATIONS), label="operation")
    variables: dict[str, Any] = {}
    for name, argument in operation.arguments.items():
        if graphql.is_required_argument(argument) or draw(st.booleans()):
            variables[name] = draw(value_for(argument.type, target, name))
    document = operation.document
    if taint:
        variables = draw(corrupted(variables, ("taint",)))
        return {"query": document, "variables": variables}
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]), label="corruptions")):
        variables = draw(corrupted(variables))
    if operation.arguments and draw(st.integers(min_value=0, max_value=5)) == 5:  # (Hypothesis prefers 0)
        # declare a variable with another type than the argument takes
        name = draw(st.sampled_from(list(operation.arguments)))
        declared = str(operation.arguments[name].type)
        document = document.replace(f"${name}: {declared}", f"${name}: " + draw(st.sampled_from(
            ["Int", "Int!", "String!", "[ID!]!", "Boolean", "Float", "JSON", "ComplaintFilter", "Nope", "[[ID]]"])), 1)
    if draw(st.booleans()):
        return {"query": document, "variables": variables}
    return {"query": document, "variables": variables, "operationName": "Fuzz"}


# --- the properties ----------------------------------------------------------------------------------------


#: the order matters: Hypothesis draws the first ones more often
PRINCIPALS = ["supervisor", "facilitator", "partner key", "admin", "anonymous", "forged token", "forged key"]
#: every valid generated operation is sent as each of these, in this order
SENDERS = ["supervisor", "partner key", "anonymous", "facilitator", "admin"]


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_generated_queries_answer_without_unexpected_errors(target: Target, data: st.DataObject) -> None:
    document = data.draw(target.strategies["queries"], label="document")
    for principal in SENDERS:
        target.send_json(principal, {"query": document})


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_generated_mutations_answer_without_unexpected_errors(target: Target, data: st.DataObject) -> None:
    document = data.draw(target.strategies["mutations"], label="document")
    for principal in SENDERS:
        target.send_json(principal, {"query": document})


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_operations_violating_the_schema_are_refused(target: Target, data: st.DataObject) -> None:
    document = data.draw(target.strategies["negative"], label="document")
    outcome = target.send_json(data.draw(st.sampled_from(PRINCIPALS), label="principal"), {"query": document})
    assert top_level_errors(outcome.body), target.report(outcome, ["a schema violation was accepted"])


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_mangled_documents_and_requests_are_refused_cleanly(target: Target, data: st.DataObject) -> None:
    documents = target.strategies["operations"]
    principal = data.draw(st.sampled_from(PRINCIPALS), label="principal")
    if data.draw(st.booleans(), label="envelope"):
        body, content_type, method = data.draw(envelopes(documents), label="request")
        target.send(principal, body, content_type=content_type, method=method)
    else:
        target.send_json(principal, {"query": data.draw(mangled_text(documents), label="document")})


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_every_root_field_with_hostile_variables(target: Target, data: st.DataObject) -> None:
    payload = data.draw(typed_requests(target), label="request")
    body = json.dumps(payload).encode()  # NaN and Infinity go out as such: Python's JSON reads them back
    target.send(data.draw(st.sampled_from(PRINCIPALS), label="principal"), body)


@settings(FUZZ, max_examples=250)
@given(data=st.data())
def test_text_with_nul_or_lone_surrogates_is_refused_cleanly(target: Target, data: st.DataObject) -> None:
    """Valid JSON can carry ``\\u0000`` and unpaired surrogates (``\\ud800``), which PostgreSQL cannot store and
    UTF-8 cannot encode: every text argument must turn them away as bad input, not fail in the database."""
    payload = data.draw(typed_requests(target, taint=True), label="request")
    target.send(data.draw(st.sampled_from(PRINCIPALS), label="principal"), json.dumps(payload).encode())


def test_broken_request_bodies_get_clear_client_errors(server: ServerProcess, live_database_url: str) -> None:
    """Every body of :data:`BROKEN_BODIES`, anonymously and with a forged token; all failures are reported."""
    counts = RowCounts(live_database_url)
    target = Target(server=server, province="", ids=[], strings=[], counts=counts, principals={
        "anonymous": {}, "forged token": {"authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"}})
    failures = []
    try:
        for name, body in BROKEN_BODIES.items():
            for principal in target.principals:
                try:
                    target.send(principal, body)
                except AssertionError as failure:
                    failures.append(f"--- {name} ({principal})\n{str(failure)[:3000]}")
    finally:
        target.http.close()
        counts.close()
    assert not failures, f"{len(failures)} broken bodies were not refused cleanly:\n" + "\n".join(failures)


def test_the_fuzzed_server_stayed_up_and_logged_no_crash(server: ServerProcess) -> None:
    """After every fuzzing test of this module: the process still answers, and logged no traceback."""
    assert httpx.get(f"{server.http}/healthz", timeout=10).status_code == 200
    log = server.output()
    crashes = Counter(re.sub(r"'[^']*'", "'…'", line)[:200] for line in log.splitlines()
                      if re.match(r"[A-Za-z_][\w.]*(Error|Exception)\b", line))
    assert "Traceback" not in log, "the server logged tracebacks ending in:\n" + "\n".join(
        f"{n} x {line}" for line, n in crashes.most_common(20))

