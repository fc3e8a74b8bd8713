"""Partner sync end to end (issue #6): a real uvicorn process on the live database, partner accounts with API keys
made through ``createApiKey``, and what a partner relies on:

* ``changes(after:, first:)`` pulled by a loop that crashes at random points while writers commit out of order:
  the partner ends with exactly the in-scope case events, each applied once (re-delivery only of a page it
  processed but whose cursor it never stored);
* ``complaints(filter: {updatedAfter}, orderBy: UPDATED)`` pulled the same way ends with exactly the rows
  (id -> version) of the database;
* ``GET /export/complaints.ndjson`` of 100k rows with flat server memory, a trailer whose cursor equals the
  ``X-Rujuk-Cursor`` header, and ``changes(after: <that cursor>)`` continuing without gap or overlap;
* masking of personal data without the grant, and keys limited to a program.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.actor import Actor
from domain.complaints import service as complaints
from domain.complaints.models import Complaint
from domain.enums import Channel, ComplaintKind, ComplaintStatus, DtksStatus, Priority, Relation, Role, Sector, Sex
from domain.errors import DomainError
from domain.events import AuditEntry, CaseEvent, write_events
from domain.households import service as households
from domain.households.models import Household
from domain.privacy import initials
from domain.programs import Program
from domain.referrals import service as referrals
from domain.staff.models import Staff
from domain.staff.service import hash_password
from schema.relay import pk_of, to_global_id
from server.context import Services
from tests.conftest import PASSWORD, LiveWorld, nik
from tests.support.servers import ServerProcess, graphql, login

pytestmark = pytest.mark.e2e

log = logging.getLogger(__name__)

PASSWORD_HASH = hash_password(PASSWORD)
SINCE_EVER = "2000-01-01T00:00:00+00:00"

CREATE_KEY = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) {
  secret apiKey { id prefix regionCodes programCodes personalData } errors { code field message } } }"""
CHANGES = """query($after: String, $first: Int) { changes(after: $after, first: $first) {
  endCursor hasMore events { id cursor kind regionCode householdId complaintId referralId data } } }"""
COMPLAINTS = """query($f: ComplaintFilter, $first: Int, $after: String) {
  complaints(filter: $f, orderBy: UPDATED, first: $first, after: $after) {
    edges { cursor node { id version status updatedAt } } pageInfo { hasNextPage endCursor } } }"""
FILE = """mutation($i: FileComplaintInput!) { fileComplaint(input: $i) {
  complaint { id version status assignee { id } } errors { code message } } }"""
REASSIGN = """mutation($i: ReassignComplaintInput!) { reassignComplaint(input: $i) {
  complaint { id version status assignee { id } } errors { code message } } }"""
RESUBMIT = """mutation($i: ResubmitComplaintInput!) { resubmitComplaint(input: $i) {
  complaint { id version status assignee { id } } errors { code message } } }"""
RESOLVE = """mutation($i: ResolveComplaintInput!) { resolveComplaint(input: $i) {
  complaint { id version status assignee { id } } errors { code message } } }"""


def _transition(op: str) -> str:
    return (f"mutation($i: ComplaintTransitionInput!) {{ {op}(input: $i) {{ "
            "complaint { id version status assignee { id } } errors { code message } } }")


# --- fixtures and helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(live_database_url, tmp_path_factory.mktemp("partner-sync"))
    try:
        yield proc.start()
    finally:
        proc.stop()
    assert "Traceback" not in proc.output(), proc.output()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _ok(base: str, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    body = await graphql(base, query, variables, token)
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


@dataclass
class Accounts:
    admin_id: int
    partner_id: int
    admin_token: str


async def _accounts(services: Services, world: LiveWorld, base: str) -> Accounts:
    """An admin (no region) and a PARTNER account on the world's kabupaten, inserted directly."""
    p = world.province
    async with services.sessionmaker() as session, session.begin():
        admin = Staff(username=f"p{p}-sync-admin", password_hash=PASSWORD_HASH, full_name="Admin Sinkron",
                      role=Role.ADMIN.value, region_code=None)
        partner = Staff(username=f"p{p}-sync-partner", password_hash=PASSWORD_HASH, full_name="BPJS Kesehatan",
                        role=Role.PARTNER.value, region_code=world.code(".74"))
        session.add_all([admin, partner])
    return Accounts(admin.id, partner.id, await login(base, admin.username, PASSWORD))


async def _key(base: str, accounts: Accounts, name: str, *, regions: list[str] | None = None,
               programs: list[str] | None = None, personal_data: bool = False) -> str:
    data = await _ok(base, CREATE_KEY, {"i": {
        "partnerId": to_global_id("Staff", accounts.partner_id), "name": name, "regionCodes": regions or [],
        "programCodes": programs or [], "personalData": personal_data}}, accounts.admin_token)
    made = data["createApiKey"]
    assert made["errors"] == [], made
    assert made["secret"].startswith("rjk_"), made
    assert made["apiKey"]["personalData"] is personal_data
    assert sorted(made["apiKey"]["programCodes"]) == sorted(programs or [])
    secret: str = made["secret"]
    return secret


async def _register(services: Services, world: LiveWorld, desa: str, serial: int,
                    members: list[tuple[str, Sex, Relation]] | None = None) -> int:
    """A household registered through the domain service (committed, with its event)."""
    kec = world.code(desa)[: len(world.code(".74.01"))]
    people = []
    for i, (name, sex, relation) in enumerate(members or [(f"Warga Sinkron {serial}", Sex.MALE, Relation.HEAD)]):
        born = dt.date(1960 + i * 25, 1 + serial % 12, 1 + serial % 27)
        people.append(households.MemberData(name=name, sex=sex, birth_date=born, relation=relation,
                                            nik=nik(kec, born, female=sex is Sex.FEMALE, serial=serial * 10 + i)))
    async with services.sessionmaker() as session:
        made = await households.register_household(
            session, actor=world.actor("manager"), cipher=services.cipher, data=households.HouseholdData(
                region_code=world.code(desa), address=f"Jl. Sinkron No. {serial}", dtks_status=DtksStatus.REGISTERED,
                family_cards=[kec.replace(".", "") + f"030303{serial:04d}"], members=people))
        await write_events(session)
        await session.commit()
    return made.household.id


async def _file(services: Services, world: LiveWorld, household_id: int, *, sector: Sector = Sector.HEALTH,
                program_id: int | None = None) -> int:
    async with services.sessionmaker() as session:
        filed = await complaints.file_complaint(session, actor=world.actor("manager"), data=complaints.ComplaintData(
            household_id=household_id, kind=ComplaintKind.COMPLAINT, sector=sector, program_id=program_id,
            description="Belum menerima bantuan", channel=Channel.HOTLINE))
        await write_events(session)
        await session.commit()
    return filed.complaint.id


async def _commit_out_of_order(services: Services, world: LiveWorld, late: int, early: int,
                               between: Callable[[], Awaitable[None]]) -> None:
    """Transaction L verifies complaint ``late`` first and commits last; transaction E verifies ``early`` after L
    began and commits first; ``between`` (a partner's pull) runs after E's commit while L is still open."""
    manager = world.actor("manager")
    async with services.sessionmaker() as held, held.begin():
        await complaints.verify_complaint(held, actor=manager, complaint_id=late, expected_version=1)
        await asyncio.sleep(0.01)
        async with services.sessionmaker() as quick, quick.begin():
            await complaints.verify_complaint(quick, actor=manager, complaint_id=early, expected_version=1)
            await write_events(quick)
        await between()
        await write_events(held)


# --- writers: domain services holding transactions open, and staff over HTTP ----------------------------------


async def _domain_writer(services: Services, world: LiveWorld, household_ids: list[int], ops: int,
                         rng: random.Random) -> Counter[str]:
    """Works its own households and complaints as the manager; every transaction is held open a random while
    after its change and before its commit, so transactions that began earlier often commit later."""
    manager = world.actor("manager")
    facilitators = {world.code(".74.01.1001"): [world.staff["fac_a1"].id, world.staff["fac_a1b"].id],
                    world.code(".74.01.1002"): [world.staff["fac_a2"].id],
                    world.code(".74.02.1001"): [world.staff["fac_b1"].id]}
    mine: list[int] = []
    done: Counter[str] = Counter()
    for _ in range(ops):
        async with services.sessionmaker() as session:
            try:
                async with session.begin():
                    roll = rng.random()
                    if not mine or roll < 0.25:
                        filed = await complaints.file_complaint(session, actor=manager, data=complaints.ComplaintData(
                            household_id=rng.choice(household_ids), kind=rng.choice(list(ComplaintKind)),
                            sector=rng.choice([Sector.HEALTH, Sector.FOOD, Sector.EDUCATION, Sector.PKH]),
                            description="Bantuan belum cair", channel=rng.choice(list(Channel)),
                            priority=rng.choice(list(Priority))))
                        mine.append(filed.complaint.id)
                        op = "file"
                    elif roll < 0.33:
                        hid = rng.choice(household_ids)
                        h = await households.get_household(session, actor=manager, household_id=hid)
                        await households.update_household(
                            session, actor=manager, household_id=hid, expected_version=h.version,
                            changes=households.HouseholdChanges(address=f"Jl. Pindah No. {rng.randint(1, 999)}"))
                        op = "update_household"
                    else:
                        op = await _transition_one(session, manager, rng.choice(mine), facilitators, rng)
                    await asyncio.sleep(rng.uniform(0, 0.025))
                    await write_events(session)
                done[op] += 1
            except DomainError as exc:
                done[f"refused:{exc.code}"] += 1
    return done


async def _transition_one(session: AsyncSession, manager: Actor, cid: int, facilitators: dict[str, list[int]],
                          rng: random.Random) -> str:
    c = await complaints.get_complaint(session, actor=manager, complaint_id=cid)
    v = c.version
    others = [f for f in facilitators[c.region_code] if f != c.assignee_id]
    status = ComplaintStatus(c.status)
    choices: list[str] = {
        ComplaintStatus.NEW: ["verify", "verify", "return", "reassign", "reject"],
        ComplaintStatus.VERIFIED: ["start", "reassign", "return", "resolve"],
        ComplaintStatus.RETURNED: ["resubmit", "resubmit", "reassign"],
        ComplaintStatus.IN_PROGRESS: ["reassign", "resolve", "resolve"],
        ComplaintStatus.REFERRED: ["reassign"],
        ComplaintStatus.RESOLVED: ["reopen"],
        ComplaintStatus.REJECTED: ["reopen"],
    }[status]
    op = rng.choice(choices)
    if op == "reassign" and not others:
        raise DomainError("no other facilitator covers this village", code="SKIPPED")
    kw: dict[str, Any] = {"actor": manager, "complaint_id": cid, "expected_version": v}
    if op == "verify":
        await complaints.verify_complaint(session, **kw)
    elif op == "return":
        await complaints.return_complaint(session, **kw, reason="Data belum lengkap")
    elif op == "resubmit":
        await complaints.resubmit_complaint(session, **kw)
    elif op == "reject":
        await complaints.reject_complaint(session, **kw, reason="Bukan kewenangan")
    elif op == "start":
        await complaints.start_complaint(session, **kw)
    elif op == "resolve":
        await complaints.resolve_complaint(session, **kw, decision="Sudah ditangani")
    elif op == "reopen":
        await complaints.reopen_complaint(session, **kw, reason="Keluhan muncul lagi")
    else:
        await complaints.reassign_complaint(session, **kw, assignee_id=rng.choice(others), reason="Beban kerja")
    return op


@dataclass
class HttpStaff:
    facilitator: str
    facilitator_gid: str
    supervisor: str
    #: every facilitator covering the village (global ids)
    village_facilitators: list[str]


async def _http_writer(base: str, who: HttpStaff, household_gids: list[str], ops: int,
                       rng: random.Random) -> Counter[str]:
    """A facilitator files complaints and a supervisor works them, over HTTP; only on their own complaints, so
    every mutation must succeed."""
    mine: dict[str, dict[str, Any]] = {}
    done: Counter[str] = Counter()

    async def run(query: str, name: str, token: str, i: dict[str, Any]) -> None:
        data = await _ok(base, query, {"i": i}, token)
        payload = data[name]
        assert payload["errors"] == [], (name, i, payload)
        c = payload["complaint"]
        mine[c["id"]] = {"version": c["version"], "status": c["status"],
                         "assignee": (c["assignee"] or {}).get("id")}
        done[name] += 1

    for _ in range(ops):
        if not mine or rng.random() < 0.3:
            await run(FILE, "fileComplaint", who.facilitator, {
                "householdId": rng.choice(household_gids), "sector": rng.choice(["HEALTH", "FOOD", "PKH"]),
                "description": "Kartu KIS belum aktif", "priority": rng.choice(["LOW", "NORMAL", "HIGH"])})
            continue
        gid = rng.choice(list(mine))
        c = mine[gid]
        base_input = {"id": gid, "expectedVersion": c["version"]}
        others = [f for f in who.village_facilitators if f != c["assignee"]]
        status = c["status"]
        if status == "NEW":
            op = rng.choice(["verify", "verify", "return"] + (["reassign"] if others else []))
        elif status == "VERIFIED":
            op = rng.choice(["start", "resolve"] + (["reassign"] if others else []))
        elif status == "RETURNED":
            op = "resubmit"
        elif status == "IN_PROGRESS":
            op = rng.choice(["resolve"] + (["reassign"] if others else []))
        else:
            op = "reopen"
        if op == "verify":
            await run(_transition("verifyComplaint"), "verifyComplaint", who.supervisor, base_input)
        elif op == "return":
            await run(_transition("returnComplaint"), "returnComplaint", who.supervisor,
                      {**base_input, "reason": "Foto KTP buram"})
        elif op == "start":
            await run(_transition("startComplaint"), "startComplaint", who.supervisor, base_input)
        elif op == "reopen":
            await run(_transition("reopenComplaint"), "reopenComplaint", who.supervisor,
                      {**base_input, "reason": "Belum tuntas"})
        elif op == "resubmit":
            await run(RESUBMIT, "resubmitComplaint", who.facilitator, base_input)
        elif op == "resolve":
            await run(RESOLVE, "resolveComplaint", who.supervisor, {**base_input, "decision": "Sudah didaftarkan"})
        else:
            await run(REASSIGN, "reassignComplaint", who.supervisor,
                      {**base_input, "assigneeId": rng.choice(others), "reason": "Cuti"})
    return done


async def _sync_world(services: Services, world: LiveWorld, base: str) -> tuple[list[list[int]], list[HttpStaff],
                                                                                 list[list[str]]]:
    """Households for three domain writers (one per desa) and two HTTP writers, and the HTTP writers' staff."""
    serial = iter(range(100, 200))
    domain_sets = [[await _register(services, world, desa, next(serial)) for _ in range(2)]
                   for desa in (".74.01.1001", ".74.01.1002", ".74.02.1001")]
    http_sets = [[str(to_global_id("Household", await _register(services, world, desa, next(serial))))
                  for _ in range(2)] for desa in (".74.01.1001", ".74.02.1001")]
    t = {n: await login(base, world.staff[n].username, PASSWORD) for n in ("fac_a1", "sup_a", "fac_b1", "sup_b")}
    gid = {n: str(to_global_id("Staff", world.staff[n].id)) for n in ("fac_a1", "fac_a1b", "fac_b1")}
    staff = [HttpStaff(t["fac_a1"], gid["fac_a1"], t["sup_a"], [gid["fac_a1"], gid["fac_a1b"]]),
             HttpStaff(t["fac_b1"], gid["fac_b1"], t["sup_b"], [gid["fac_b1"]])]
    return domain_sets, staff, http_sets


async def _run_writers(services: Services, world: LiveWorld, base: str, seed: int) -> Counter[str]:
    domain_sets, staff, http_sets = await _sync_world(services, world, base)
    results = await asyncio.gather(
        *[_domain_writer(services, world, hids, 45, random.Random(seed + i)) for i, hids in enumerate(domain_sets)],
        *[_http_writer(base, who, gids, 30, random.Random(seed + 10 + i))
          for i, (who, gids) in enumerate(zip(staff, http_sets, strict=True))])
    total: Counter[str] = Counter()
    for r in results:
        total.update(r)
    return total


# --- 1a. changes(after:, first:) with crashes -----------------------------------------------------------------


@dataclass
class ChangesPartner:
    """What survives a crash: the partner's own database (events applied, complaint state derived from them) and
    the cursor it stored. Application is idempotent by event id (and complaint state by version)."""

    name: str
    key: str
    stored: str | None = None
    applied: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: how often each event was applied, in all
    applications: Counter[int] = field(default_factory=Counter)
    #: applications in pages processed (wholly or partly) whose cursor was then never stored
    unstored: Counter[int] = field(default_factory=Counter)
    complaints: dict[int, tuple[int, str, int | None]] = field(default_factory=dict)
    crashes: Counter[str] = field(default_factory=Counter)
    pages: int = 0

    def apply(self, event: dict[str, Any]) -> None:
        eid = int(event["cursor"])
        self.applications[eid] += 1
        self.applied[eid] = event
        if event["kind"].startswith("COMPLAINT_"):
            cid = pk_of(event["complaintId"], "Complaint")
            assert cid is not None, event
            d = event["data"]
            if cid not in self.complaints or self.complaints[cid][0] < d["version"]:
                self.complaints[cid] = (d["version"], d["status"], d["assigneeId"])


async def _changes_loop(base: str, partner: ChangesPartner, rng: random.Random, done: asyncio.Event,
                        target: list[int]) -> None:
    """Pull, apply, store; crash at random points (dropping everything but the stored cursor) and resume."""
    while True:
        cursor = partner.stored  # a restarted process knows only what it stored
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {partner.key}"}) as http:
            while True:
                if done.is_set() and int(cursor or 0) >= target[0]:
                    return
                first = rng.randint(1, 7)
                response = await http.post("/graphql", json={"query": CHANGES,
                                                             "variables": {"after": cursor, "first": first}})
                body = response.json()
                assert response.status_code == 200 and not body.get("errors"), body
                page = body["data"]["changes"]
                partner.pages += 1
                events = page["events"]
                ids = [int(e["cursor"]) for e in events]
                assert ids == sorted(set(ids)), ("page out of cursor order", ids)
                assert all(i > int(cursor or 0) for i in ids), ("event at or before the cursor", cursor, ids)
                assert len(events) <= first
                assert page["endCursor"] == (str(ids[-1]) if ids else str(int(cursor or 0))), (cursor, page)
                if page["hasMore"]:
                    assert len(events) == first, page
                roll = rng.random()
                if roll < 0.08:
                    partner.crashes["before processing"] += 1
                    break
                if roll < 0.16 and events:
                    part = events[: rng.randint(0, len(events) - 1)]
                    for e in part:
                        partner.apply(e)
                        partner.unstored[int(e["cursor"])] += 1
                    partner.crashes["mid page"] += 1
                    break
                for e in events:
                    partner.apply(e)
                if roll < 0.24:
                    partner.unstored.update(ids)
                    partner.crashes["processed, not stored"] += 1
                    break
                partner.stored = cursor = page["endCursor"]
                if not page["hasMore"]:
                    await asyncio.sleep(rng.uniform(0.05, 0.15))  # caught up: poll again soon


async def _changes_catch_up(base: str, partner: ChangesPartner) -> None:
    """Pull without crashing until nothing more follows."""
    while True:
        page = (await _ok(base, CHANGES, {"after": partner.stored, "first": 50}, partner.key))["changes"]
        for e in page["events"]:
            partner.apply(e)
        partner.stored = page["endCursor"]
        if not page["hasMore"]:
            return


async def _events_in(engine: AsyncEngine, scope: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(
            select(CaseEvent.id, CaseEvent.kind, CaseEvent.region_code, CaseEvent.complaint_id,
                   CaseEvent.household_id)
            .where(CaseEvent.region_code.like(scope + ".%")).order_by(CaseEvent.id))).all())


async def _complaints_in(engine: AsyncEngine, scope: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(
            select(Complaint.id, Complaint.version, Complaint.status, Complaint.assignee_id, Complaint.updated_at)
            .where(Complaint.region_code.like(scope + ".%")).order_by(Complaint.id))).all())


async def test_changes_pull_loop_with_random_crashes_applies_every_in_scope_event_exactly_once(
        server: ServerProcess, live_world: LiveWorld, live_services: Services, live_engine: AsyncEngine) -> None:
    accounts = await _accounts(live_services, live_world, server.http)
    wide = ChangesPartner("kabupaten", await _key(server.http, accounts, "sync kabupaten"))
    narrow = ChangesPartner("kecamatan 01", await _key(server.http, accounts, "sync kecamatan",
                                                        regions=[live_world.code(".74.01")]))
    scopes = {wide.name: live_world.code(".74"), narrow.name: live_world.code(".74.01")}
    done = asyncio.Event()
    targets = {wide.name: [0], narrow.name: [0]}
    loops = [asyncio.create_task(_changes_loop(server.http, p, random.Random(7 + i), done, targets[p.name]))
             for i, p in enumerate((wide, narrow))]
    started = time.monotonic()
    try:
        writes = await _run_writers(live_services, live_world, server.http, seed=6100)
        log.info("writers done after %.1fs", time.monotonic() - started)
        for p in (wide, narrow):
            rows = await _events_in(live_engine, scopes[p.name])
            targets[p.name][0] = rows[-1].id
        done.set()
        await asyncio.wait_for(asyncio.gather(*loops), timeout=90)
    finally:
        for task in loops:
            task.cancel()
    log.info("changes sync: %.1fs, writes %s", time.monotonic() - started, dict(writes))
    assert writes["file"] > 0 and writes["fileComplaint"] > 0 and writes["reassignComplaint"] > 0, writes

    # and one deterministic case: a transaction that began first commits last, around a partner's pull
    hid = await _register(live_services, live_world, ".74.01.1002", 90)
    late = await _file(live_services, live_world, hid)
    early = await _file(live_services, live_world, hid)

    async def pull_both() -> None:
        for p in (wide, narrow):
            await _changes_catch_up(server.http, p)

    await pull_both()
    await _commit_out_of_order(live_services, live_world, late, early, pull_both)
    await pull_both()

    for p in (wide, narrow):
        rows = await _events_in(live_engine, scopes[p.name])
        expected = {r.id: r for r in rows}
        log.info("%s partner: %d events, %d pages, crashes %s, re-deliveries %d", p.name, len(expected), p.pages,
                 dict(p.crashes), sum(p.unstored.values()))
        missing = sorted(set(expected) - set(p.applied))
        extra = sorted(set(p.applied) - set(expected))
        assert not missing and not extra, (p.name, "gap" if missing else "out of scope", missing[:20], extra[:20])
        # each event applied once from a page whose cursor was stored; any other application is the re-delivery
        # of a page the partner processed but never stored
        twice = {i: (p.applications[i], p.unstored[i]) for i in expected if p.applications[i] - p.unstored[i] != 1}
        assert not twice, (p.name, "applied other than once after allowed re-deliveries", twice)
        assert p.crashes["processed, not stored"] + p.crashes["mid page"] > 0 and p.crashes["before processing"] > 0
        assert sum(p.unstored.values()) > 0, "no page was ever re-delivered: the test did not test resumption"
        for i, r in expected.items():
            e = p.applied[i]
            assert (e["kind"], e["regionCode"]) == (r.kind, r.region_code), (i, e, r)
            got = (pk_of(e["complaintId"], "Complaint") if e["complaintId"] else None,
                   pk_of(e["householdId"], "Household") if e["householdId"] else None)
            assert got == (r.complaint_id, r.household_id), (i, e, r)
        # the partner's own state, built idempotently from the events, is the database's
        db = {c.id: (c.version, c.status, c.assignee_id) for c in await _complaints_in(live_engine, scopes[p.name])}
        assert p.complaints == db, (p.name, {k: (p.complaints.get(k), db.get(k)) for k in set(db) | set(p.complaints)
                                             if p.complaints.get(k) != db.get(k)})


# --- 1b. complaints(updatedAfter, orderBy: UPDATED) with crashes -----------------------------------------------


@dataclass
class RowsPartner:
    """What survives a crash: its rows (id -> version, applied idempotently: the higher version wins) and the last
    updatedAt it saw, stored only after a page is fully applied."""

    key: str
    region: str
    last_seen: str = SINCE_EVER
    rows: dict[int, int] = field(default_factory=dict)
    crashes: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    passes: int = 0

    def apply(self, node: dict[str, Any]) -> None:
        cid = pk_of(node["id"], "Complaint")
        assert cid is not None
        if self.rows.get(cid, 0) < node["version"]:
            self.rows[cid] = node["version"]


def _just_before(iso: str) -> str:
    """Re-pull from the last seen time inclusive (``updatedAfter`` is strict): ties at that instant come again and
    are applied idempotently."""
    return (dt.datetime.fromisoformat(iso) - dt.timedelta(microseconds=1)).isoformat()


async def _rows_loop(base: str, partner: RowsPartner, rng: random.Random, done: asyncio.Event) -> None:
    while True:
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {partner.key}"}) as http:
            while True:  # one pass: everything changed since the stored time, page by page
                quiet_pass = done.is_set()
                since, after, crashed = partner.last_seen, None, False
                while True:
                    first = rng.choice([2, 5, 11, 1000])
                    response = await http.post("/graphql", json={"query": COMPLAINTS, "variables": {
                        "f": {"regionCode": partner.region, "updatedAfter": _just_before(since)},
                        "first": first, "after": after}})
                    body = response.json()
                    assert response.status_code == 200 and not body.get("errors"), body
                    conn = body["data"]["complaints"]
                    partner.pages += 1
                    nodes = [e["node"] for e in conn["edges"]]
                    stamps = [(dt.datetime.fromisoformat(n["updatedAt"]), pk_of(n["id"], "Complaint")) for n in nodes]
                    assert stamps == sorted(stamps), "UPDATED order is not (updatedAt, id)"
                    roll = rng.random()
                    if roll < 0.08:
                        partner.crashes["before processing"] += 1
                        crashed = True
                        break
                    for n in nodes[: rng.randint(0, len(nodes) - 1)] if roll < 0.16 and nodes else nodes:
                        partner.apply(n)
                    if roll < 0.24:
                        partner.crashes["processed, not stored"] += 1
                        crashed = True
                        break
                    if nodes:
                        partner.last_seen = nodes[-1]["updatedAt"]
                    if not conn["pageInfo"]["hasNextPage"]:
                        break
                    after = conn["pageInfo"]["endCursor"]
                if crashed:
                    break
                partner.passes += 1
                if quiet_pass:
                    return
                await asyncio.sleep(rng.uniform(0.05, 0.15))  # caught up: poll again soon


async def _rows_pass(base: str, partner: RowsPartner) -> None:
    """One pull without crashing: everything changed since the stored time."""
    since, after = partner.last_seen, None
    while True:
        conn = (await _ok(base, COMPLAINTS, {"f": {"regionCode": partner.region, "updatedAfter": _just_before(since)},
                                             "first": 1000, "after": after}, partner.key))["complaints"]
        for edge in conn["edges"]:
            partner.apply(edge["node"])
            partner.last_seen = edge["node"]["updatedAt"]
        if not conn["pageInfo"]["hasNextPage"]:
            return
        after = conn["pageInfo"]["endCursor"]


async def test_updated_after_pull_loop_with_random_crashes_ends_with_exactly_the_database_rows(
        server: ServerProcess, live_world: LiveWorld, live_services: Services, live_engine: AsyncEngine) -> None:
    accounts = await _accounts(live_services, live_world, server.http)
    partner = RowsPartner(await _key(server.http, accounts, "complaints by updatedAt"), live_world.code(".74"))
    done = asyncio.Event()
    loop = asyncio.create_task(_rows_loop(server.http, partner, random.Random(11), done))
    try:
        writes = await _run_writers(live_services, live_world, server.http, seed=6200)
        done.set()
        await asyncio.wait_for(loop, timeout=90)
    finally:
        loop.cancel()
    # and one deterministic case: a transaction that began first commits last, around the partner's pull
    hid = await _register(live_services, live_world, ".74.01.1002", 90)
    late = await _file(live_services, live_world, hid)
    early = await _file(live_services, live_world, hid)
    await _rows_pass(server.http, partner)
    await _commit_out_of_order(live_services, live_world, late, early, lambda: _rows_pass(server.http, partner))
    await _rows_pass(server.http, partner)
    deterministic = {"late (began first, committed last)": partner.rows.get(late),
                     "early (began second, committed first)": partner.rows.get(early)}

    db_rows = await _complaints_in(live_engine, live_world.code(".74"))
    db = {c.id: c.version for c in db_rows}
    log.info("updatedAfter sync: %d complaints, %d pages, %d passes, crashes %s, writes %s", len(db), partner.pages,
             partner.passes, dict(partner.crashes), dict(writes))
    assert sum(partner.crashes.values()) > 0

    # what one full pull from the beginning returns now (to tell a wrong list from a wrong incremental pull)
    fresh: dict[int, int] = {}
    after = None
    while True:
        body = await _ok(server.http, COMPLAINTS, {"f": {"updatedAfter": SINCE_EVER}, "first": 1000, "after": after},
                         partner.key)
        for edge in body["complaints"]["edges"]:
            fresh[pk_of(edge["node"]["id"], "Complaint") or 0] = edge["node"]["version"]
        if not body["complaints"]["pageInfo"]["hasNextPage"]:
            break
        after = body["complaints"]["pageInfo"]["endCursor"]
    assert fresh == db, "a full pull does not return the database's rows"

    by_id = {c.id: c for c in db_rows}
    wrong = {cid: {"partner": partner.rows.get(cid), "database": version,
                   "updated_at": by_id[cid].updated_at.isoformat()}
             for cid, version in db.items() if partner.rows.get(cid) != version}
    assert set(partner.rows) == set(db) and not wrong, (
        f"{len(wrong)} of {len(db)} complaints differ after the incremental pull caught up (changes whose "
        f"updatedAt is older than rows already pulled when they committed): {dict(list(wrong.items())[:8])}; "
        f"deterministic case, versions held by the partner (database: 2 and 2): {deterministic}")


# --- 2. bulk export ---------------------------------------------------------------------------------------------

SEED_HOUSEHOLDS = """
INSERT INTO households (region_code, address, rt, rw, dtks_status, indicators, version, created_at, updated_at)
SELECT ($1::text[])[1 + g % 3], 'Jl. Massal No. ' || g, lpad((1 + g % 15)::text, 3, '0'),
       lpad((1 + g % 9)::text, 3, '0'), (ARRAY['REGISTERED', 'NOT_REGISTERED', 'PROPOSED'])[1 + g % 3],
       '{}'::jsonb, 1, now(), now()
FROM generate_series(0, $2 - 1) AS g
"""
SEED_COMPLAINTS = """
WITH h AS (
    SELECT id, region_code, row_number() OVER (ORDER BY id) - 1 AS n
    FROM households WHERE region_code LIKE $1 || '.%' AND address LIKE 'Jl. Massal No. %'
), s AS (
    SELECT g, (ARRAY['NEW', 'RETURNED', 'VERIFIED', 'IN_PROGRESS', 'REFERRED', 'RESOLVED', 'REJECTED'])[1 + g % 7]
               AS status,
           now() - (g % 120) * interval '1 day' - (g % 1440) * interval '1 minute' AS started
    FROM generate_series(0, $2 - 1) AS g
)
INSERT INTO complaints (household_id, region_code, kind, sector, description, channel, priority, status,
                        sla_started_at, sla_due_at, decision, closed_at, reported_at, version, created_at, updated_at)
SELECT h.id, h.region_code,
       (ARRAY['QUESTION', 'SUGGESTION', 'COMPLAINT'])[1 + s.g % 3],
       (ARRAY['HEALTH', 'EDUCATION', 'PKH', 'FOOD', 'ENERGY', 'AGRICULTURE', 'FISHERIES', 'HOUSING',
              'CIVIL_REGISTRATION', 'SOCIAL_REHABILITATION', 'OTHER'])[1 + s.g % 11],
       'Keluhan massal nomor ' || s.g || ': bantuan sembako belum diterima sejak tiga bulan',
       (ARRAY['FACILITATOR_VISIT', 'PUSKESOS_WALK_IN', 'DISTRICT_FRONT_OFFICE', 'HOTLINE'])[1 + s.g % 4],
       (ARRAY['LOW', 'NORMAL', 'HIGH', 'URGENT'])[1 + s.g % 4],
       s.status, s.started, s.started + (1 + s.g % 30) * interval '1 day',
       CASE WHEN s.status IN ('RESOLVED', 'REJECTED') THEN 'Diputuskan saat migrasi data' END,
       CASE WHEN s.status IN ('RESOLVED', 'REJECTED') THEN s.started + interval '2 days' END,
       s.started, 1 + s.g % 4, s.started, s.started + interval '1 hour'
FROM s JOIN h ON h.n = s.g % $3
"""
EXPORT_ROWS = 100_000
SEED_HOUSEHOLD_COUNT = 3_000
RSS_LIMIT_KIB = 60 * 1024


async def _seed(database_url: str, world: LiveWorld) -> None:
    conn = await asyncpg.connect(_plain(database_url))
    try:
        async with conn.transaction():
            desas = [world.code(d) for d in (".74.01.1001", ".74.01.1002", ".74.02.1001")]
            await conn.execute(SEED_HOUSEHOLDS, desas, SEED_HOUSEHOLD_COUNT)
            await conn.execute(SEED_COMPLAINTS, world.province, EXPORT_ROWS, SEED_HOUSEHOLD_COUNT)
        await conn.execute("ANALYZE households")
        await conn.execute("ANALYZE complaints")
        assert await conn.fetchval("SELECT count(*) FROM complaints WHERE region_code LIKE $1 || '.%'",
                                   world.province) == EXPORT_ROWS
    finally:
        await conn.close()


async def _pull_changes(base: str, key: str, after: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = (await _ok(base, CHANGES, {"after": after, "first": 1000}, key))["changes"]
        events += page["events"]
        after = page["endCursor"]
        if not page["hasMore"]:
            return events


async def _export(base: str, key: str, kind: str, region: str) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """A small export read whole: rows, trailer, header cursor."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        response = await http.get(f"/export/{kind}.ndjson", params={"region": region},
                                  headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    lines = [orjson.loads(line) for line in response.text.splitlines() if line]
    assert lines and lines[-1].get("type") == "end", lines[-1:]
    trailer = lines.pop()
    assert trailer["rows"] == len(lines)
    assert trailer["cursor"] == response.headers["x-rujuk-cursor"]
    return lines, trailer, response.headers["x-rujuk-cursor"]


async def test_export_of_100k_complaints_streams_with_flat_memory_and_hands_over_to_changes(
        server: ServerProcess, live_world: LiveWorld, live_services: Services, live_database_url: str) -> None:
    accounts = await _accounts(live_services, live_world, server.http)
    key = await _key(server.http, accounts, "first full sync")
    region = live_world.code(".74")
    started = time.monotonic()
    await _seed(live_database_url, live_world)
    seeded_in = time.monotonic() - started
    before_export = await _register(live_services, live_world, ".74.02.1001", 7)  # an event before the export
    async with live_services.sessionmaker() as session:
        seeded_household = (await session.scalars(
            select(Household.id).where(Household.region_code == live_world.code(".74.01.1002"),
                                       Household.address.like("Jl. Massal No. %")).limit(1))).one()
        before_event = (await session.scalars(
            select(CaseEvent.id).where(CaseEvent.household_id == before_export))).one()

    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:  # warm-up, and the scope check
        outside = await http.get("/export/complaints.ndjson", params={"region": "99.01"},
                                 headers={"Authorization": f"Bearer {key}"})
        assert outside.status_code == 400, outside.text
        assert (await http.get("/export/complaints.ndjson", params={"region": region})).status_code == 401
        assert (await http.get("/export/referrals.ndjson", params={"region": region},
                               headers={"Authorization": f"Bearer {key}"})).status_code == 200

    baseline = server.rss_kib()
    samples: list[int] = []
    sampling = asyncio.Event()

    async def sample() -> None:
        while not sampling.is_set():
            samples.append(server.rss_kib())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    rows, last_pk, trailer, during = 0, 0, None, None
    t0 = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=120) as http, http.stream(
                "GET", "/export/complaints.ndjson", params={"region": region},
                headers={"Authorization": f"Bearer {key}"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/x-ndjson")
            header_cursor = response.headers["x-rujuk-cursor"]
            async for line in response.aiter_lines():
                if not line:
                    continue
                assert trailer is None, "a line after the trailer"
                row = orjson.loads(line)
                if row.get("type") == "end":
                    trailer = row
                    continue
                rows += 1
                pk = pk_of(row["id"], "Complaint")
                assert pk is not None and pk > last_pk, (last_pk, row["id"])
                last_pk = pk
                assert row["regionCode"].startswith(region + "."), row
                if rows == 30_000:  # a complaint filed while the export streams: not in it, next in changes
                    during = await _file(live_services, live_world, seeded_household)
                if during is not None:
                    assert pk != during, "a complaint committed after the snapshot is in the export"
    finally:
        sampling.set()
        await sampler
    elapsed = time.monotonic() - t0
    growth = max(samples, default=baseline) - baseline
    log.info("export: seeded %d rows in %.1fs; streamed %d rows in %.2fs (%.0f rows/s); server RSS %d KiB -> peak "
             "%d KiB (growth %.1f MiB, %d samples)", EXPORT_ROWS, seeded_in, rows, elapsed, rows / elapsed,
             baseline, max(samples, default=baseline), growth / 1024, len(samples))
    after = await _file(live_services, live_world, seeded_household, sector=Sector.FOOD)

    assert trailer is not None, "no trailer line"
    assert rows == EXPORT_ROWS == trailer["rows"], (rows, trailer)
    assert trailer["cursor"] == header_cursor, (trailer, header_cursor)
    assert during is not None
    assert growth < RSS_LIMIT_KIB, f"server RSS grew {growth / 1024:.1f} MiB during the export"
    assert int(header_cursor) >= before_event, "the export's cursor is before an event the export contains"

    continued = await _pull_changes(server.http, key, header_cursor)
    assert all(int(e["cursor"]) > int(header_cursor) for e in continued)
    assert [(e["kind"], pk_of(e["complaintId"], "Complaint")) for e in continued] == [
        ("COMPLAINT_FILED", during), ("COMPLAINT_FILED", after)], continued


async def test_households_export_masks_personal_data_without_the_grant(
        server: ServerProcess, live_world: LiveWorld, live_services: Services, live_engine: AsyncEngine) -> None:
    accounts = await _accounts(live_services, live_world, server.http)
    masked = await _key(server.http, accounts, "statistics, masked")
    granted = await _key(server.http, accounts, "BPJS eligibility, personal data", personal_data=True)
    people = [("Siti Nurhaliza Harahap", Sex.FEMALE, Relation.HEAD), ("Budi Santoso", Sex.MALE, Relation.CHILD)]
    hid = await _register(live_services, live_world, ".74.01.1001", 31, people)
    kec = live_world.code(".74.01")
    niks = {}
    for i, (name, sex, _) in enumerate(people):
        born = dt.date(1960 + i * 25, 1 + 31 % 12, 1 + 31 % 27)
        niks[name] = nik(kec, born, female=sex is Sex.FEMALE, serial=31 * 10 + i)
    gid = str(to_global_id("Household", hid))

    rows, _, _ = await _export(server.http, masked, "households", live_world.code(".74"))
    [h] = [r for r in rows if r["id"] == gid]
    assert h["address"] is None and h["latitude"] is None and h["longitude"] is None, h
    assert {m["name"] for m in h["members"]} == {initials(n) for n, _, _ in people}, h
    for m in h["members"]:
        assert m["nik"] is None, m
        assert m["nikMasked"] not in niks.values(), m
    assert all(m["nik"] is None for r in rows for m in r["members"]), "some NIK is shown without the grant"
    masked_members = [m["name"] for m in h["members"]]

    rows, _, _ = await _export(server.http, granted, "households", live_world.code(".74"))
    [h] = [r for r in rows if r["id"] == gid]
    assert h["address"] == "Jl. Sinkron No. 31", h
    assert {m["name"]: m["nik"] for m in h["members"]} == niks, h
    # reads of unmasked personal data are audited
    deadline = time.monotonic() + 5
    while True:
        async with live_engine.connect() as conn:
            audited = (await conn.execute(select(AuditEntry.detail).where(
                AuditEntry.actor_id == accounts.partner_id, AuditEntry.action == "READ_PERSONAL_DATA"))).all()
        if audited or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert audited, "the granted export's NIK reads were not audited"
    # each member once, in id order (the household has two)
    assert masked_members == [initials(n) for n, _, _ in people], (len(masked_members), masked_members[:6])
    assert [m["name"] for m in h["members"]] == [n for n, _, _ in people], (len(h["members"]), h["members"][:3])


# --- 3. keys limited to a program -------------------------------------------------------------------------------


async def test_program_limited_key_exports_and_pulls_only_complaints_about_or_referred_to_its_program(
        server: ServerProcess, live_world: LiveWorld, live_services: Services, live_engine: AsyncEngine) -> None:
    p = live_world.province
    async with live_services.sessionmaker() as session, session.begin():
        pbi = Program(code=f"PBI-JK-T{p}", name="PBI Jaminan Kesehatan (uji)", sector="HEALTH",
                      owner_agency="BPJS Kesehatan", sla_days=7)
        kip = Program(code=f"KIP-T{p}", name="Kartu Indonesia Pintar (uji)", sector="EDUCATION",
                      owner_agency="Dinas Pendidikan", sla_days=14)
        session.add_all([pbi, kip])
    accounts = await _accounts(live_services, live_world, server.http)
    pbi_key = await _key(server.http, accounts, "BPJS PBI-JK only", programs=[pbi.code])
    all_key = await _key(server.http, accounts, "everything")
    async with live_engine.connect() as conn:
        start = int(await conn.scalar(select(CaseEvent.id).order_by(CaseEvent.id.desc()).limit(1)) or 0)

    hid = await _register(live_services, live_world, ".74.01.1001", 41)
    hid2 = await _register(live_services, live_world, ".74.02.1001", 42)
    about_pbi = await _file(live_services, live_world, hid, program_id=pbi.id)
    referred_to_pbi = await _file(live_services, live_world, hid)
    about_kip = await _file(live_services, live_world, hid2, sector=Sector.EDUCATION, program_id=kip.id)
    referred_to_kip = await _file(live_services, live_world, hid2)
    unrelated = await _file(live_services, live_world, hid2, sector=Sector.FOOD)
    kip_referred_to_pbi = await _file(live_services, live_world, hid, sector=Sector.EDUCATION, program_id=kip.id)
    manager = live_world.actor("manager")
    made_referrals = {}
    for cid, program in [(referred_to_pbi, pbi), (referred_to_kip, kip), (kip_referred_to_pbi, pbi)]:
        async with live_services.sessionmaker() as session:
            c = await complaints.verify_complaint(session, actor=manager, complaint_id=cid, expected_version=1)
            made = await referrals.create_referral(session, actor=manager, data=referrals.ReferralData(
                complaint_id=c.id, program_id=program.id, consent_given=True))
            await write_events(session)
            await session.commit()
        made_referrals[cid] = made.id
    expected = {about_pbi, referred_to_pbi, kip_referred_to_pbi}
    everything = expected | {about_kip, referred_to_kip, unrelated}
    region = live_world.code(".74")

    rows, _, _ = await _export(server.http, pbi_key, "complaints", region)
    assert {pk_of(r["id"], "Complaint") for r in rows} == expected, rows
    assert {pk_of(r["id"], "Complaint"): r["program"] for r in rows} == {
        about_pbi: pbi.code, referred_to_pbi: None, kip_referred_to_pbi: kip.code}
    rows, _, _ = await _export(server.http, all_key, "complaints", region)
    assert {pk_of(r["id"], "Complaint") for r in rows} == everything
    rows, _, _ = await _export(server.http, pbi_key, "referrals", region)
    assert {pk_of(r["id"], "Referral") for r in rows} == {made_referrals[referred_to_pbi],
                                                          made_referrals[kip_referred_to_pbi]}, rows
    assert {r["program"] for r in rows} == {pbi.code}

    pulled = await _ok(server.http, COMPLAINTS, {"f": {"updatedAfter": SINCE_EVER}, "first": 1000}, pbi_key)
    assert {pk_of(e["node"]["id"], "Complaint") for e in pulled["complaints"]["edges"]} == expected
    node = await _ok(server.http, "query($id: ID!) { node(id: $id) { id } }",
                     {"id": str(to_global_id("Complaint", unrelated))}, pbi_key)
    assert node["node"] is None

    events = await _pull_changes(server.http, pbi_key, str(start))
    async with live_engine.connect() as conn:
        db_events = (await conn.execute(select(CaseEvent.id, CaseEvent.complaint_id).where(
            CaseEvent.id > start, CaseEvent.region_code.like(region + ".%")))).all()
    about_complaints = {int(e["cursor"]) for e in events if e["complaintId"]}
    assert {pk_of(e["complaintId"], "Complaint") for e in events if e["complaintId"]} == expected, events
    assert about_complaints == {e.id for e in db_events if e.complaint_id in expected}
    assert {e["kind"] for e in events if not e["complaintId"]} <= {"HOUSEHOLD_REGISTERED", "HOUSEHOLD_UPDATED",
                                                                   "MEMBER_ADDED"}
    everything_events = await _pull_changes(server.http, all_key, str(start))
    assert {int(e["cursor"]) for e in everything_events} == {e.id for e in db_events}
