"""Settings, read once from the environment (``RUJUK_*``).

Production mode (``RUJUK_ENV=production``) refuses the development defaults for secrets, so a
deployment cannot start with keys that are published in this repository.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEV_SECRET_KEY = "rujuk-development-signing-key-not-for-production"
DEV_PII_KEY = "rujuk-development-personal-data-key-not-for-production"


class SettingsError(RuntimeError):
    """The environment holds a value rujuk cannot run with."""


def _bool(value: str) -> bool:
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"not a boolean: {value!r}")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    env: str = "development"
    database_url: str | None = None
    data_dir: Path = Path("var")
    secret_key: str = DEV_SECRET_KEY
    pii_key: str = DEV_PII_KEY
    token_ttl_seconds: int = 3600
    refresh_ttl_seconds: int = 14 * 24 * 3600
    broadcast_url: str = "memory://"
    cors_origins: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    max_page_size: int = 1000
    default_page_size: int = 50
    db_pool_size: int = 16
    log_level: str = "INFO"
    #: ``json`` (one object per line, for log shippers) or ``text``; production defaults to json
    log_format: str = "text"
    #: seconds between the event hub's own looks at the log (wake-ups make it look at once)
    event_poll_seconds: float = 2.0
    #: events buffered per subscriber before it is told to resume from its cursor
    subscriber_queue_size: int = 1000
    max_subscriptions_per_socket: int = 20
    #: requests per second (and burst) per authenticated principal, and per address without credentials
    rate_limit: float = 20.0
    rate_burst: int = 60
    anonymous_rate_limit: float = 5.0
    anonymous_rate_burst: int = 20
    max_body_bytes: int = 1_048_576
    #: seconds a WebSocket may take to send ``connection_init`` before it is closed with 4408
    ws_init_timeout_seconds: float = 10.0
    #: run the demo's facilitator simulator (``rujuk serve --demo`` turns it on)
    simulator: bool = False
    #: answer the hot list queries with one JSON-building SQL statement (``resolvers.compiled``); off, every
    #: query runs through the resolvers (the two give the same answers; a test compares them)
    compiled_reads: bool = True
    #: filings (of the one-statement kind) a process commits in one transaction at most, when they arrive while
    #: another is being written (``server.filing_batches``); 1: each is its own transaction
    filing_batch_size: int = 64
    #: such transactions a process has in flight at once (a second waits in PostgreSQL for the event-order lock,
    #: ready to write as soon as the one before commits: worth it only when no other process's transaction does)
    filing_transactions: int = 1

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def validate(self) -> None:
        if self.env not in {"development", "test", "production"}:
            raise SettingsError("RUJUK_ENV must be development, test or production")
        if self.production:
            if self.database_url is None:
                raise SettingsError("production needs RUJUK_DATABASE_URL: the embedded PostgreSQL is for development")
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise SettingsError("production needs RUJUK_SECRET_KEY: at least 32 characters, not the default")
            if self.pii_key == DEV_PII_KEY or len(self.pii_key) < 32:
                raise SettingsError("production needs RUJUK_PII_KEY: at least 32 characters, not the default")
        if not 1 <= self.filing_batch_size <= 1000:
            raise SettingsError("RUJUK_FILING_BATCH_SIZE must be between 1 and 1000")
        if not 1 <= self.filing_transactions <= self.db_pool_size:
            raise SettingsError("RUJUK_FILING_TRANSACTIONS must be between 1 and RUJUK_DB_POOL_SIZE")
        if not 1 <= self.default_page_size <= self.max_page_size:
            raise SettingsError("RUJUK_DEFAULT_PAGE_SIZE must be between 1 and RUJUK_MAX_PAGE_SIZE")


def normalise_database_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` forms and use the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    return url


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    url = env.get("RUJUK_DATABASE_URL") or env.get("DATABASE_URL") or None
    origins = tuple(o.strip() for o in env.get("RUJUK_CORS_ORIGINS", "").split(",") if o.strip())
    settings = Settings(
        env=env.get("RUJUK_ENV", "development"),
        database_url=normalise_database_url(url) if url else None,
        data_dir=Path(env.get("RUJUK_DATA_DIR", "var")),
        secret_key=env.get("RUJUK_SECRET_KEY", DEV_SECRET_KEY),
        pii_key=env.get("RUJUK_PII_KEY", DEV_PII_KEY),
        token_ttl_seconds=_int(env, "RUJUK_TOKEN_TTL_SECONDS", 3600),
        refresh_ttl_seconds=_int(env, "RUJUK_REFRESH_TTL_SECONDS", 14 * 24 * 3600),
        broadcast_url=env.get("RUJUK_BROADCAST_URL", "memory://"),
        cors_origins=origins,
        host=env.get("RUJUK_HOST", "127.0.0.1"),
        port=_int(env, "RUJUK_PORT", 8000),
        max_page_size=_int(env, "RUJUK_MAX_PAGE_SIZE", 1000),
        default_page_size=_int(env, "RUJUK_DEFAULT_PAGE_SIZE", 50),
        db_pool_size=_int(env, "RUJUK_DB_POOL_SIZE", 16),
        log_level=env.get("RUJUK_LOG_LEVEL", "INFO").upper(),
        log_format=env.get("RUJUK_LOG_FORMAT", "json" if env.get("RUJUK_ENV") == "production" else "text"),
        simulator=_bool(env.get("RUJUK_SIMULATOR", "0")),
        compiled_reads=_bool(env.get("RUJUK_COMPILED_READS", "1")),
        filing_batch_size=_int(env, "RUJUK_FILING_BATCH_SIZE", 64),
        filing_transactions=_int(env, "RUJUK_FILING_TRANSACTIONS", 1),
        event_poll_seconds=float(env.get("RUJUK_EVENT_POLL_SECONDS", "2.0")),
        subscriber_queue_size=_int(env, "RUJUK_SUBSCRIBER_QUEUE_SIZE", 1000),
        max_subscriptions_per_socket=_int(env, "RUJUK_MAX_SUBSCRIPTIONS_PER_SOCKET", 20),
        ws_init_timeout_seconds=float(env.get("RUJUK_WS_INIT_TIMEOUT_SECONDS", "10")),
        rate_limit=float(env.get("RUJUK_RATE_LIMIT", "20")),
        rate_burst=_int(env, "RUJUK_RATE_BURST", 60),
        anonymous_rate_limit=float(env.get("RUJUK_ANONYMOUS_RATE_LIMIT", "5")),
        anonymous_rate_burst=_int(env, "RUJUK_ANONYMOUS_RATE_BURST", 20),
        max_body_bytes=_int(env, "RUJUK_MAX_BODY_BYTES", 1_048_576),
    )
    settings.validate()
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return from_env()
