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


def test_serve_demo_on_the_embedded_database_from_nothing(tmp_path: Path) -> None:
    """The README's run command: no database configured, an embedded PostgreSQL is started in the data
    directory, migrated and seeded; Ctrl-C stops both; a second start reuses the data."""
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in {"RUJUK_DATABASE_URL", "DATABASE_URL"}}
    env.update({"RUJUK_DATA_DIR": str(tmp_path / "var"), "RUJUK_PORT": str(port)})

    def serve() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "server", "serve", "--demo", "--households", "25",
                                 "--no-simulator"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def wait_ready(proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("server did not become ready")

    login = {"query": 'mutation { login(username: "supervisor1", password: "rujuk-demo") { accessToken } }'}
    first = serve()
    try:
        wait_ready(first)
        token = httpx.post(f"http://127.0.0.1:{port}/graphql", json=login).json()["data"]["login"]["accessToken"]
        assert token
    finally:
        first.send_signal(signal.SIGINT)
        output = first.communicate(timeout=60)[0]
    assert "Seeded the demo district: 25 households" in output
    assert "embedded PostgreSQL stopped" in output
    assert not (tmp_path / "var" / "postgres" / "pgdata" / "postmaster.pid").exists()
    second = serve()
    try:
        wait_ready(second)
    finally:
        second.send_signal(signal.SIGINT)
        output = second.communicate(timeout=60)[0]
    assert "already there" in output
