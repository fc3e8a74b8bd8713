"""The embedded PostgreSQL server: data survives restarts and unclean exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from server.embedded import EmbeddedPostgres

REPO_ROOT = Path(__file__).resolve().parent.parent


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _fetch(url: str, query: str) -> list[Any]:
    conn = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        return [tuple(row) for row in await conn.fetch(query)]
    finally:
        await conn.close()


async def _execute(url: str, script: str) -> None:
    conn = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        await conn.execute(script)
    finally:
        await conn.close()


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until pid has exited (a zombie nobody reaps counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return
        if stat[stat.rindex(")") + 2] in "ZX":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still running")


def test_survives_restart_and_kill_of_postmaster(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    pg = EmbeddedPostgres(data_dir)
    try:
        url = pg.start()
        assert url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
        assert url.endswith("/rujuk")
        assert pg.url == url
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        assert (data_dir / "port").read_text().strip() == str(pg.port)

        assert asyncio.run(_fetch(url, "select 1")) == [(1,)]
        asyncio.run(_execute(url, "create table note (id int primary key, body text); "
                                  "insert into note values (1, 'kept')"))
        assert asyncio.run(_fetch(url, "select current_database(), current_user")) == [("rujuk", "postgres")]
        listen = asyncio.run(_fetch(url, "select current_setting('listen_addresses')"))
        assert listen == [("127.0.0.1",)]

        # A second manager on the same directory reuses the healthy running server, and stopping it leaves
        # the server running while the first still uses it.
        second = EmbeddedPostgres(data_dir)
        assert second.start() == url
        second.stop()
        assert (data_dir / "pgdata" / "postmaster.pid").exists()
        assert asyncio.run(_fetch(url, "select 1")) == [(1,)]

        pg.stop()
        assert not (data_dir / "pgdata" / "postmaster.pid").exists()
        pg.stop()  # stopping twice is harmless

        # Restart: same port (stored in data_dir/port), data still there.
        assert pg.start() == url
        assert asyncio.run(_fetch(url, "select body from note")) == [("kept",)]

        # Unclean exit of postgres itself: postmaster.pid stays behind and is stale.
        pid = _postmaster_pid(data_dir / "pgdata")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        assert (data_dir / "pgdata" / "postmaster.pid").exists()

        url = pg.start()
        assert _postmaster_pid(data_dir / "pgdata") != pid
        assert asyncio.run(_fetch(url, "select body from note")) == [("kept",)]
        assert "database system was interrupted" in (data_dir / "postgres.log").read_text()
    finally:
        pg.stop()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


_OWNER_SCRIPT = """
import sys, time
from pathlib import Path
from server.embedded import EmbeddedPostgres
url = EmbeddedPostgres(Path(sys.argv[1])).start()
sys.stdout.write(url + "\\n")
sys.stdout.flush()
time.sleep(120)
"""


def test_reuses_server_after_owner_was_killed(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    pg = EmbeddedPostgres(data_dir)
    with subprocess.Popen(
        [sys.executable, "-c", _OWNER_SCRIPT, str(data_dir)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    ) as owner:
        try:
            assert owner.stdout is not None
            url = owner.stdout.readline().strip()
            assert url.startswith("postgresql+asyncpg://"), "the owner process did not start the server"
            asyncio.run(_execute(url, "create table note (body text); insert into note values ('kept')"))
            pid = _postmaster_pid(data_dir / "pgdata")

            owner.kill()  # SIGKILL: no atexit, no stop
            owner.wait(timeout=10)

            assert pg.start() == url
            assert _postmaster_pid(data_dir / "pgdata") == pid
            assert asyncio.run(_fetch(url, "select body from note")) == [("kept",)]
        finally:
            if owner.poll() is None:
                owner.kill()
            pg.stop()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
