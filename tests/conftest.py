"""Test harness: a real PostgreSQL, migrations once per session, each test inside an outer transaction
that is rolled back afterwards (``join_transaction_mode="create_savepoint"``).

The database is ``RUJUK_TEST_DATABASE_URL`` when set (CI points it at the machine's PostgreSQL);
otherwise an embedded PostgreSQL is started for the session, so the tests run on a fresh machine.
A fresh database is created for every session and dropped at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from domain.actor import Actor
from domain.crypto import PersonalDataCipher
from domain.enums import RegionLevel, Role
from domain.programs import Program
from domain.regions import Region
from domain.staff.models import Staff
from domain.staff.service import actor_of, hash_password
from domain.staff.tokens import TokenSigner
from schema import build_schema
from server import db
from server.context import Context, Services
from server.settings import Settings, normalise_database_url

PASSWORD = "correct-horse-battery"
PASSWORD_HASH = hash_password(PASSWORD)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server (its maintenance database)."""
    url = os.environ.get("RUJUK_TEST_DATABASE_URL")
    if url:
        yield normalise_database_url(url)
        return
    from server.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), database="postgres")
    yield pg.start()
    pg.stop()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_plain(server_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(server_url: str, prefix: str, *, migrated: bool) -> Iterator[str]:
    """A database of its own on the server, optionally migrated to head, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = _with_database(server_url, name)
    try:
        if migrated:
            async def migrate() -> None:
                engine = db.make_engine(url, pool_size=1)
                await db.migrate(engine)
                await engine.dispose()

            asyncio.run(migrate())
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session, migrated to head, dropped at the end."""
    with scratch_database(server_url, "rujuk_test", migrated=True) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = db.make_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        await outer.rollback()


@dataclass
class Published:
    batches: list[list[tuple[int, str]]] = field(default_factory=list)

    async def __call__(self, events: list[tuple[int, str]]) -> None:
        self.batches.append(events)

    @property
    def ids(self) -> list[int]:
        return [i for batch in self.batches for i, _ in batch]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(env="test", database_url=database_url, data_dir=Path("var-test"))


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def services(connection: AsyncConnection, settings: Settings, published: Published) -> Services:
    maker = async_sessionmaker(bind=connection, expire_on_commit=False, autoflush=False,
                               join_transaction_mode="create_savepoint")
    return Services(settings=settings, sessionmaker=maker, cipher=PersonalDataCipher(settings.pii_key),
                    signer=TokenSigner(settings.secret_key, access_ttl=600, refresh_ttl=3600), publish=published)


@pytest.fixture
async def session(services: Services) -> AsyncIterator[AsyncSession]:
    async with services.sessionmaker() as s:
        yield s


@dataclass
class World:
    """A small district: province 12, kabupaten 12.74, kecamatan 12.74.01 (desa 1001, 1002) and
    12.74.02 (desa 1001); programs; one account of each role."""

    staff: dict[str, Staff]
    programs: dict[str, Program]

    def actor(self, name: str) -> Actor:
        return actor_of(self.staff[name])


KEC_A, KEC_B = "12.74.01", "12.74.02"
DESA_A1, DESA_A2, DESA_B1 = "12.74.01.1001", "12.74.01.1002", "12.74.02.1001"


@pytest.fixture
async def world(session: AsyncSession) -> World:
    regions = [
        Region(code="12", name="Sumatera Utara", level=RegionLevel.PROVINCE.value),
        Region(code="12.74", name="Kota Tanjungbalai", level=RegionLevel.KABUPATEN.value, parent_code="12"),
        Region(code=KEC_A, name="Tanjungbalai Selatan", level=RegionLevel.KECAMATAN.value, parent_code="12.74"),
        Region(code=KEC_B, name="Tanjungbalai Utara", level=RegionLevel.KECAMATAN.value, parent_code="12.74"),
        Region(code=DESA_A1, name="Indra Sakti", level=RegionLevel.DESA.value, parent_code=KEC_A),
        Region(code=DESA_A2, name="Perwira", level=RegionLevel.DESA.value, parent_code=KEC_A),
        Region(code=DESA_B1, name="Matahalasan", level=RegionLevel.DESA.value, parent_code=KEC_B),
    ]
    for r in regions:
        session.add(r)
        await session.flush()
    programs = {
        "PBI-JK": Program(code="PBI-JK", name="PBI Jaminan Kesehatan", sector="HEALTH",
                          owner_agency="BPJS Kesehatan", sla_days=7),
        "KIP": Program(code="KIP", name="Kartu Indonesia Pintar", sector="EDUCATION",
                       owner_agency="Dinas Pendidikan", sla_days=14),
        "PKH": Program(code="PKH", name="Program Keluarga Harapan", sector="PKH",
                       owner_agency="Kementerian Sosial", sla_days=14),
    }
    session.add_all(programs.values())
    specs: list[tuple[str, Role, str | None, list[str]]] = [
        ("admin", Role.ADMIN, None, []),
        ("manager", Role.MANAGER, "12.74", []),
        ("sup_a", Role.SUPERVISOR, KEC_A, []),
        ("sup_b", Role.SUPERVISOR, KEC_B, []),
        ("officer_a", Role.PUSKESOS_OFFICER, KEC_A, []),
        ("fac_a1", Role.FACILITATOR, DESA_A1, []),
        ("fac_a1b", Role.FACILITATOR, DESA_A1, []),
        ("fac_a2", Role.FACILITATOR, DESA_A2, []),
        ("fac_b1", Role.FACILITATOR, DESA_B1, []),
        ("partner", Role.PARTNER, "12.74", []),
    ]
    staff = {}
    for name, role, region, extra in specs:
        s = Staff(username=name, password_hash=PASSWORD_HASH, full_name=name.replace("_", " ").title(),
                  role=role.value, region_code=region, extra_region_codes=extra)
        session.add(s)
        staff[name] = s
    await session.commit()
    return World(staff=staff, programs=programs)


class Client:
    """Runs operations through the schema with a real Context, like the HTTP endpoint does."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.schema = build_schema()

    async def execute(self, query: str, variables: dict[str, Any] | None = None, *,
                      actor: Actor | None = None) -> dict[str, Any]:
        ctx = Context(services=self.services, actor=actor, request_id="test")
        result = await self.schema.execute(query, variable_values=variables, context_value=ctx)
        return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}

    async def ok(self, query: str, variables: dict[str, Any] | None = None, *,
                 actor: Actor | None = None) -> dict[str, Any]:
        out = await self.execute(query, variables, actor=actor)
        assert not out["errors"], out["errors"]
        data: dict[str, Any] = out["data"]
        return data


@pytest.fixture
def client(services: Services) -> Client:
    return Client(services)


def nik(kecamatan: str, birth: dt.date, *, female: bool, serial: int) -> str:
    day = birth.day + (40 if female else 0)
    return "".join(kecamatan.split(".")) + f"{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"


# --- tests that commit for real (concurrency, HTTP end to end) use their own database and district ---------


@pytest.fixture(scope="session")
def live_database_url(server_url: str) -> Iterator[str]:
    """A second database for tests whose transactions really commit; each such test seeds its own province
    (see :func:`live_world`), so they never see each other's rows."""
    with scratch_database(server_url, "rujuk_live", migrated=True) as url:
        yield url


@pytest.fixture(scope="session")
async def live_engine(live_database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = db.make_engine(live_database_url, pool_size=10)
    yield eng
    await eng.dispose()


_provinces = iter(range(20, 100))  # province 12 is the demo district's


@dataclass
class LiveWorld:
    province: str
    staff: dict[str, Staff]

    def actor(self, name: str) -> Actor:
        return actor_of(self.staff[name])

    def code(self, suffix: str) -> str:
        """``code(".74.01.1001")`` -> that region in this test's own province."""
        return self.province + suffix


@pytest.fixture
async def live_world(live_engine: AsyncEngine) -> LiveWorld:
    """A committed district in a province of its own: kabupaten P.74, kecamatan P.74.01 (desa 1001, 1002)
    and P.74.02 (desa 1001), and one account of each role, usernames prefixed by the province."""
    p = str(next(_provinces))
    maker = db.make_sessionmaker(live_engine)
    async with maker() as session, session.begin():
        for code, level, parent in [
            (p, RegionLevel.PROVINCE, None), (f"{p}.74", RegionLevel.KABUPATEN, p),
            (f"{p}.74.01", RegionLevel.KECAMATAN, f"{p}.74"), (f"{p}.74.02", RegionLevel.KECAMATAN, f"{p}.74"),
            (f"{p}.74.01.1001", RegionLevel.DESA, f"{p}.74.01"), (f"{p}.74.01.1002", RegionLevel.DESA, f"{p}.74.01"),
            (f"{p}.74.02.1001", RegionLevel.DESA, f"{p}.74.02"),
        ]:
            session.add(Region(code=code, name=f"Wilayah {code}", level=level.value, parent_code=parent))
            await session.flush()
        staff = {}
        for name, role, region in [
            ("manager", Role.MANAGER, f"{p}.74"), ("sup_a", Role.SUPERVISOR, f"{p}.74.01"),
            ("sup_a2", Role.SUPERVISOR, f"{p}.74.01"),
            ("sup_b", Role.SUPERVISOR, f"{p}.74.02"), ("fac_a1", Role.FACILITATOR, f"{p}.74.01.1001"),
            ("fac_a1b", Role.FACILITATOR, f"{p}.74.01.1001"), ("fac_a2", Role.FACILITATOR, f"{p}.74.01.1002"),
            ("fac_b1", Role.FACILITATOR, f"{p}.74.02.1001"),
        ]:
            s = Staff(username=f"p{p}-{name.replace('_', '-')}", password_hash=PASSWORD_HASH, full_name=name,
                      role=role.value, region_code=region)
            session.add(s)
            staff[name] = s
    return LiveWorld(province=p, staff=staff)


@pytest.fixture
def live_services(live_engine: AsyncEngine, settings: Settings, published: Published) -> Services:
    return Services(settings=settings, sessionmaker=db.make_sessionmaker(live_engine),
                    cipher=PersonalDataCipher(settings.pii_key),
                    signer=TokenSigner(settings.secret_key, access_ttl=600, refresh_ttl=3600), publish=published)


@pytest.fixture
def fresh_database_url(server_url: str) -> Iterator[str]:
    """An empty database (not migrated) for one test, dropped afterwards."""
    with scratch_database(server_url, "rujuk_fresh", migrated=False) as url:
        yield url
