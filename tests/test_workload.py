"""The workload board's aggregate against a plain reference computed in Python over the same rows: a varied
district (open, closed, new today, at risk, breached, unassigned, inactive and out-of-area staff, complaints
assigned across kecamatan), every scope a supervisor, manager or admin asks for; and that the open counts
are read from the open-complaints index."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import ASSIGNABLE_ROLES
from domain.complaints import queries
from domain.complaints.models import Complaint
from domain.enums import OPEN_COMPLAINT_STATUSES, ComplaintStatus, Role, SlaState
from domain.households.models import Household
from domain.regions import covers
from domain.staff.models import Staff
from domain.staff.service import actor_of
from tests.conftest import DESA_A1, DESA_A2, DESA_B1, KEC_A, KEC_B, PASSWORD_HASH, World

WIB = ZoneInfo(queries.LOCAL_TZ)
#: 09:30 in Jakarta: local midnight is 17:00 UTC the day before
NOW = dt.datetime(2026, 3, 4, 2, 30, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2026, 3, 4, tzinfo=WIB).astimezone(dt.UTC)

Board = list[tuple[str, int, int, int, int, dt.datetime | None]]


def reference(staff: list[Staff], complaints: list[Complaint], scopes: tuple[str, ...] | None) -> Board:
    """The board by definition: each active facilitator and officer in scope with the complaints in scope
    assigned to them; busiest first, then by name and id."""
    def here(code: str | None) -> bool:
        return scopes is None or (code is not None and any(covers(s, code) for s in scopes))

    rows = []
    for s in staff:
        if not (s.active and Role(s.role) in ASSIGNABLE_ROLES and here(s.region_code)):
            continue
        mine = [c for c in complaints if c.assignee_id == s.id and here(c.region_code)]
        open_ = [c for c in mine if ComplaintStatus(c.status) in OPEN_COMPLAINT_STATUSES]
        states = [queries.sla_state(c, NOW) for c in open_]
        rows.append((s.full_name, s.id, s.username, len(open_),
                     sum(c.created_at >= MIDNIGHT for c in mine), states.count(SlaState.AT_RISK),
                     states.count(SlaState.BREACHED), min((c.created_at for c in open_), default=None)))
    rows.sort(key=lambda r: (-r[3], r[0], r[1]))
    return [r[2:] for r in rows]


def board(rows: list[queries.WorkloadRow]) -> Board:
    return [(r.staff.username, r.open, r.new_today, r.at_risk, r.breached, r.oldest_open_at) for r in rows]


def complaint(rng: random.Random, *, household: Household, assignee: Staff | None, status: ComplaintStatus,
              created_at: dt.datetime, sla_days: float, elapsed: float) -> Complaint:
    """A complaint whose SLA window of ``sla_days`` is ``elapsed`` (a share of it) gone at ``NOW``."""
    window = dt.timedelta(days=sla_days)
    started = NOW - window * elapsed
    closed = status in (ComplaintStatus.RESOLVED, ComplaintStatus.REJECTED)
    return Complaint(
        household_id=household.id, region_code=household.region_code, kind="COMPLAINT",
        sector=rng.choice(["HEALTH", "EDUCATION", "PKH"]), description="keluhan", channel="FACILITATOR_VISIT",
        priority="NORMAL", status=status.value, assignee_id=assignee.id if assignee else None,
        sla_started_at=started, sla_due_at=started + window, decision="selesai" if closed else None,
        closed_at=NOW if closed else None, created_at=created_at, updated_at=created_at)


@pytest.fixture
async def district(session: AsyncSession, world: World) -> tuple[list[Staff], list[Complaint]]:
    rng = random.Random(20260304)
    extra = []
    for username, role, region, active in [
        ("fac_a1c", Role.FACILITATOR, DESA_A1, True), ("fac_gone", Role.FACILITATOR, DESA_A2, False),
        ("officer_b", Role.PUSKESOS_OFFICER, KEC_B, True), ("fac_b1b", Role.FACILITATOR, DESA_B1, True),
    ]:
        # fac_a1c shares fac_a1b's name: the board breaks the tie by id
        s = Staff(username=username, password_hash=PASSWORD_HASH, role=role.value, region_code=region, active=active,
                  full_name="Fac A1B" if username == "fac_a1c" else username.replace("_", " ").title())
        session.add(s)
        extra.append(s)
    households = [Household(region_code=code, address=f"Jl. {code}", dtks_status="REGISTERED")
                  for code in (DESA_A1, DESA_A1, DESA_A2, DESA_B1, KEC_A)]
    session.add_all(households)
    await session.flush()
    staff = [*world.staff.values(), *extra]
    assignees: list[Staff | None] = [s for s in staff if s.role in {r.value for r in ASSIGNABLE_ROLES}]
    assignees += [world.staff["sup_a"], None, None]  # held by a supervisor, or by nobody
    complaints = []
    for _ in range(400):
        created = rng.choice([
            NOW - dt.timedelta(days=rng.uniform(1, 60)),                       # long ago
            MIDNIGHT + (NOW - MIDNIGHT) * rng.random(),                        # today
            MIDNIGHT - dt.timedelta(microseconds=rng.choice([1, 10**6, 3 * 3600 * 10**6])),  # just before
            MIDNIGHT,                                                          # on the dot
        ])
        complaints.append(complaint(
            rng, household=rng.choice(households), assignee=rng.choice(assignees),
            status=rng.choice(list(ComplaintStatus)), created_at=created, sla_days=rng.choice([3, 7, 14]),
            # on track, at risk (over 75% gone) or breached; never on a boundary to the microsecond
            elapsed=rng.choice([rng.uniform(0.01, 0.7), rng.uniform(0.8, 0.99), rng.uniform(1.01, 3)])))
    session.add_all(complaints)
    await session.flush()
    return staff, complaints


@pytest.mark.parametrize(("who", "region"), [
    ("sup_a", None), ("sup_a", DESA_A1), ("sup_a", DESA_A2), ("sup_b", None), ("sup_b", KEC_B),
    ("manager", None), ("manager", "12.74"), ("manager", KEC_A), ("admin", None), ("admin", "12"),
])
async def test_the_board_matches_the_reference(session: AsyncSession, world: World,
                                               district: tuple[list[Staff], list[Complaint]],
                                               who: str, region: str | None) -> None:
    staff, complaints = district
    actor = actor_of(world.staff[who])
    got = board(await queries.workload(session, actor=actor, region_code=region, now=NOW))
    want = reference(staff, complaints, (region,) if region else actor.regions)
    assert got == want
    # the data set exercises every count
    assert all(any(row[i] for row in got) for i in (1, 2, 3, 4)) or region == DESA_A2


async def test_the_board_at_the_clock(session: AsyncSession, world: World,
                                      district: tuple[list[Staff], list[Complaint]]) -> None:
    """Without ``now`` the board counts at the transaction's clock: here every seeded complaint lies in the
    past, and none was filed today unless today is the seeded day."""
    staff, complaints = district
    actor = actor_of(world.staff["manager"])
    got = {r.staff.username: (r.open, r.oldest_open_at) for r in await queries.workload(session, actor=actor)}
    for username, _open, _new, _risk, _breached, oldest in reference(staff, complaints, actor.regions):
        assert got[username] == (_open, oldest)


async def test_open_counts_read_the_open_complaints_index(session: AsyncSession, world: World,
                                                         district: tuple[list[Staff], list[Complaint]]) -> None:
    """The open aggregate must stay on ``ix_complaints_open_region``: its predicate has to match the query's open
    statuses (rendered as literals, so a generic plan matches it too)."""
    sent: list[tuple[str, Any]] = []
    connection = await session.connection()

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(connection.sync_connection, "before_cursor_execute", capture)
    try:
        await queries.workload(session, actor=actor_of(world.staff["manager"]), region_code=KEC_A, now=NOW)
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", capture)
    statement, parameters = sent[-1]
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    await session.execute(text("SET LOCAL enable_bitmapscan = off"))
    plan = "\n".join(r[0] for r in await connection.exec_driver_sql("EXPLAIN " + statement, parameters))
    assert "Index Only Scan using ix_complaints_open_region" in plan, plan
    assert "'NEW'" in statement and "REFERRED" in statement


async def test_open_index_predicate_is_the_open_statuses(session: AsyncSession) -> None:
    definition = await session.scalar(select(text("pg_get_indexdef('ix_complaints_open_region'::regclass)")))
    assert definition is not None
    predicate = definition.partition(" WHERE ")[2]
    assert {s.value for s in ComplaintStatus if f"'{s.value}'" in predicate} == \
        {s.value for s in OPEN_COMPLAINT_STATUSES}
