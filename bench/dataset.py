"""Load a national-scale synthetic dataset into a rujuk database with COPY.

    python -m bench.dataset --database-url postgresql://postgres@127.0.0.1:5432/rujuk_bench --scale 0.01

``--scale 1`` is 1M households (~4.2M members, ~2M complaints in every status, ~1M referrals, one case event
per change) in 514 kabupaten/kota of the 38 provinces; ``--scale 0.001`` is about 1,000 households. The
database is migrated first (``server.db.migrate``) and must hold no regions yet (``--reset`` empties it).

Every row satisfies the migration's constraints: the whole load is one transaction that drops the bulk
tables' secondary indexes and foreign keys, copies the rows, moves the case events into ``case_events``
numbered in time order (as the app numbers them in commit order), then re-creates every index and
foreign key, which validates them all, unique NIK hashes included. A failure rolls everything back.

NIK and No. KK are sealed with the app's own cipher and ``RUJUK_PII_KEY`` (the same key the servers under
test read), in worker processes, since sealing and generating people is the slow part. Every staff account
has the password :data:`bench.national.BENCH_PASSWORD`; ``bench-admin`` is a national administrator.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing.sharedctypes import SynchronizedArray

import asyncpg

from bench import national, synth
from bench.progress import Progress, say
from domain.crypto import PersonalDataCipher
from domain.staff.service import hash_password
from server import db
from server.settings import from_env, normalise_database_url

BULK_TABLES = ("households", "family_cards", "members", "complaints", "assignments", "referrals", "case_events")
IDENTITY_TABLES = ("staff", "programs", *BULK_TABLES)
TRUNCATE = ("case_events", "audit_log", "idempotency_keys", "assignments", "referrals", "complaints", "members",
            "family_cards", "households", "staff", "programs", "regions")


def plain_url(url: str) -> str:
    """The asyncpg form (``postgresql://``) of a database URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass(frozen=True, slots=True)
class Marker:
    """What a loaded database holds; kept as the database's comment so a later run can reuse it."""

    scale: float
    seed: int
    rows: dict[str, int]
    loaded_at: str
    seconds: float


async def read_marker(conn: asyncpg.Connection) -> Marker | None:
    text = await conn.fetchval("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                               "WHERE datname = current_database()")
    try:
        data = json.loads(text or "")
        return Marker(**data["rujuk_bench"])
    except (ValueError, KeyError, TypeError):
        return None


async def _write_marker(conn: asyncpg.Connection, marker: Marker) -> None:
    statement = await conn.fetchval("SELECT format('COMMENT ON DATABASE %I IS %L', current_database(), $1::text)",
                                    json.dumps({"rujuk_bench": asdict(marker)}))
    await conn.execute(statement)


class SharedIds:
    """Id ranges per table handed out across the worker processes (one shared array, one lock)."""

    def __init__(self, counters: SynchronizedArray[int]) -> None:
        self.counters = counters

    def reserve(self, table: str, count: int) -> int:
        i = synth.ID_TABLES.index(table)
        with self.counters.get_lock():
            first = self.counters[i] + 1
            self.counters[i] += count
        return first


_worker: tuple[SharedIds, PersonalDataCipher] | None = None


def _init_worker(counters: SynchronizedArray[int], pii_key: str) -> None:
    global _worker
    _worker = (SharedIds(counters), PersonalDataCipher(pii_key))


def _generate(chunk: national.ChunkPlan, now: dt.datetime) -> synth.Rows:
    assert _worker is not None, "the worker was not initialised"
    ids, cipher = _worker
    return synth.ChunkWriter(chunk, now=now, cipher=cipher, ids=ids).write()


async def _drop_secondary(conn: asyncpg.Connection) -> list[str]:
    """Drop the bulk tables' foreign keys, unique constraints and secondary indexes; returns the statements
    that re-create them (unique constraints and indexes first, then foreign keys)."""
    tables = list(BULK_TABLES)
    constraints = await conn.fetch(
        "SELECT conrelid::regclass::text AS tbl, conname, contype::text AS contype, pg_get_constraintdef(oid) AS def "
        "FROM pg_constraint WHERE contype IN ('f', 'u') AND (conrelid::regclass::text = ANY($1::text[]) "
        "OR confrelid::regclass::text = ANY($1::text[])) ORDER BY contype DESC", tables)
    indexes = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def FROM pg_index "
        "WHERE indrelid::regclass::text = ANY($1::text[]) AND NOT indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)", tables)
    for c in constraints:  # foreign keys first ('f' sorts after 'u', descending)
        await conn.execute(f'ALTER TABLE {c["tbl"]} DROP CONSTRAINT "{c["conname"]}"')
    for i in indexes:
        await conn.execute(f"DROP INDEX {i['name']}")
    uniques = [f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}' for c in constraints
               if c["contype"] == "u"]
    foreign = [f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}' for c in constraints
               if c["contype"] == "f"]
    return uniques + [i["def"] for i in indexes] + foreign


async def _copy_rows(conn: asyncpg.Connection, rows: synth.Rows, counts: dict[str, int]) -> None:
    for table, columns, records in (
        ("households", synth.HOUSEHOLD_COLUMNS, rows.households),
        ("family_cards", synth.FAMILY_CARD_COLUMNS, rows.family_cards),
        ("members", synth.MEMBER_COLUMNS, rows.members),
        ("complaints", synth.COMPLAINT_COLUMNS, rows.complaints),
        ("assignments", synth.ASSIGNMENT_COLUMNS, rows.assignments),
        ("referrals", synth.REFERRAL_COLUMNS, rows.referrals),
        ("bench_events", synth.EVENT_COLUMNS, rows.events),
    ):
        if records:
            await conn.copy_records_to_table(table, records=records, columns=columns)
        counts[table] = counts.get(table, 0) + len(records)


async def _generate_all(conn: asyncpg.Connection, ref: national.Reference, *, now: dt.datetime, workers: int,
                        pii_key: str, counts: dict[str, int]) -> None:
    total = sum(c.households for c in ref.chunks)
    bar = Progress("households", total, unit="households")
    loop = asyncio.get_running_loop()
    if workers <= 0:
        _init_worker(multiprocessing.Array("q", len(synth.ID_TABLES)), pii_key)
        for chunk in ref.chunks:
            await _copy_rows(conn, _generate(chunk, now), counts)
            bar.advance(chunk.households)
        bar.finish()
        return
    ctx = multiprocessing.get_context("spawn")
    counters = ctx.Array("q", len(synth.ID_TABLES))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(counters, pii_key)) as pool:
        pending: set[asyncio.Future[synth.Rows]] = set()
        chunks = iter(ref.chunks)
        sizes: dict[asyncio.Future[synth.Rows], int] = {}
        while True:
            while len(pending) < workers * 2 and (planned := next(chunks, None)) is not None:
                future = loop.run_in_executor(pool, _generate, planned, now)
                sizes[future] = planned.households
                pending.add(future)
            if not pending:
                break
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                await _copy_rows(conn, future.result(), counts)
                bar.advance(sizes.pop(future))
    bar.finish()


async def load(url: str, *, scale: float, seed: int = 7, workers: int | None = None, reset: bool = False) -> Marker:
    """Migrate the database at ``url`` and load the dataset of ``scale`` into it; returns what was loaded."""
    started = time.monotonic()
    engine = db.make_engine(normalise_database_url(url), pool_size=1)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()
    settings = from_env()
    sizes = national.Sizes.of(scale)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ref = national.plan(sizes, seed=seed, password_hash=hash_password(national.BENCH_PASSWORD), now=now)
    conn = await asyncpg.connect(plain_url(url), server_settings={"application_name": "rujuk-bench-load"})
    try:
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM regions)"):
            if not reset:
                raise RuntimeError("the database already holds regions: pass --reset to empty it first")
            await conn.execute(f"TRUNCATE {', '.join(TRUNCATE)} RESTART IDENTITY CASCADE")
        say(f"dataset: scale {scale}, {sizes.households:,} households in {sizes.kabupaten} kabupaten/kota, "
            f"{len(ref.regions):,} regions, {len(ref.staff):,} staff, {len(ref.chunks)} chunks")
        counts: dict[str, int] = {"regions": len(ref.regions), "programs": len(ref.programs),
                                  "staff": len(ref.staff)}
        async with conn.transaction():
            await conn.execute("SET LOCAL maintenance_work_mem = '1GB'; SET LOCAL work_mem = '256MB'")
            recreate = await _drop_secondary(conn)
            await conn.copy_records_to_table("regions", records=ref.regions, columns=national.REGION_COLUMNS)
            await conn.copy_records_to_table("programs", records=ref.programs, columns=national.PROGRAM_COLUMNS)
            await conn.copy_records_to_table("staff", records=ref.staff, columns=national.STAFF_COLUMNS)
            await conn.execute(
                "CREATE TEMP TABLE bench_events (seq bigserial, occurred_at timestamptz, kind text, region_code text,"
                " household_id bigint, complaint_id bigint, referral_id bigint, actor_id bigint, data jsonb)"
                " ON COMMIT DROP")
            await _generate_all(conn, ref, now=now, workers=(os.cpu_count() or 1) if workers is None else workers,
                                pii_key=settings.pii_key, counts=counts)
            counts["case_events"] = counts.pop("bench_events", 0)
            say(f"case events: numbering {counts['case_events']:,} in time order")
            await conn.execute(
                "INSERT INTO case_events (id, occurred_at, kind, region_code, household_id, complaint_id,"
                " referral_id, actor_id, data) SELECT row_number() OVER (ORDER BY occurred_at, seq), occurred_at,"
                " kind, region_code, household_id, complaint_id, referral_id, actor_id, data FROM bench_events")
            bar = Progress("indexes and foreign keys", len(recreate), unit="statements")
            for statement in recreate:
                await conn.execute(statement)
                bar.advance()
            bar.finish()
            for table in IDENTITY_TABLES:
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"GREATEST((SELECT max(id) FROM {table}), 1))")
            marker = Marker(scale=scale, seed=seed, rows=counts, loaded_at=now.isoformat(),
                            seconds=round(time.monotonic() - started, 1))
            await _write_marker(conn, marker)
        say("vacuum analyze")
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()
    say(f"dataset loaded in {time.monotonic() - started:.0f}s: " +
        ", ".join(f"{table} {n:,}" for table, n in counts.items()))
    return marker


async def ensure_database(maintenance_url: str, name: str, *, drop: bool = False) -> str:
    """Create database ``name`` on the server of ``maintenance_url`` if missing; returns its URL."""
    conn = await asyncpg.connect(plain_url(maintenance_url))
    try:
        if drop:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = plain_url(maintenance_url).rpartition("/")
    return f"{base}/{name}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("RUJUK_DATABASE_URL"),
                        help="database to load (default: RUJUK_DATABASE_URL)")
    parser.add_argument("--scale", type=float, default=0.01, help="1.0 = 1M households (default 0.01)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None, help="generator processes (default: CPU count; 0: "
                        "generate in this process)")
    parser.add_argument("--reset", action="store_true", help="empty the database's tables first")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set RUJUK_DATABASE_URL")
    asyncio.run(load(args.database_url, scale=args.scale, seed=args.seed, workers=args.workers, reset=args.reset))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

