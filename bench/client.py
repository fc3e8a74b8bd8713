"""GraphQL over HTTP for the load generators (httpx, one pooled client per run), and the accounts and rows
of the loaded dataset the benchmarks act on."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson

from bench.http import Client
from bench.national import BENCH_PASSWORD
from domain.crypto import NIK, PersonalDataCipher


class GraphQLError(RuntimeError):
    pass


class GraphQL:
    """POSTs to ``<base>/graphql`` over keep-alive connections (at most ``connections`` at once)."""

    def __init__(self, base: str, *, connections: int = 64, path: str = "/graphql") -> None:
        self.url = base + path
        self.path = path
        #: the requests under measurement go through the lean client; ``http`` is for everything else (streams)
        self.lean = Client(base, connections=connections)
        self.http = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=connections,
                                                                      max_keepalive_connections=connections))

    async def post(self, query: str, variables: dict[str, Any] | None = None, *,
                   token: str | None = None) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        _, content = await self.lean.request("POST", self.path, orjson.dumps({"query": query,
                                                                              "variables": variables or {}}), headers)
        body: dict[str, Any] = orjson.loads(content)
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None, *,
                   token: str | None = None) -> dict[str, Any]:
        """The ``data`` of a response without errors (raises :class:`GraphQLError` otherwise)."""
        body = await self.post(query, variables, token=token)
        if body.get("errors") or body.get("data") is None:
            raise GraphQLError(str(body.get("errors"))[:500])
        data: dict[str, Any] = body["data"]
        return data

    async def close(self) -> None:
        await self.lean.close()
        await self.http.aclose()

    async def __aenter__(self) -> GraphQL:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken errors { code } } }"


async def login(client: GraphQL, username: str) -> str:
    data = await client.data(LOGIN, {"u": username, "p": BENCH_PASSWORD})
    token = data["login"]["accessToken"]
    if not token:
        raise GraphQLError(f"login of {username} failed: {data['login']['errors']}")
    return str(token)


@dataclass(frozen=True, slots=True)
class Facilitator:
    id: int
    username: str
    #: (household id, desa code) of households in the villages this facilitator covers
    households: tuple[tuple[int, str], ...]


@dataclass(slots=True)
class Fixture:
    """Who acts and on what: read once from the loaded database.

    Writes (intake, fan-out) go to another kabupaten than the one the reads look at (``kabupaten``), and
    never to the households of the nested page, so figures do not drift as runs add complaints."""

    kabupaten: str
    manager: str
    intake_kabupaten: str
    #: the manager of ``intake_kabupaten``, whose consoles watch its kecamatan
    console: str
    kecamatan: list[str]
    facilitators: list[Facilitator]
    niks: list[str]
    admin: str = "bench-admin"
    tokens: dict[str, str] = field(default_factory=dict)

    def household(self, rng: random.Random, client: int) -> tuple[Facilitator, int, str]:
        fac = self.facilitators[client % len(self.facilitators)]
        hid, region = rng.choice(fac.households)
        return fac, hid, region


async def read_fixture(conn: asyncpg.Connection, *, cipher: PersonalDataCipher, facilitators: int,
                       seed: int = 11) -> Fixture:
    """The busiest kabupaten (for reads) and its manager; the next busiest (for writes), its kecamatan and
    ``facilitators`` of its facilitators with the households they cover (the newest households, which the
    nested page reads, left out); a sample of real NIKs (opened with the app's cipher)."""
    busiest = [r["kab"] for r in await conn.fetch(
        "SELECT left(region_code, 5) AS kab FROM households GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2")]
    kabupaten, intake_kabupaten = busiest[0], busiest[-1]
    managers = "SELECT username FROM staff WHERE role = 'MANAGER' AND region_code = $1 ORDER BY id LIMIT 1"
    manager, console = await conn.fetchval(managers, kabupaten), await conn.fetchval(managers, intake_kabupaten)
    kecamatan = [r["code"] for r in await conn.fetch(
        "SELECT code FROM regions WHERE parent_code = $1 ORDER BY code", intake_kabupaten)]
    rows = await conn.fetch(
        "SELECT s.id, s.username, array_agg(h.id ORDER BY h.id) AS ids, array_agg(h.region_code ORDER BY h.id) AS codes"
        " FROM staff s JOIN households h ON h.region_code = s.region_code OR h.region_code = ANY(s.extra_region_codes)"
        " WHERE s.role = 'FACILITATOR' AND s.region_code LIKE $1 || '.%'"
        " AND h.id < (SELECT min(id) FROM (SELECT id FROM households ORDER BY id DESC LIMIT 100) newest)"
        " GROUP BY s.id, s.username ORDER BY count(*) DESC, s.id LIMIT $2", intake_kabupaten, facilitators)
    facs = [Facilitator(id=r["id"], username=r["username"], households=tuple(zip(r["ids"], r["codes"], strict=True)))
            for r in rows]
    sealed = await conn.fetch("SELECT nik_sealed FROM members WHERE nik_sealed IS NOT NULL "
                              "ORDER BY hashint8(id + $1) LIMIT 500", seed)
    niks = [cipher.open(r["nik_sealed"], kind=NIK) for r in sealed]
    return Fixture(kabupaten=kabupaten, manager=manager, intake_kabupaten=intake_kabupaten, console=console,
                   kecamatan=kecamatan, facilitators=facs, niks=niks)
