"""The ``rujuk`` command (also ``python -m server``): serve, migrate, seed-demo, create-user, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from server.observability import configure_logging
from server.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from domain.importer import ImportReport

log = logging.getLogger("rujuk")


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The database URL: ``RUJUK_DATABASE_URL`` when set, else an embedded PostgreSQL in the data
    directory (started here, stopped on the way out, recovered after an unclean exit)."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    from server.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(settings.data_dir / "postgres")
    _say(f"Starting the embedded PostgreSQL in {pg.data_dir} ...")
    url = pg.start()
    pg.register_atexit()
    try:
        yield url
    finally:
        pg.stop()


async def _migrate(url: str) -> None:
    from server import db

    engine = db.make_engine(url, pool_size=1)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()


async def _seed(url: str, settings: Settings, households: int) -> None:
    from domain.crypto import PersonalDataCipher
    from domain.demo import demo_logins, seed_demo
    from server import db

    engine = db.make_engine(url, pool_size=2)
    try:
        def progress(done: int, total: int) -> None:
            _say(f"  demo district: {done}/{total} households")

        summary = await seed_demo(db.make_sessionmaker(engine), cipher=PersonalDataCipher(settings.pii_key),
                                  households_count=households, progress=progress)
    finally:
        await engine.dispose()
    if summary is None:
        _say("The demo district is already there.")
    else:
        _say(f"Seeded the demo district: {summary.households} households, {summary.complaints} complaints, "
             f"{summary.referrals} referrals.")
    _say("Demo logins (password for all: rujuk-demo):")
    for username, _, what in demo_logins():
        _say(f"  {username:<15} {what}")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    with database(settings) as url:
        asyncio.run(_migrate(url))
        if args.demo:
            asyncio.run(_seed(url, settings, args.households))
        os.environ["RUJUK_DATABASE_URL"] = url
        if args.workers > 1 and settings.broadcast_url == "memory://":
            # several workers share one database: wake each other through it (LISTEN/NOTIFY)
            os.environ["RUJUK_BROADCAST_URL"] = url.replace("postgresql+asyncpg://", "postgresql://")
        if args.demo and not args.no_simulator:
            os.environ["RUJUK_SIMULATOR"] = "1"
        get_settings.cache_clear()  # the app (in this process or in workers) reads the updated environment
        host, port = args.host or settings.host, args.port or settings.port
        _say(f"rujuk serves GraphQL at http://{host}:{port}/graphql")
        log_config = configure_logging(settings.log_level, json_logs=settings.log_format == "json")
        uvicorn.run("server.asgi:app", host=host, port=port, workers=args.workers, log_config=log_config,
                    access_log=False,  # rujuk.access logs requests without query strings
                    proxy_headers=True, ws="server.websocket:WebSocketProtocol", loop="auto", http="auto",
                    # no permessage-deflate: its zlib state is ~40 KiB per socket (most of an idle
                    # subscription's memory) and it compresses every shared result again for each socket,
                    # while a result is a few hundred bytes
                    ws_per_message_deflate=False,
                    ws_max_size=settings.max_body_bytes,  # a WebSocket message is held to an HTTP body's limit
                    timeout_graceful_shutdown=20)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as url:
        asyncio.run(_migrate(url))
    _say("The database is at the newest migration.")
    return 0


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as url:
        asyncio.run(_migrate(url))
        asyncio.run(_seed(url, settings, args.households))
    return 0


async def _create_user(url: str, args: argparse.Namespace) -> int:
    from domain.enums import Role
    from domain.errors import DomainError, ValidationFailed
    from domain.staff.service import create_staff
    from server import db

    engine = db.make_engine(url, pool_size=1)
    try:
        async with db.make_sessionmaker(engine)() as session, session.begin():
            staff = await create_staff(session, username=args.username, password=args.password,
                                       full_name=args.full_name or args.username, role=Role(args.role),
                                       region_code=args.region, extra_region_codes=tuple(args.extra_region))
            _say(f"Created {staff.role.lower()} {staff.username} (id {staff.id}).")
    except DomainError as exc:
        for e in exc.errors if isinstance(exc, ValidationFailed) else [exc]:
            _say(f"error: {e.field}: {e.message}")
        return 2
    finally:
        await engine.dispose()
    return 0


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as url:
        asyncio.run(_migrate(url))
        return asyncio.run(_create_user(url, args))


async def _import(url: str, settings: Settings, args: argparse.Namespace,
                  rows: list[tuple[int, dict[str, str]]]) -> ImportReport | None:
    from sqlalchemy import select

    from domain.crypto import PersonalDataCipher
    from domain.events import write_events
    from domain.importer import import_households
    from domain.staff.models import Staff
    from domain.staff.service import actor_of
    from server import db

    engine = db.make_engine(url, pool_size=1)
    try:
        async with db.make_sessionmaker(engine)() as session:
            staff = (await session.scalars(select(Staff).where(Staff.username == args.as_user))).first()
            if staff is None or not staff.active:
                return None

            def progress(done: int, total: int) -> None:
                width = 30
                filled = int(width * done / max(total, 1))
                sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} households")
                if done == total:
                    sys.stderr.write("\n")
                sys.stderr.flush()

            report = await import_households(
                session, actor=actor_of(staff), cipher=PersonalDataCipher(settings.pii_key), rows=rows,
                all_or_nothing=args.all_or_nothing, progress=progress)
            if report.rolled_back:
                await session.rollback()
            else:
                await write_events(session)
                await session.commit()
            return report
    finally:
        await engine.dispose()


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from domain.importer import read_rows

    path = Path(args.file)
    if not path.is_file():
        _say(f"error: no such file: {path}")
        return 2
    rows = list(read_rows(path))
    with database(settings) as url:
        asyncio.run(_migrate(url))
        report = asyncio.run(_import(url, settings, args, rows))
    if report is None:
        _say(f"error: no active account {args.as_user!r} to import as")
        return 2
    for error in report.errors:
        _say(f"line {error.line}: {error.field or '-'}: {error.message}")
    if args.report:
        with Path(args.report).open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "field", "message"])
            writer.writerows([e.line, e.field or "", e.message] for e in report.errors)
    if report.rolled_back:
        _say(f"Imported nothing: {len(report.errors)} problem(s) and --all-or-nothing was given.")
        return 1
    _say(f"Imported {report.households} households ({report.members} people); {report.duplicates} already "
         f"registered; {len(report.errors)} problem(s) reported.")
    return 1 if report.errors else 0


def cmd_export_schema(args: argparse.Namespace, settings: Settings) -> int:
    from schema import export_sdl

    sdl = export_sdl()
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl, encoding="utf-8")
        _say(f"Wrote {args.output}.")
    return 0


def parser() -> argparse.ArgumentParser:
    from domain.enums import Role
    from domain.importer import COLUMNS as IMPORT_COLUMNS

    p = argparse.ArgumentParser(prog="rujuk", description="Case server for SLRT social service and referral.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the GraphQL server (migrates first)")
    s.add_argument("--demo", action="store_true", help="seed the demo district on first start")
    s.add_argument("--households", type=int, default=3000, help="demo size (households)")
    s.add_argument("--no-simulator", action="store_true", help="with --demo: do not simulate live intake")
    s.add_argument("--host", default=None)
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(run=cmd_serve)
    m = sub.add_parser("migrate", help="bring the database to the newest migration")
    m.set_defaults(run=cmd_migrate)
    d = sub.add_parser("seed-demo", help="seed the demo district (once)")
    d.add_argument("--households", type=int, default=3000)
    d.set_defaults(run=cmd_seed_demo)
    u = sub.add_parser("create-user", help="create a staff account")
    u.add_argument("--username", required=True)
    u.add_argument("--password", required=True)
    u.add_argument("--role", required=True, choices=[r.value for r in Role if r is not Role.PARTNER])
    u.add_argument("--region", default=None, help="Kemendagri code of the home region (not for admins)")
    u.add_argument("--extra-region", action="append", default=[], help="a further region covered")
    u.add_argument("--full-name", default=None)
    u.set_defaults(run=cmd_create_user)
    i = sub.add_parser("import-households", help="import a household list (CSV or XLSX, one row per person)",
                       description="Columns: " + ", ".join(IMPORT_COLUMNS) + ". Rows are grouped into households by "
                       "no_kk. By default good households are imported and each bad row is reported (exit code 1 "
                       "when any was); with --all-or-nothing one bad row imports nothing.")
    i.add_argument("file")
    i.add_argument("--as", dest="as_user", required=True, help="username the households are registered by")
    i.add_argument("--all-or-nothing", action="store_true")
    i.add_argument("--report", default=None, help="write the problems to this CSV file")
    i.set_defaults(run=cmd_import)
    e = sub.add_parser("export-schema", help="write the GraphQL SDL")
    e.add_argument("--output", default="schema.graphql")
    e.set_defaults(run=cmd_export_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        _say(f"configuration error: {exc}")
        return 2
    configure_logging(settings.log_level, json_logs=settings.log_format == "json")
    return int(args.run(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
