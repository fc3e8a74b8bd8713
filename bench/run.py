"""Run every benchmark with its baselines and write ``bench/results/<timestamp>.{json,md}`` and ``latest.md``.

    python -m bench.run --scale 0.01 --duration 10
    python -m bench.run --scale 0.1 --duration 30 --fanout-sockets 200,1000

The dataset is loaded (``bench.dataset``) into ``rujuk_bench_<scale>`` on the PostgreSQL server of
``--server-url`` unless ``--database-url`` names a database; a database already holding the same scale is
reused. Then, in order: rujuk on 1 uvicorn worker, rujuk on 2 workers (broadcast over PostgreSQL), PostGraphile
5 (skipped when node or its npm packages are missing), and the plain-SQL floors through asyncpg. Every load
generator is bounded in time and count and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import platform
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from bench import fanout, intake, pull, reads
from bench.client import Fixture, GraphQL, login, read_fixture
from bench.dataset import Marker, ensure_database, load, plain_url, read_marker
from bench.progress import say
from bench.report import Results, Row, latency_text, rate_text
from bench.servers import ROOT, PostGraphile, Rujuk, postgraphile_missing
from domain.crypto import PersonalDataCipher
from server.settings import from_env

RESULTS = Path(__file__).resolve().parent / "results"
PG = "PostGraphile 5 (1 Node process)"
SQL = "plain SQL via asyncpg"
#: diagnostics, not baselines: rujuk's filing statement with each filing its own transaction (as rujuk filed before
#: it grouped them), and that without the event-order lock
ALONE = "its SQL, one filing per transaction"
UNORDERED = "its SQL, one filing per transaction, without the event-order lock"


class Run:
    """One benchmark run: its settings, the fixture it acts with, and the results it gathers."""

    def __init__(self, args: argparse.Namespace, url: str, marker: Marker, fixture: Fixture, logs: Path) -> None:
        self.args = args
        self.url = url
        self.fixture = fixture
        self.logs = logs
        self.cipher = PersonalDataCipher(from_env().pii_key)
        self.failures: list[str] = []
        self.results = Results(meta=_meta(args, marker))

    @property
    def timing(self) -> dict[str, float]:
        return {"duration": self.args.duration, "warmup": self.args.warmup}

    def wanted(self, *names: str) -> bool:
        return not self.args.only or bool(self.args.only & set(names))

    async def guarded(self, name: str, system: str, work: Coroutine[Any, Any, Any]) -> Any:
        """Run one measurement; a failure is recorded (and the run goes on) instead of ending the run."""
        if not self.wanted(name):
            work.close()
            return None
        await self._quiet()
        load_before = os.getloadavg()[0]
        say(f"  {name} · {system} … (load average {load_before:.1f})")
        try:
            figures = await work
        except Exception as exc:  # one broken benchmark must not cost the others' figures
            self.failures.append(f"{name} / {system}: {exc!r}")
            self.results.record(name, system, {"error": repr(exc), "trace": traceback.format_exc()[-2000:]})
            say(f"    failed: {exc!r}")
            return None
        summary = figures.summary() if hasattr(figures, "summary") else figures
        # other work on the machine shares its cores with the servers under test: keep it on record
        summary["load_average_before"] = round(load_before, 2)
        summary["load_average_after"] = round(os.getloadavg()[0], 2)
        self.results.record(name, system, summary)
        say(f"    {_headline(summary)}")
        return summary

    async def _quiet(self) -> None:
        """With ``--max-load``, wait (at most two minutes) for other work on the machine to calm down."""
        if self.args.max_load is None:
            return
        for _ in range(24):
            if os.getloadavg()[0] <= self.args.max_load:
                return
            await asyncio.sleep(5)
        say(f"    load average still {os.getloadavg()[0]:.1f} (> {self.args.max_load}): measuring anyway")

    def skip(self, name: str, system: str, reason: str) -> None:
        self.results.record(name, system, {"skipped": reason})
        say(f"  {name} · {system}: skipped ({reason})")

    async def rujuk(self, workers: int) -> None:
        a, f = self.args, self.fixture
        if workers > 1 and not self.wanted("intake", "nested_page", "fanout"):
            return
        system = f"rujuk, {workers} worker{'s' if workers > 1 else ''}"
        say(f"rujuk on {workers} uvicorn worker(s)")
        first, *more = a.fanout_sockets
        with Rujuk(self.url, self.logs, workers=workers) as server:
            async with GraphQL(server.base, connections=a.clients + 8) as client:
                if not f.tokens:
                    await _log_in(client, f)
                # first, while the process is fresh: its memory per idle subscription is read from VmRSS
                await self.guarded("fanout", _consoles(system, first), fanout.rujuk(
                    server, client, f, sockets=first, rate=a.fanout_rate, duration=a.duration))
                await self._spread(server, "intake", system, intake.rujuk(client, f, clients=a.clients,
                                                                          **self.timing))
                await self._spread(server, "nested_page", system, reads.nested_rujuk(client, f, clients=a.clients,
                                                                                     **self.timing))
                if workers == 1:
                    await self.guarded("nik_lookup", system, reads.nik_rujuk(client, f, clients=a.lookup_clients,
                                                                              **self.timing))
                    await self.guarded("workload", system, reads.workload_rujuk(client, f, clients=a.lookup_clients,
                                                                                 **self.timing))
                    await self.guarded("pull_changes", system, pull.changes_rujuk(client, f, duration=a.duration))
                    await self.guarded("pull_complaints", system, pull.complaints_rujuk(client, f,
                                                                                         duration=a.duration))
                    await self.guarded("pull_export", system, pull.export_rujuk(client, f, duration=a.duration))
        for sockets in more if self.wanted("fanout") else ():
            # each further number of consoles on a fresh server: memory freed by the sockets before would be
            # reused by the next ones, and their growth of VmRSS would no longer be theirs
            with Rujuk(self.url, self.logs, workers=workers) as server:
                async with GraphQL(server.base, connections=a.clients + 8) as client:
                    await self.guarded("fanout", _consoles(system, sockets), fanout.rujuk(
                        server, client, f, sockets=sockets, rate=a.fanout_rate, duration=a.duration))

    async def _spread(self, server: Rujuk, name: str, system: str, work: Coroutine[Any, Any, Any]) -> None:
        """A measurement of a server under load, with how its workers shared the clients' connections (uvicorn's
        workers accept on one shared socket, so the split is the kernel's and the workers' timing)."""
        summary = await self.guarded(name, system, work)
        if summary is not None and server.workers > 1:
            summary["client_connections_per_worker"] = server.client_connections()

    async def postgraphile(self) -> None:
        a = self.args
        reason = "--no-postgraphile" if a.no_postgraphile else postgraphile_missing()
        if not self.wanted("intake", "nested_page"):
            return
        if reason is not None:
            for name in ("intake", "nested_page"):
                self.skip(name, PG, reason)
            return
        say("PostGraphile 5")
        with PostGraphile(self.url, self.logs) as server:
            async with GraphQL(server.base, connections=a.clients + 8) as client:
                await self.guarded("intake", PG, intake.postgraphile(client, self.fixture, clients=a.clients,
                                                                     **self.timing))
                await self.guarded("nested_page", PG, reads.nested_postgraphile(client, clients=a.clients,
                                                                                **self.timing))

    async def floors(self) -> None:
        a, f = self.args, self.fixture
        say("plain SQL floors (asyncpg, pool of 20 like one rujuk worker)")
        pool = await asyncpg.create_pool(plain_url(self.url), min_size=2, max_size=20)
        try:
            await self.guarded("intake", SQL, intake.grouped_floor(plain_url(self.url), f, clients=a.clients,
                                                                   **self.timing))
            await self.guarded("intake", ALONE, intake.floor(pool, f, clients=a.clients, **self.timing))
            await self.guarded("intake", UNORDERED, intake.floor(pool, f, clients=a.clients, unordered=True,
                                                                 **self.timing))
            await self.guarded("nested_page", SQL, reads.nested_floor(pool, clients=a.clients, **self.timing))
            await self.guarded("nik_lookup", SQL, reads.nik_floor(pool, f, self.cipher, clients=a.lookup_clients,
                                                                  **self.timing))
            await self.guarded("workload", SQL, reads.workload_floor(pool, f, clients=a.lookup_clients,
                                                                     **self.timing))
            await self.guarded("pull_changes", SQL, pull.changes_floor(pool, duration=a.duration))
            await self.guarded("pull_complaints", SQL, pull.complaints_floor(pool, duration=a.duration))
            if self.wanted("pull_export"):
                await self.guarded("pull_export", SQL, pull.complaints_floor(pool, duration=a.duration))
        finally:
            await pool.close()
        await self.guarded("fanout", SQL, fanout.floor(plain_url(self.url), f, rate=a.fanout_rate,
                                                       duration=a.duration))

    def table(self) -> None:
        b, a = self.results.benchmarks, self.args
        rows = self.results.rows
        r1, r2 = "rujuk, 1 worker", "rujuk, 2 workers"

        def rate_row(title: str, name: str, system: str, baseline: str, unit: str = "req/s") -> None:
            ours, theirs = b.get(name, {}).get(system, {}), b.get(name, {}).get(baseline, {})
            rows.append(Row(title, unit, ours.get("per_second"), _text(ours, rate_text),
                            baseline, theirs.get("per_second"), _text(theirs, rate_text)))

        def latency_row(title: str, name: str) -> None:
            ours, theirs = b.get(name, {}).get(r1, {}), b.get(name, {}).get(SQL, {})
            rows.append(Row(title, "p50 ms", ours.get("p50_ms"), _text(ours, latency_text), SQL,
                            theirs.get("p50_ms"), _text(theirs, latency_text)))

        intake_title = f"Intake `fileComplaint`, {a.clients} clients"
        rate_row(f"{intake_title}, 1 worker", "intake", r1, PG)
        rate_row(f"{intake_title}, 2 workers", "intake", r2, PG)
        rate_row(f"{intake_title}, 1 worker", "intake", r1, SQL)
        rate_row(f"{intake_title}, 1 worker", "intake", r1, ALONE)
        rate_row(f"{intake_title}, 1 worker", "intake", r1, UNORDERED)
        page_title = f"Nested page: 50 households + members, complaints, referrals; {a.clients} clients"
        rate_row(f"{page_title}, 1 worker", "nested_page", r1, PG)
        rate_row(f"{page_title}, 2 workers", "nested_page", r2, PG)
        rate_row(f"{page_title}, 1 worker", "nested_page", r1, SQL)
        for sockets in a.fanout_sockets:
            for system in (r1, r2):
                ours, floor = b.get("fanout", {}).get(_consoles(system, sockets), {}), b.get("fanout", {}).get(SQL, {})
                title = f"Fan-out: {sockets} `intake` consoles, {a.fanout_rate:g} complaints/s, {system[7:]}"
                rows.append(Row(title, "p50 ms", _dig(ours, "after_commit_stamp", "p50_ms"), _fanout_text(ours),
                                "PostgreSQL LISTEN/NOTIFY, 1 listener", _dig(floor, "after_created_at", "p50_ms"),
                                _fanout_text(floor)))
                rows.append(Row(f"Server RSS per idle subscription, {sockets} sockets, {system[7:]}", "KiB",
                                ours.get("rss_per_subscription_kib"), _rss_text(ours), "none (absolute figure)"))
        for name, title in (("pull_changes", "Partner pull `changes(first: 1000)`"),
                            ("pull_complaints", "Partner pull keyset `complaints(first: 1000)`"),
                            ("pull_export", "Partner pull bulk export `/export/complaints.ndjson`")):
            ours, floor = b.get(name, {}).get(r1, {}), b.get(name, {}).get(SQL, {})
            rows.append(Row(f"{title}, 1 worker", "rows/s", ours.get("rows_per_second"), _pull_text(ours),
                            SQL + ", same keyset", floor.get("rows_per_second"), _pull_text(floor)))
        latency_row(f"NIK search `households(filter: {{nik}})`, {a.lookup_clients} clients, 1 worker", "nik_lookup")
        latency_row(f"`workload(regionCode: <kabupaten>)`, {a.lookup_clients} clients, 1 worker", "workload")


def _consoles(system: str, sockets: int) -> str:
    """The system a fan-out figure is recorded under: the server and how many consoles it served."""
    return f"{system}, {sockets} consoles"


def _sockets(value: str) -> list[int]:
    try:
        counts = [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated numbers of consoles, e.g. 1000,5000") from None
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError("each number of consoles is at least 1")
    return counts


def _dig(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        d = d.get(k) or {}
    return d or None


def _text(summary: dict[str, Any], fmt: Callable[[dict[str, Any]], str]) -> str:
    if not summary:
        return "—"
    if "skipped" in summary:
        return f"skipped: {summary['skipped']}"
    if "error" in summary:
        return "failed (see JSON)"
    return fmt(summary)


def _fanout_text(s: dict[str, Any]) -> str:
    if not s or "error" in s:
        return _text(s, str)
    r, lower = s["after_created_at"], s["after_response"]
    share = f", {s['delivered_share']:.1%} of those due" if s.get("delivered_share") is not None else ""
    stamp = s.get("after_commit_stamp")
    if stamp and stamp.get("deliveries"):
        return (f"p50 {stamp['p50_ms']:,.1f} ms · p99 {stamp['p99_ms']:,.1f} ms after the commit stamp (after "
                f"`createdAt`: p99 {r['p99_ms']:,.1f} ms; after the response: p50 {lower['p50_ms']:,.1f} ms; "
                f"{stamp['deliveries']:,} deliveries{share})")
    return (f"p50 {r['p50_ms']:,.1f} ms · p99 {r['p99_ms']:,.1f} ms after `createdAt` (p50 {lower['p50_ms']:,.1f} ms "
            f"after COMMIT returned; {r['deliveries']:,} deliveries{share})")


def _rss_text(s: dict[str, Any]) -> str:
    if not s or "error" in s:
        return _text(s, str)
    return (f"{s['rss_per_subscription_kib']:,.1f} KiB ({s['rss_before_kib'] / 1024:,.0f} → "
            f"{s['rss_after_kib'] / 1024:,.0f} MiB for {s['sockets']:,} sockets)")


def _pull_text(s: dict[str, Any]) -> str:
    if not s or "error" in s:
        return _text(s, str)
    return f"{s['rows_per_second']:,.0f} rows/s ({s['rows']:,} rows{', all' if s['complete'] else ''})"


def _headline(summary: dict[str, Any]) -> str:
    if "per_second" in summary:
        return rate_text(summary) + f" · {summary['errors']} errors"
    if "rows_per_second" in summary:
        return _pull_text(summary)
    if "after_response" in summary:
        return _fanout_text(summary) + (f" · {_rss_text(summary)}" if "rss_before_kib" in summary else "")
    return str(summary)[:200]


async def _log_in(client: GraphQL, fixture: Fixture) -> None:
    names = [fixture.admin, fixture.manager, fixture.console, *(f.username for f in fixture.facilitators)]
    slots = asyncio.Semaphore(4)

    async def one(name: str) -> None:
        async with slots:
            fixture.tokens[name] = await login(client, name)

    await asyncio.gather(*(one(n) for n in names))


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _meta(args: argparse.Namespace, marker: Marker) -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"started_at": args.started_at, "scale": marker.scale, "duration": args.duration, "warmup": args.warmup,
            "clients": args.clients, "lookup_clients": args.lookup_clients, "fanout_sockets": args.fanout_sockets,
            "fanout_rate": args.fanout_rate, "git": _git(), "dataset": {"rows": marker.rows, "seed": marker.seed},
            "machine": f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"}


async def prepare(args: argparse.Namespace) -> tuple[str, Marker]:
    """The database to run against, loaded with the dataset of ``args.scale`` (reused when it already is)."""
    name = "rujuk_bench_" + str(args.scale).replace(".", "_")
    url = args.database_url or await ensure_database(args.server_url, name)
    conn = await asyncpg.connect(plain_url(url))
    try:
        marker = await read_marker(conn)
    finally:
        await conn.close()
    if marker is not None and marker.scale == args.scale and not args.reload:
        say(f"dataset: reusing scale {marker.scale} loaded {marker.loaded_at} "
            f"({marker.rows.get('households', 0):,} households)")
        return url, marker
    marker = await load(url, scale=args.scale, seed=args.seed, workers=args.dataset_workers,
                        reset=args.reload or marker is not None)
    return url, marker


async def run(args: argparse.Namespace) -> tuple[Path, list[str]]:
    url, marker = await prepare(args)
    conn = await asyncpg.connect(plain_url(url))
    try:
        pg_version = await conn.fetchval("SHOW server_version")
        fixture = await read_fixture(conn, cipher=PersonalDataCipher(from_env().pii_key), facilitators=args.clients)
    finally:
        await conn.close()
    logs = Path(tempfile.mkdtemp(prefix="rujuk-bench-logs-"))
    say(f"fixture: reads in kabupaten {fixture.kabupaten}, writes in {fixture.intake_kabupaten} "
        f"({len(fixture.facilitators)} facilitators, {len(fixture.kecamatan)} kecamatan); server logs in {logs}")
    bench = Run(args, url, marker, fixture, logs)
    bench.results.meta["machine"] += f", PostgreSQL {pg_version}"
    await bench.rujuk(workers=1)
    await bench.rujuk(workers=2)
    await bench.postgraphile()
    await bench.floors()
    bench.table()
    bench.results.meta["failures"] = bench.failures
    path = bench.results.write(args.results_dir, args.stamp)
    return path, bench.failures


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.01, help="dataset size, 1.0 = 1M households (0.01)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per figure (10)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring (duration/5, ≤ 2)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients for intake and the page (32)")
    parser.add_argument("--lookup-clients", type=int, default=4, help="concurrent clients for lookups (4)")
    parser.add_argument("--fanout-sockets", type=_sockets, default=[1000, 5000],
                        help="subscribed consoles, one fan-out figure per number (1000,5000)")
    parser.add_argument("--fanout-rate", type=float, default=50.0, help="complaints filed per second (50)")
    parser.add_argument("--database-url", default=None, help="use this database instead of rujuk_bench_<scale>")
    parser.add_argument("--server-url", default=os.environ.get("RUJUK_BENCH_SERVER_URL",
                                                               "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="maintenance database of the PostgreSQL server (RUJUK_BENCH_SERVER_URL)")
    parser.add_argument("--reload", action="store_true", help="load the dataset again even if it is there")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dataset-workers", type=int, default=None, help="dataset generator processes")
    parser.add_argument("--no-postgraphile", action="store_true", help="skip the PostGraphile baseline")
    parser.add_argument("--max-load", type=float, default=None,
                        help="before each figure wait (up to 2 min) for the 1-minute load average to drop below this")
    parser.add_argument("--only", type=lambda v: set(v.split(",")), default=None,
                        help="run only these benchmarks (comma-separated: intake, nested_page, fanout, pull_changes, "
                             "pull_complaints, pull_export, nik_lookup, workload)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(2.0, args.duration / 5)
    started = dt.datetime.now(dt.UTC)
    args.started_at = started.isoformat(timespec="seconds")
    args.stamp = started.strftime("%Y%m%dT%H%M%SZ")
    if not math.isfinite(args.duration) or args.duration <= 0:
        parser.error("--duration is a positive number of seconds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    path, failures = uvloop.run(run(args))  # the load generators' own loop costs little CPU
    say(f"results: {path} and {path.with_suffix('.md')} (also {path.parent / 'latest.md'})")
    sys.stdout.write(path.with_suffix(".md").read_text())
    for failure in failures:
        say(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
