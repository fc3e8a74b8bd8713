"""Engine, session factory and migrations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).parent

#: a pooled connection idle for longer than this is pinged before it is handed out (a busy pool is not: a
#: ping per checkout costs three round trips, and a connection dropped under load fails its statement with
#: SERVICE_UNAVAILABLE, invalidating the pool, which the client retries)
PING_IDLE_SECONDS = 10.0


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max(pool_size // 2, 2),
        pool_timeout=15,
        pool_recycle=1800,
        pool_use_lifo=True,  # under light load the same few connections stay warm; the rest time out
        hide_parameters=True,  # statement parameters hold personal data: never in an error or a log
        connect_args={"server_settings": {"application_name": "rujuk", "timezone": "UTC"},
                      # compiled reads are run on the driver: their statements (often over asyncpg's 15 KiB
                      # default) stay prepared, so PostgreSQL keeps their plans
                      "max_cacheable_statement_size": 256 * 1024},
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError("pooled connection is gone") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database to the newest revision, serialised by an advisory lock across workers."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7215372915)")
        await conn.run_sync(_upgrade)


def _current_heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def at_head(engine: AsyncEngine) -> bool:
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    async with engine.connect() as conn:
        return await conn.run_sync(_current_heads) == heads
