"""The ``rujuk`` command as an operator runs it: migrate, seed the demo district, create a user, export."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent


def rujuk(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUJUK_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_seed_demo_creates_a_district_with_complaints_in_every_state(fresh_database_url: str) -> None:
    done = rujuk("seed-demo", "--households", "120", database_url=fresh_database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Seeded the demo district: 120 households" in done.stdout
    assert "supervisor1" in done.stdout and "rujuk-demo" in done.stdout
    regions = asyncio.run(fetch(fresh_database_url, "SELECT level, count(*) AS n FROM regions GROUP BY level"))
    assert {r["level"]: r["n"] for r in regions} == {"PROVINCE": 1, "KABUPATEN": 1, "KECAMATAN": 6, "DESA": 31}
    roles = asyncio.run(fetch(fresh_database_url, "SELECT role, count(*) AS n FROM staff GROUP BY role"))
    assert {r["role"]: r["n"] for r in roles} == {"ADMIN": 1, "MANAGER": 1, "SUPERVISOR": 3,
                                                  "PUSKESOS_OFFICER": 6, "FACILITATOR": 70}
    statuses = asyncio.run(fetch(fresh_database_url, "SELECT DISTINCT status FROM complaints"))
    assert {r["status"] for r in statuses} == {"NEW", "RETURNED", "VERIFIED", "IN_PROGRESS", "REFERRED",
                                               "RESOLVED", "REJECTED"}
    events = asyncio.run(fetch(fresh_database_url, "SELECT count(*) AS n FROM case_events"))
    assert events[0]["n"] > 120
    again = rujuk("seed-demo", "--households", "120", database_url=fresh_database_url)
    assert again.returncode == 0 and "already there" in again.stdout


def test_create_user_and_its_errors(fresh_database_url: str) -> None:
    assert rujuk("migrate", database_url=fresh_database_url).returncode == 0
    made = rujuk("create-user", "--username", "admin2", "--password", "a-long-password", "--role", "ADMIN",
                 database_url=fresh_database_url)
    assert made.returncode == 0, made.stdout + made.stderr
    taken = rujuk("create-user", "--username", "admin2", "--password", "a-long-password", "--role", "ADMIN",
                  database_url=fresh_database_url)
    assert taken.returncode == 2 and "taken" in taken.stdout
    weak = rujuk("create-user", "--username", "sup9", "--password", "short", "--role", "SUPERVISOR",
                 "--region", "99.99", database_url=fresh_database_url)
    assert weak.returncode == 2 and "password" in weak.stdout and "no such region" in weak.stdout
    rows = asyncio.run(fetch(fresh_database_url, "SELECT username, password_hash FROM staff"))
    assert [r["username"] for r in rows] == ["admin2"]
    assert rows[0]["password_hash"].startswith("$argon2")


def test_export_schema_writes_the_sdl(tmp_path: Path, fresh_database_url: str) -> None:
    out = tmp_path / "schema.graphql"
    done = rujuk("export-schema", "--output", str(out), database_url=fresh_database_url)
    assert done.returncode == 0
    assert out.read_text() == (ROOT / "schema.graphql").read_text()
