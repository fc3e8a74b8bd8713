"""Fault injection (issue #8, part 4): a server process killed under intake load, PostgreSQL stopped abruptly,
and the network between server and database cut, each while clients keep filing complaints.

Every test owns an embedded PostgreSQL in ``tmp_path`` (so it may crash it), real uvicorn processes and, for
the network cut, a small TCP proxy running in the test's event loop. Clients file complaints with unique
``idempotencyKey``s and retry the same key on any transport error, 503 or ``SERVICE_UNAVAILABLE`` until they
are acknowledged, as a tablet does. Afterwards every acknowledged complaint must exist exactly once, with
exactly one ``COMPLAINT_FILED`` event, and nothing unacknowledged may have been stored.

While the database is unreachable every answer must be clean: ``/readyz`` 503, GraphQL errors coded
``SERVICE_UNAVAILABLE`` (never ``UNAUTHENTICATED``, ``INTERNAL_SERVER_ERROR``, a 500 or a traceback). Once it
is back, the same server process recovers by itself, and an ``intake`` subscriber, resuming with ``after:``
whenever its stream ended, receives every complaint that was acknowledged.

Concurrent reassignments (exactly one wins) are covered by ``tests/test_concurrency.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import shutil
import socket
import struct
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from domain.enums import RegionLevel, Role
from domain.regions import Region
from domain.staff.models import Staff
from schema.relay import from_global_id
from server import db
from server.embedded import EmbeddedPostgres
from tests.conftest import PASSWORD, PASSWORD_HASH, nik
from tests.support.servers import GraphQLWS, ServerProcess, free_port, login

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
P = "33"  # the province seeded into each test's own database
KEC = f"{P}.74.01"
DESA = f"{P}.74.01.1001"
DESCRIPTION = "Uji gangguan: "  # + idempotency key; how stored complaints are matched to acknowledgements
REQUEST_TIMEOUT = 10.0  # a request hanging this long during an outage counts as unclean
GIVE_UP_SECONDS = 60.0  # a key never acknowledged within this is reported, not retried forever
RECOVERY_SECONDS = 15.0

FILE = """mutation($i: FileComplaintInput!) {
  fileComplaint(input: $i) { replayed complaint { id } errors { code message } } }"""
REGISTER = """mutation($i: RegisterHouseholdInput!) {
  registerHousehold(input: $i) { household { id } errors { code } } }"""
ME = "{ me { username } }"
LOGIN = """mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken errors { code } } }"""
INTAKE = """subscription($after: String) { intake(after: $after) { cursor kind complaintId complaint { id } } }"""

#: what a server may log without it being a bug: the event hub logs its retries with their exception
LOG_FAULTS = ("unexpected error in operation", "Exception in ASGI application", "Task exception was never retrieved",
              "Exception in callback")


# --- the database ---------------------------------------------------------------------------------------------


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """The embedded cluster's directory: not under ``tmp_path``, because every pytest session that starts
    meanwhile (another run on this machine) resets ``/tmp/pytest-of-<user>`` to 0700, and the ``postgres``
    user (when running as root) could then no longer reach its data directory."""
    path = Path(tempfile.mkdtemp(prefix="rujuk-faults-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def prepare_database(url: str) -> None:
    """Migrate to head and seed one district with staff (like ``live_world``)."""
    engine = db.make_engine(url, pool_size=1)
    try:
        await db.migrate(engine)
        async with db.make_sessionmaker(engine)() as session, session.begin():
            for code, level, parent in [
                (P, RegionLevel.PROVINCE, None), (f"{P}.74", RegionLevel.KABUPATEN, P),
                (KEC, RegionLevel.KECAMATAN, f"{P}.74"), (DESA, RegionLevel.DESA, KEC),
            ]:
                session.add(Region(code=code, name=f"Wilayah {code}", level=level.value, parent_code=parent))
                await session.flush()
            for name, role, region in [("sup-a", Role.SUPERVISOR, KEC), ("fac-a1", Role.FACILITATOR, DESA),
                                       ("fac-a1b", Role.FACILITATOR, DESA)]:
                session.add(Staff(username=name, password_hash=PASSWORD_HASH, full_name=name, role=role.value,
                                  region_code=region))
    finally:
        await engine.dispose()


def crash_postgres(pg: EmbeddedPostgres) -> None:
    """``pg_ctl stop -m immediate``: every backend is killed at once, no shutdown checkpoint (crash recovery
    runs at the next start). Runs as the server user, as :class:`EmbeddedPostgres` does."""
    result = pg._run("pg_ctl", ["stop", "-D", str(pg.pgdata), "-m", "immediate", "-w", "-t", "10"], timeout=15)
    assert result.returncode == 0, result.stdout


async def stored_state(url: str) -> dict[str, Any]:
    """What the database holds for the complaints these tests filed."""
    conn = await asyncpg.connect(_plain(url))
    try:
        complaints = await conn.fetch("SELECT id, description FROM complaints WHERE description LIKE $1",
                                      DESCRIPTION + "%")
        events = await conn.fetch("SELECT complaint_id, count(*) AS n FROM case_events "
                                  "WHERE kind = 'COMPLAINT_FILED' GROUP BY complaint_id")
        keys = await conn.fetch("SELECT key, result_id FROM idempotency_keys")
    finally:
        await conn.close()
    return {"complaints": [(r["id"], r["description"]) for r in complaints],
            "events": {r["complaint_id"]: r["n"] for r in events},
            "keys": {r["key"]: r["result_id"] for r in keys}}


# --- a network cut ----------------------------------------------------------------------------------------------


class CuttableProxy:
    """``HOST:port`` -> ``HOST:target_port``. :meth:`cut` resets every proxied connection and refuses new ones
    (the listening socket is closed); :meth:`restore` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            self._reset(writer)
            return
        self.connections += 1
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._links.discard(link)
            for w in link:
                self._reset(w)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()  # one direction ended: tear the link down

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        """Abort with SO_LINGER 0, so the peer gets a RST rather than an orderly FIN."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            for w in link:
                self._reset(w)
        await asyncio.sleep(0.05)  # let the handlers unwind

    async def restore(self) -> None:
        assert self._server is None
        self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def close(self) -> None:
        await self.cut()


# --- clients ----------------------------------------------------------------------------------------------------


@dataclass
class Ack:
    complaint_id: str
    base: str
    at: float
    replayed: bool


@dataclass
class Ledger:
    """What the clients saw: acknowledged keys, retryable failures, and answers that are not acceptable."""

    phase: str = "load"
    acked: dict[str, Ack] = field(default_factory=dict)
    retried: Counter[str] = field(default_factory=Counter)
    unclean: list[str] = field(default_factory=list)
    unacked: list[str] = field(default_factory=list)

    def acked_after(self, moment: float) -> int:
        return sum(1 for a in self.acked.values() if a.at >= moment)

    def bad(self, what: str) -> None:
        self.unclean.append(f"[{self.phase}] {what}")


def judge(response: httpx.Response) -> tuple[str, str, dict[str, Any] | None]:
    """``("ok" | "retry" | "unclean", detail, body)`` for one GraphQL answer. Retryable: 503, or errors that are
    all ``SERVICE_UNAVAILABLE``. Unclean: any other 5xx, a traceback, other error codes, a non-JSON body."""
    text = response.text
    status = response.status_code
    if "Traceback" in text or 'File "/' in text:
        return "unclean", f"HTTP {status} with a traceback: {text[:300]!r}", None
    if status == 503:
        return "retry", "HTTP 503", None
    if status >= 500:
        return "unclean", f"HTTP {status}: {text[:300]!r}", None
    try:
        body: dict[str, Any] = json.loads(text)
    except ValueError:
        return "unclean", f"HTTP {status}, not JSON: {text[:300]!r}", None
    errors = body.get("errors") or []
    codes = [(e.get("extensions") or {}).get("code") for e in errors]
    if errors and all(code == "SERVICE_UNAVAILABLE" for code in codes):
        return "retry", "SERVICE_UNAVAILABLE", body
    if errors or status != 200:
        return "unclean", f"HTTP {status}, codes {codes}: {text[:300]!r}", body
    return "ok", "", body


async def file_until_acked(http: httpx.AsyncClient, pick: Callable[[], str], token: str, household_id: str,
                           key: str, ledger: Ledger) -> Ack | None:
    """File one complaint, retrying the same key until a server acknowledges it."""
    variables = {"i": {"idempotencyKey": key, "householdId": household_id, "sector": "HEALTH",
                       "description": DESCRIPTION + key}}
    give_up = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < give_up:
        base = pick()
        try:
            response = await http.post(f"{base}/graphql", json={"query": FILE, "variables": variables},
                                       headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT)
        except httpx.TimeoutException as exc:
            ledger.bad(f"fileComplaint hung for {REQUEST_TIMEOUT}s ({type(exc).__name__})")
        except httpx.TransportError as exc:
            ledger.retried[type(exc).__name__] += 1
        else:
            verdict, detail, body = judge(response)
            if verdict == "ok":
                assert body is not None
                payload = body["data"]["fileComplaint"]
                if payload["errors"]:
                    ledger.bad(f"fileComplaint {key} answered {payload['errors']}")
                else:
                    ack = Ack(payload["complaint"]["id"], base, time.monotonic(), payload["replayed"])
                    ledger.acked[key] = ack
                    return ack
            elif verdict == "retry":
                ledger.retried[detail] += 1
            else:
                ledger.bad(f"fileComplaint: {detail}")
        await asyncio.sleep(random.uniform(0.05, 0.15))
    ledger.unacked.append(key)
    return None


async def keep_filing(http: httpx.AsyncClient, pick: Callable[[], str], token: str, household_id: str,
                      name: str, ledger: Ledger, stop: asyncio.Event, minimum: int = 0) -> None:
    """File complaint after complaint (keys ``name-0``, ``name-1``…) until ``stop`` is set and ``minimum``
    are done."""
    i = 0
    while not stop.is_set() or i < minimum:
        await file_until_acked(http, pick, token, household_id, f"{name}-{i}", ledger)
        i += 1


async def new_household(base: str, token: str) -> str:
    born = dt.date(1975, 6, 17)
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{base}/graphql", headers={"Authorization": f"Bearer {token}"}, json={
            "query": REGISTER, "variables": {"i": {
                "regionCode": DESA, "address": "Jl. Sisingamangaraja No. 8",
                "familyCards": [KEC.replace(".", "") + "1706750001"],
                "members": [{"name": "Rahmat Siregar", "sex": "MALE", "birthDate": born.isoformat(),
                             "relation": "HEAD", "nik": nik(KEC, born, female=False, serial=1)}]}}})
    body = response.json()
    assert body["data"]["registerHousehold"]["errors"] == [], body
    household_id: str = body["data"]["registerHousehold"]["household"]["id"]
    return household_id


class IntakeFollower:
    """A supervisor console: follows ``intake`` and, whenever its socket or stream ends, opens a new one and
    resumes with ``after:`` the last cursor it received."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.cursor: str | None = None
        self.cursors: list[int] = []
        self.complaints: list[str] = []
        self.null_complaints: list[int] = []
        self.subscriptions = 0
        self.interruptions: list[str] = []
        self.unclean: list[str] = []
        self.live = asyncio.Event()
        self.progress = asyncio.Event()

    async def run(self) -> None:
        while True:
            ws: GraphQLWS | None = None
            try:
                ws = await GraphQLWS.open(self.url, self.token)
                self.subscriptions += 1
                op = str(self.subscriptions)
                await ws.subscribe(op, INTAKE, {"after": self.cursor})
                self.live.set()
                await self._consume(ws, op)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any end of the socket: note it, resume
                code = ws.conn.close_code if ws is not None else None
                self.interruptions.append(f"{type(exc).__name__} {str(exc)[:120]} (close code {code})")
                if code == 4403:
                    self.unclean.append("the socket was refused with 4403 (bad credentials) while the database "
                                        "was unreachable")
            finally:
                if ws is not None:
                    with contextlib.suppress(Exception):
                        await ws.close()
            await asyncio.sleep(0.5)

    async def _consume(self, ws: GraphQLWS, op: str) -> None:
        while True:
            message = await ws.receive(wait=3600)
            kind = message["type"]
            if kind == "ping":
                await ws.send({"type": "pong"})
                continue
            if message.get("id") != op:
                continue
            if kind == "next" and not message["payload"].get("errors"):
                self._take(message["payload"]["data"]["intake"])
                continue
            self._judge(message)
            if kind == "next":
                await self._linger(ws, op)
            return

    def _judge(self, message: dict[str, Any]) -> None:
        errors = message.get("payload") or []
        if isinstance(errors, dict):
            errors = errors.get("errors") or []
        codes = [(e.get("extensions") or {}).get("code") for e in errors]
        self.interruptions.append(f"{message['type']} {codes}")
        if any(code != "SERVICE_UNAVAILABLE" for code in codes):
            self.unclean.append(f"subscription {message['type']} with codes {codes}: {str(errors)[:300]}")

    async def _linger(self, ws: GraphQLWS, op: str) -> None:
        """After an event that failed, listen a moment longer to what the stream says next (without taking
        events: the failed one would be skipped), then resume from the last cursor taken."""
        deadline = time.monotonic() + 1.5
        with contextlib.suppress(TimeoutError):
            while (left := deadline - time.monotonic()) > 0:
                message = await ws.receive(wait=left)
                if message.get("id") != op:
                    continue
                if message["type"] == "next" and not message["payload"].get("errors"):
                    self.interruptions.append("the stream went on after a failed event")
                    continue
                self._judge(message)
                if message["type"] != "next":
                    return

    def _take(self, event: dict[str, Any]) -> None:
        self.cursor = event["cursor"]
        self.cursors.append(int(event["cursor"]))
        if event["kind"] == "COMPLAINT_FILED":
            self.complaints.append(event["complaintId"])
            if event["complaint"] is None:
                self.null_complaints.append(int(event["cursor"]))
        self.progress.set()

    async def wait_for(self, expected: set[str], seconds: float) -> set[str]:
        """The expected complaint ids still missing after at most ``seconds``."""
        deadline = time.monotonic() + seconds
        while (missing := expected - set(self.complaints)) and time.monotonic() < deadline:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), max(0.0, deadline - time.monotonic()))
        return missing


# --- checks -----------------------------------------------------------------------------------------------------


def check_exactly_once(ledger: Ledger, state: dict[str, Any], problems: list[str]) -> None:
    """Every acknowledged complaint is stored exactly once, under the id it was acknowledged with, with one
    COMPLAINT_FILED event; nothing unacknowledged is stored."""
    by_description = Counter(description for _, description in state["complaints"])
    duplicated = sorted(d for d, n in by_description.items() if n > 1)
    if duplicated:
        problems.append(f"{len(duplicated)} complaints stored more than once: {duplicated[:5]}")
    stored = {description[len(DESCRIPTION):]: cid for cid, description in state["complaints"]}
    lost = sorted(set(ledger.acked) - set(stored))
    if lost:
        problems.append(f"{len(lost)} acknowledged complaints are not in the database: {lost[:5]}")
    extra = sorted(set(stored) - set(ledger.acked))
    if extra:
        problems.append(f"{len(extra)} complaints stored that no client saw acknowledged "
                        f"(never acked: {ledger.unacked[:5]}): {extra[:5]}")
    wrong_id = []
    for key, ack in ledger.acked.items():
        decoded = from_global_id(ack.complaint_id)
        if key in stored and (decoded is None or int(decoded[1]) != stored[key]):
            wrong_id.append((key, ack.complaint_id, stored[key]))
    if wrong_id:
        problems.append(f"acknowledged with another id than the stored one: {wrong_id[:5]}")
    events = state["events"]
    missing_events = sorted(cid for cid in stored.values() if events.get(cid, 0) == 0)
    doubled_events = sorted(cid for cid in stored.values() if events.get(cid, 0) > 1)
    if missing_events or doubled_events:
        problems.append(f"COMPLAINT_FILED events: missing for {missing_events[:5]}, more than one for "
                        f"{doubled_events[:5]}")
    if sum(events.values()) != len(state["complaints"]):
        problems.append(f"{sum(events.values())} COMPLAINT_FILED events for {len(state['complaints'])} complaints")
    keys_wrong = [k for k in ledger.acked if state["keys"].get(k) != stored.get(k)]
    if keys_wrong:
        problems.append(f"idempotency keys not recording the stored complaint: {keys_wrong[:5]}")


def check_log(server: ServerProcess, problems: list[str], *, strict: bool) -> None:
    """No unexpected error in the server's log (``strict``: no traceback at all)."""
    output = server.output()
    faults = [f for f in LOG_FAULTS if f in output]
    if strict and "Traceback" in output:
        faults.append("Traceback")
    if faults:
        lines = [line for line in output.splitlines() if any(f in line for f in faults)]
        first = output.index(next(iter(faults)))
        problems.append(f"server {server.port} logged {faults}: {lines[:3]}\n{output[first:first + 2500]}")


def report(problems: list[str], ledger: Ledger, extra: str = "") -> str:
    unclean = Counter(ledger.unclean)
    return ("\n".join(problems) + f"\n-- unclean answers ({len(ledger.unclean)}): " +
            "\n".join(f"{n}x {u}" for u, n in unclean.most_common(8)) +
            f"\n-- retried: {dict(ledger.retried)}; acked {len(ledger.acked)}; never acked {ledger.unacked[:5]}"
            + extra)


async def stop_all(servers: list[ServerProcess], pg: EmbeddedPostgres, proxy: CuttableProxy | None = None,
                   tasks: list[asyncio.Task[Any]] | None = None) -> None:
    for task in tasks or []:
        task.cancel()
    for task in tasks or []:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers), return_exceptions=True)
    if proxy is not None:
        await proxy.close()
    await asyncio.to_thread(pg.stop)


# --- 1. a server process killed under load -----------------------------------------------------------------------


async def test_server_killed_under_intake_load_loses_and_duplicates_nothing(tmp_path: Path, pg_dir: Path) -> None:
    pg = EmbeddedPostgres(pg_dir, database="rujuk")
    servers: list[ServerProcess] = []
    try:
        url = await asyncio.to_thread(pg.start)
        await prepare_database(url)
        env = {"RUJUK_EVENT_POLL_SECONDS": "1", "RUJUK_BROADCAST_URL": _plain(url)}
        a = ServerProcess(url, tmp_path, **env)
        b = ServerProcess(url, tmp_path, **env)
        servers = [a, b]
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        tokens = [await login(a.http, "fac-a1", PASSWORD), await login(b.http, "fac-a1b", PASSWORD)]
        household = await new_household(a.http, tokens[0])

        ledger = Ledger()
        stop = asyncio.Event()
        clients = 8

        def pick() -> str:
            return random.choice(servers).http

        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as http:
            writers = [asyncio.create_task(keep_filing(http, pick, tokens[i % 2], household, f"c{i}", ledger,
                                                       stop, minimum=10)) for i in range(clients)]
            try:
                await _wait(lambda: len(ledger.acked) >= 40, 30, "40 acknowledgements before the kill")
                ledger.phase = "killed"
                assert a.proc is not None
                a.proc.kill()  # SIGKILL, mid-load: requests in flight on it are cut off
                a.proc.wait()
                killed_at = time.monotonic()
                await _wait(lambda: ledger.acked_after(killed_at) >= 20, 30, "acknowledgements from the survivor")
                await asyncio.to_thread(a.start)  # same port
                ledger.phase = "restarted"
                restarted_at = time.monotonic()
                await _wait(lambda: sum(1 for x in ledger.acked.values()
                                        if x.at >= restarted_at and x.base == a.http) >= 20,
                            30, "acknowledgements from the restarted server")
            finally:
                stop.set()
                await asyncio.gather(*writers)

            # replaying acknowledged keys on either server returns the stored complaint, creating nothing
            sample = random.sample(sorted(ledger.acked), 10)
            replays = Ledger(phase="replay")
            for key in sample:
                owner = tokens[int(key.split("-")[0][1:]) % 2]
                await file_until_acked(http, pick, owner, household, key, replays)

        state = await stored_state(url)
        problems: list[str] = []
        check_exactly_once(ledger, state, problems)
        not_replayed = [k for k in sample if (ack := replays.acked.get(k)) is None or not ack.replayed
                        or ack.complaint_id != ledger.acked[k].complaint_id]
        if not_replayed or replays.unclean:
            problems.append(f"replayed keys not answered with the stored complaint: {not_replayed} {replays.unclean}")
        if ledger.unclean:
            problems.append("unclean answers (killing one server must only cost transport errors)")
        if ledger.unacked:
            problems.append(f"{len(ledger.unacked)} keys never acknowledged")
        if not ledger.retried:
            problems.append("no request failed at all: the kill did not land under load")
        for server in servers:
            check_log(server, problems, strict=True)
        assert not problems, report(problems, ledger)
    finally:
        await stop_all(servers, pg)


async def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


# --- 2 and 3. the database goes away under load and comes back -----------------------------------------------------


@dataclass
class Outage:
    """How a test breaks the path to the database and heals it, and the URL the server is given."""

    server_url: str
    break_: Callable[[], Awaitable[None]]
    heal: Callable[[], Awaitable[None]]


async def probe_outage(server: ServerProcess, token: str, ledger: Ledger, seconds: float) -> dict[str, Counter[str]]:
    """While the database is unreachable: ``/readyz``, an authenticated query, a login and a WebSocket must all
    answer cleanly. Returns what each answered."""
    seen: dict[str, Counter[str]] = {"readyz": Counter(), "me": Counter(), "login": Counter(), "ws": Counter()}
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
        while time.monotonic() < deadline:
            try:
                ready = await http.get(f"{server.http}/readyz")
                seen["readyz"][str(ready.status_code)] += 1
                if ready.status_code != 503:
                    ledger.bad(f"/readyz answered {ready.status_code} {ready.text[:200]!r} while the database "
                               "was unreachable")
                for name, query, variables, headers in [
                    ("me", ME, {}, {"Authorization": f"Bearer {token}"}),
                    ("login", LOGIN, {"u": "sup-a", "p": PASSWORD}, {}),
                ]:
                    response = await http.post(f"{server.http}/graphql", headers=headers,
                                               json={"query": query, "variables": variables})
                    verdict, detail, body = judge(response)
                    seen[name][detail or verdict] += 1
                    if verdict == "unclean":
                        ledger.bad(f"{name}: {detail}")
            except httpx.TransportError as exc:
                ledger.bad(f"probe failed with {type(exc).__name__} while the database was unreachable")
            seen["ws"][await _probe_ws(server, token, ledger)] += 1
            await asyncio.sleep(0.2)
    return seen


async def _probe_ws(server: ServerProcess, token: str, ledger: Ledger) -> str:
    """Open a console socket and subscribe while the database is unreachable: the subscription may fail with
    SERVICE_UNAVAILABLE or the socket may be closed, but never as if the credentials were bad."""
    ws: GraphQLWS | None = None
    try:
        ws = await GraphQLWS.open(server.ws, token)
        await ws.subscribe("p", INTAKE, {})
        message = await ws.receive(3)
        errors = message.get("payload") or []
        if isinstance(errors, dict):
            errors = errors.get("errors") or []
        codes = [(e.get("extensions") or {}).get("code") for e in errors]
        if any(code != "SERVICE_UNAVAILABLE" for code in codes) or message["type"] not in {"error", "next"}:
            ledger.bad(f"WebSocket subscribe answered {str(message)[:300]}")
        return f"{message['type']} {codes}"
    except TimeoutError:
        return "subscribed, no answer in 3s"
    except Exception as exc:  # noqa: BLE001 - the socket was closed: by whom and how is the finding
        code = ws.conn.close_code if ws is not None else getattr(getattr(exc, "rcvd", None), "code", None)
        if code == 4403:
            ledger.bad("WebSocket connection_init refused with 4403 (credentials) while the database was "
                       "unreachable")
        elif code is None or code in {1006, 1011}:
            ledger.bad(f"WebSocket dropped during connection_init or subscribe ({type(exc).__name__}, close "
                       f"code {code}) instead of a clean answer")
        return f"{type(exc).__name__} close code {code}"
    finally:
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()


async def run_outage(tmp_path: Path, pg: EmbeddedPostgres, url: str, outage: Outage,
                     servers: list[ServerProcess], tasks: list[asyncio.Task[Any]]) -> None:
    server = ServerProcess(outage.server_url, tmp_path, RUJUK_EVENT_POLL_SECONDS="1",
                           RUJUK_BROADCAST_URL=_plain(outage.server_url))
    servers.append(server)
    await asyncio.to_thread(server.start)
    assert server.proc is not None
    pid = server.proc.pid
    tokens = [await login(server.http, "fac-a1", PASSWORD), await login(server.http, "fac-a1b", PASSWORD)]
    supervisor = await login(server.http, "sup-a", PASSWORD)
    household = await new_household(server.http, tokens[0])

    follower = IntakeFollower(server.ws, supervisor)
    tasks.append(asyncio.create_task(follower.run()))
    ledger = Ledger()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as http:

        def pick() -> str:
            return server.http

        # the subscription is live once it delivers a complaint filed after it started
        await asyncio.wait_for(follower.live.wait(), 10)
        await asyncio.sleep(0.3)
        marker = await file_until_acked(http, pick, tokens[0], household, "marker-before", ledger)
        assert marker is not None
        assert not await follower.wait_for({marker.complaint_id}, 10), "the subscription never went live"

        stop = asyncio.Event()
        writers = [asyncio.create_task(keep_filing(http, pick, tokens[i % 2], household, f"w{i}", ledger, stop))
                   for i in range(6)]
        tasks.extend(writers)
        await _wait(lambda: len(ledger.acked) >= 30, 20, "acknowledgements before the outage")

        ledger.phase = "down"
        await outage.break_()
        seen = await probe_outage(server, supervisor, ledger, seconds=4.0)

        await outage.heal()
        ledger.phase = "healed"
        healed_at = time.monotonic()
        ready_after: float | None = None
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as probe:
            while time.monotonic() - healed_at < RECOVERY_SECONDS + 5:
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(f"{server.http}/readyz")).status_code == 200:
                        ready_after = time.monotonic() - healed_at
                        break
                await asyncio.sleep(0.1)
        with contextlib.suppress(AssertionError):
            await _wait(lambda: ledger.acked_after(healed_at) >= 30, RECOVERY_SECONDS, "writes after healing")
        acked_after_heal = ledger.acked_after(healed_at)
        stop.set()
        await asyncio.gather(*writers)
        after = await file_until_acked(http, pick, tokens[1], household, "marker-after", ledger)

    expected = {ack.complaint_id for ack in ledger.acked.values()}
    missing = await follower.wait_for(expected, 20)
    state = await stored_state(url)

    problems: list[str] = []
    check_exactly_once(ledger, state, problems)
    if ledger.unclean or follower.unclean:
        problems.append("unclean answers while the database was unreachable (see below)")
    if server.proc.poll() is not None or server.proc.pid != pid:
        problems.append("the server process did not survive the outage")
    if ready_after is None or ready_after > RECOVERY_SECONDS:
        problems.append(f"/readyz not 200 within {RECOVERY_SECONDS}s of the database coming back "
                        f"(took {ready_after})")
    if acked_after_heal == 0 or after is None:
        problems.append(f"writes do not succeed after the database came back ({acked_after_heal} acked)")
    if ledger.unacked:
        problems.append(f"{len(ledger.unacked)} keys never acknowledged: {ledger.unacked[:5]}")
    if missing:
        acked_at = {ack.complaint_id: ack.at for ack in ledger.acked.values()}
        late = sorted(c for c in missing if acked_at[c] >= healed_at)
        problems.append(f"the subscriber missed {len(missing)} acknowledged complaints ({len(late)} of them "
                        f"written after the database came back): {sorted(missing)[:5]}")
    duplicates = [c for c, n in Counter(follower.cursors).items() if n > 1]
    if duplicates:
        problems.append(f"the subscriber got events twice: cursors {duplicates[:5]}")
    if follower.cursors != sorted(follower.cursors):
        problems.append("the subscriber got events out of cursor order")
    if follower.null_complaints:
        problems.append(f"COMPLAINT_FILED delivered with complaint null at cursors {follower.null_complaints[:5]}")
    check_log(server, problems, strict=False)
    extra = (f"\n-- outage probes: {seen}\n-- /readyz 200 {ready_after}s after healing; acked after healing "
             f"{acked_after_heal}\n-- subscriber: {follower.subscriptions} subscriptions, interruptions "
             f"{follower.interruptions[:6]}, unclean {follower.unclean[:3]}")
    assert not problems, report(problems, ledger, extra)


async def test_postgres_stopped_abruptly_and_restarted_under_load(tmp_path: Path, pg_dir: Path) -> None:
    pg = EmbeddedPostgres(pg_dir, database="rujuk")
    servers: list[ServerProcess] = []
    tasks: list[asyncio.Task[Any]] = []
    try:
        url = await asyncio.to_thread(pg.start)
        await prepare_database(url)
        port = pg.port

        async def crash() -> None:
            await asyncio.to_thread(crash_postgres, pg)

        async def restart() -> None:
            await asyncio.to_thread(pg.start)
            assert pg.port == port, "PostgreSQL came back on another port"

        await run_outage(tmp_path, pg, url, Outage(url, crash, restart), servers, tasks)
    finally:
        await stop_all(servers, pg, tasks=tasks)


async def test_network_cut_between_server_and_database(tmp_path: Path, pg_dir: Path) -> None:
    pg = EmbeddedPostgres(pg_dir, database="rujuk")
    servers: list[ServerProcess] = []
    tasks: list[asyncio.Task[Any]] = []
    proxy: CuttableProxy | None = None
    try:
        url = await asyncio.to_thread(pg.start)
        await prepare_database(url)
        assert pg.port is not None
        proxy = CuttableProxy(pg.port)
        await proxy.start()
        through_proxy = url.replace(f":{pg.port}/", f":{proxy.port}/")
        await run_outage(tmp_path, pg, url, Outage(through_proxy, proxy.cut, proxy.restore), servers, tasks)
        assert proxy.connections > 0
    finally:
        await stop_all(servers, pg, proxy, tasks)
