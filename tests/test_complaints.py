"""Complaints: fileComplaint, every status change, reassignment (single and bulk), the `complaints` query and
the `workload` board, against the real database. Every failure must leave the complaint, its assignment
history and the case event log exactly as they were."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.complaints.models import Assignment, Complaint
from domain.events import CaseEvent, IdempotencyKey
from schema.relay import pk_of, to_global_id
from tests.conftest import DESA_A1, DESA_A2, DESA_B1, KEC_A, KEC_B, Client, Published, World, nik

# --------------------------------------------------------------------------------------------- operations

COMPLAINT_FIELDS = """
fragment C on Complaint {
  id kind sector description channel priority status regionCode slaDueAt slaState decision statusReason
  closedAt reportedAt version createdAt updatedAt
  household { id } member { id } program { code }
  assignee { id username } filedBy { id username }
  assignmentHistory { reason at fromStaff { username } toStaff { username } by { username } }
}"""

REGISTER = """
mutation($input: RegisterHouseholdInput!) {
  registerHousehold(input: $input) { household { id members { id } } errors { field code } }
}"""

FILE = """
mutation($input: FileComplaintInput!) {
  fileComplaint(input: $input) { replayed complaint { ...C } errors { field code message } }
}""" + COMPLAINT_FIELDS

INPUT_TYPES = {
    "verifyComplaint": "ComplaintTransitionInput",
    "returnComplaint": "ComplaintTransitionInput",
    "rejectComplaint": "ComplaintTransitionInput",
    "startComplaint": "ComplaintTransitionInput",
    "reopenComplaint": "ComplaintTransitionInput",
    "resubmitComplaint": "ResubmitComplaintInput",
    "resolveComplaint": "ResolveComplaintInput",
    "reassignComplaint": "ReassignComplaintInput",
}


def transition_op(name: str) -> str:
    return (f"mutation($input: {INPUT_TYPES[name]}!) {{ {name}(input: $input) "
            "{ complaint { ...C } errors { field code message } } }" + COMPLAINT_FIELDS)


BULK = """
mutation($input: BulkReassignComplaintsInput!) {
  bulkReassignComplaints(input: $input) { complaints { ...C } errors { field code message } }
}""" + COMPLAINT_FIELDS

REFERRAL_FIELDS = "referral { id status version complaint { id status version } } errors { field code }"
CREATE_REFERRAL = ("mutation($input: CreateReferralInput!) { createReferral(input: $input) { "
                   + REFERRAL_FIELDS + " } }")


def referral_op(name: str) -> str:
    input_type = "CompleteReferralInput" if name == "completeReferral" else "ReferralTransitionInput"
    return f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ {REFERRAL_FIELDS} }} }}"


COMPLAINTS = """
query($filter: ComplaintFilter, $first: Int, $after: String, $orderBy: ComplaintOrder) {
  complaints(filter: $filter, first: $first, after: $after, orderBy: $orderBy) {
    totalCount
    edges { cursor node { id status sector slaState regionCode assignee { username } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

NODE = "query($id: ID!) { node(id: $id) { id ... on Complaint { status version } } }"

WORKLOAD = """
query($regionCode: String) {
  workload(regionCode: $regionCode) { staff { username } open newToday atRisk breached oldestOpenAt }
}"""

# ------------------------------------------------------------------------------------------------ helpers

HEAD_BIRTH = dt.date(1980, 3, 12)
WIFE_BIRTH = dt.date(1984, 7, 2)


def household_input(region: str = DESA_A1, n: int = 1) -> dict[str, Any]:
    """A valid household in ``region``; ``n`` makes its No. KK and NIKs distinct from other households'."""
    kecamatan = region.rsplit(".", 1)[0]
    return {
        "regionCode": region,
        "address": f"Jl. Sudirman Gg. Melati No. {n}",
        "rt": "003",
        "rw": "001",
        "dtksStatus": "REGISTERED",
        "familyCards": ["".join(kecamatan.split(".")) + f"120315{n:04d}"],
        "members": [
            {"name": "Ahmad Siregar", "sex": "MALE", "birthDate": HEAD_BIRTH.isoformat(), "relation": "HEAD",
             "nik": nik(kecamatan, HEAD_BIRTH, female=False, serial=2 * n - 1)},
            {"name": "Siti Nasution", "sex": "FEMALE", "birthDate": WIFE_BIRTH.isoformat(), "relation": "SPOUSE",
             "nik": nik(kecamatan, WIFE_BIRTH, female=True, serial=2 * n)},
        ],
    }


async def register(client: Client, world: World, *, actor: str = "fac_a1", region: str = DESA_A1,
                   n: int = 1, **overrides: Any) -> dict[str, Any]:
    out = await client.ok(REGISTER, {"input": household_input(region, n) | overrides}, actor=world.actor(actor))
    payload = out["registerHousehold"]
    assert payload["errors"] == [], payload["errors"]
    household: dict[str, Any] = payload["household"]
    return household


def staff_gid(world: World, name: str) -> str:
    return str(to_global_id("Staff", world.staff[name].id))


def program_gid(world: World, code: str) -> str:
    return str(to_global_id("Program", world.programs[code].id))


def db_id(gid: str) -> int:
    value = pk_of(gid, "Complaint")
    assert value is not None
    return value


def ago(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat()


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def complaint_input(household_id: str, **overrides: Any) -> dict[str, Any]:
    return {"householdId": household_id, "sector": "HEALTH", "description": "Kartu KIS tidak aktif di puskesmas"} \
        | overrides


async def file(client: Client, world: World, household_id: str, *, actor: str = "fac_a1",
               **overrides: Any) -> dict[str, Any]:
    out = await client.ok(FILE, {"input": complaint_input(household_id, **overrides)}, actor=world.actor(actor))
    payload = out["fileComplaint"]
    assert payload["errors"] == [], payload["errors"]
    complaint: dict[str, Any] = payload["complaint"]
    return complaint


async def mutate(client: Client, world: World, name: str, input: dict[str, Any], *,
                 actor: str | None = "sup_a") -> dict[str, Any]:
    out = await client.ok(transition_op(name), {"input": input}, actor=world.actor(actor) if actor else None)
    payload: dict[str, Any] = out[name]
    return payload


async def change(client: Client, world: World, name: str, complaint: dict[str, Any], *, actor: str = "sup_a",
                 **extra: Any) -> dict[str, Any]:
    """A status change that must succeed; returns the complaint as it is afterwards."""
    payload = await mutate(client, world, name, {"id": complaint["id"], "expectedVersion": complaint["version"]}
                           | extra, actor=actor)
    assert payload["errors"] == [], payload["errors"]
    assert payload["complaint"]["version"] == complaint["version"] + 1
    changed: dict[str, Any] = payload["complaint"]
    return changed


async def referral_step(client: Client, world: World, name: str, referral: dict[str, Any], *,
                        actor: str = "sup_a", **extra: Any) -> dict[str, Any]:
    out = await client.ok(referral_op(name), {"input": {"id": referral["id"], "expectedVersion": referral["version"]}
                                              | extra}, actor=world.actor(actor))
    assert out[name]["errors"] == [], out[name]["errors"]
    result: dict[str, Any] = out[name]["referral"]
    return result


async def create_referral(client: Client, world: World, complaint: dict[str, Any],
                          program: str = "PBI-JK") -> dict[str, Any]:
    out = await client.ok(CREATE_REFERRAL, {"input": {"complaintId": complaint["id"],
                                                      "programId": program_gid(world, program),
                                                      "consentGiven": True}}, actor=world.actor("sup_a"))
    assert out["createReferral"]["errors"] == [], out["createReferral"]["errors"]
    referral: dict[str, Any] = out["createReferral"]["referral"]
    assert referral["status"] == "DRAFT"
    return referral


async def complaint_in(client: Client, world: World, household_id: str, status: str) -> dict[str, Any]:
    """A complaint of fac_a1 (filer and assignee) driven through the API to ``status``."""
    c = await file(client, world, household_id)
    if status == "NEW":
        return c
    if status == "RETURNED":
        return await change(client, world, "returnComplaint", c, reason="NIK anggota belum dicantumkan")
    if status == "REJECTED":
        return await change(client, world, "rejectComplaint", c, reason="bukan kewenangan SLRT")
    c = await change(client, world, "verifyComplaint", c)
    if status == "VERIFIED":
        return c
    if status == "IN_PROGRESS":
        return await change(client, world, "startComplaint", c)
    if status == "RESOLVED":
        return await change(client, world, "resolveComplaint", c, decision="kartu KIS diaktifkan kembali")
    if status == "REFERRED":
        referral = await create_referral(client, world, c)
        sent = await referral_step(client, world, "sendReferral", referral)
        assert sent["complaint"]["status"] == "REFERRED"
        return await current(client, world, c["id"])
    raise AssertionError(status)


async def current(client: Client, world: World, gid: str) -> dict[str, Any]:
    out = await client.ok(f"query($id: ID!) {{ node(id: $id) {{ ...C }} }} {COMPLAINT_FIELDS}", {"id": gid},
                          actor=world.actor("admin"))
    node: dict[str, Any] = out["node"]
    return node


async def count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def snapshot(session: AsyncSession, gid: str | None = None) -> tuple[Any, ...]:
    """Everything a failed mutation must leave alone: the complaint's row (when given), every complaint's
    status/version/assignee, the assignment history and the event log."""
    rows = (await session.execute(
        select(Complaint.id, Complaint.status, Complaint.version, Complaint.assignee_id, Complaint.decision,
               Complaint.description).order_by(Complaint.id))).all()
    return (gid, [tuple(r) for r in rows], await count(session, Assignment), await count(session, CaseEvent),
            await count(session, Complaint))


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def event_kinds(session: AsyncSession, complaint_gid: str) -> list[str]:
    return list(await session.scalars(select(CaseEvent.kind).where(CaseEvent.complaint_id == db_id(complaint_gid))
                                      .order_by(CaseEvent.id)))


# ------------------------------------------------------------------------------------------- fileComplaint


async def test_file_complaint_defaults_and_event(client: Client, world: World, session: AsyncSession,
                                                 published: Published) -> None:
    household = await register(client, world)
    member_id = household["members"][1]["id"]
    reported = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=5)
    c = await file(client, world, household["id"], memberId=member_id, programId=program_gid(world, "PBI-JK"),
                   reportedAt=reported.isoformat(), priority="HIGH", channel="PUSKESOS_WALK_IN", kind="QUESTION",
                   description="  Kartu KIS tidak aktif  ")
    assert c["status"] == "NEW" and c["version"] == 1
    assert c["kind"] == "QUESTION" and c["priority"] == "HIGH" and c["channel"] == "PUSKESOS_WALK_IN"
    assert c["description"] == "Kartu KIS tidak aktif"
    assert c["regionCode"] == DESA_A1
    assert c["household"]["id"] == household["id"] and c["member"]["id"] == member_id
    assert c["program"]["code"] == "PBI-JK"
    # the service-level clock starts when the household reported it; PBI-JK's SLA is 7 days
    assert when(c["reportedAt"]) == reported
    assert when(c["slaDueAt"]) == reported + dt.timedelta(days=7)
    assert c["slaState"] == "ON_TRACK"
    # the filing facilitator holds the case
    assert c["assignee"] == {"id": staff_gid(world, "fac_a1"), "username": "fac_a1"}
    assert c["filedBy"]["username"] == "fac_a1"
    assert [(a["fromStaff"], a["toStaff"]["username"], a["by"]["username"]) for a in c["assignmentHistory"]] == \
        [(None, "fac_a1", "fac_a1")]
    row = await session.get(Complaint, db_id(c["id"]))
    assert row is not None and row.assignee_id == world.staff["fac_a1"].id and row.status == "NEW"
    events = list(await session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == row.id)))
    assert [e.kind for e in events] == ["COMPLAINT_FILED"]
    assert events[0].household_id == db_id_of_household(household["id"])
    assert events[0].actor_id == world.staff["fac_a1"].id and events[0].region_code == DESA_A1
    assert events[0].data["status"] == "NEW" and events[0].data["version"] == 1
    assert published.ids[-1] == events[0].id


def db_id_of_household(gid: str) -> int:
    value = pk_of(gid, "Household")
    assert value is not None
    return value


@pytest.mark.parametrize(("sector", "program", "days"), [
    ("HEALTH", None, 3),
    ("HOUSING", None, 30),
    ("CIVIL_REGISTRATION", None, 7),
    ("EDUCATION", "KIP", 14),
    ("HEALTH", "PBI-JK", 7),
])
async def test_sla_due_comes_from_program_or_sector(client: Client, world: World, sector: str, program: str | None,
                                                    days: int) -> None:
    household = await register(client, world)
    reported = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=30)
    extra = {"programId": program_gid(world, program)} if program else {}
    c = await file(client, world, household["id"], sector=sector, reportedAt=reported.isoformat(), **extra)
    assert when(c["slaDueAt"]) - reported == dt.timedelta(days=days)


async def test_sla_clock_starts_at_filing_without_report_time(client: Client, world: World) -> None:
    household = await register(client, world)
    before = dt.datetime.now(dt.UTC)
    c = await file(client, world, household["id"], sector="HOUSING")
    after = dt.datetime.now(dt.UTC)
    assert c["reportedAt"] is None
    assert before + dt.timedelta(days=30) <= when(c["slaDueAt"]) <= after + dt.timedelta(days=30)


async def test_supervisor_filing_leaves_case_unassigned_or_assigns_explicitly(client: Client, world: World) -> None:
    household = await register(client, world)
    unassigned = await file(client, world, household["id"], actor="sup_a")
    assert unassigned["assignee"] is None and unassigned["assignmentHistory"] == []
    assigned = await file(client, world, household["id"], actor="sup_a", assigneeId=staff_gid(world, "fac_a1b"))
    assert assigned["assignee"]["username"] == "fac_a1b"
    assert [(a["toStaff"]["username"], a["by"]["username"]) for a in assigned["assignmentHistory"]] == \
        [("fac_a1b", "sup_a")]
    officer = await file(client, world, household["id"], actor="officer_a")
    assert officer["assignee"]["username"] == "officer_a"
    colleague = await file(client, world, household["id"], actor="fac_a1", assigneeId=staff_gid(world, "fac_a1b"))
    assert colleague["assignee"]["username"] == "fac_a1b" and colleague["filedBy"]["username"] == "fac_a1"


FILE_FAILURES: list[tuple[str, str, dict[str, Any], str, str | None]] = [
    # (id, actor, input patch, code, field); "$..." values are resolved in the test
    ("household-of-other-desa", "fac_a1", {"householdId": "$hh_a2"}, "NOT_FOUND", "householdId"),
    ("household-of-other-kecamatan", "sup_a", {"householdId": "$hh_b1"}, "NOT_FOUND", "householdId"),
    ("unknown-household", "fac_a1", {"householdId": to_global_id("Household", 987654)}, "NOT_FOUND", "householdId"),
    ("malformed-id", "fac_a1", {"householdId": "not-a-global-id"}, "INVALID_ID", "householdId"),
    ("id-of-other-type", "fac_a1", {"householdId": "$complaint"}, "INVALID_ID", "householdId"),
    ("blank-description", "fac_a1", {"description": "   "}, "REQUIRED", "description"),
    ("too-long-description", "fac_a1", {"description": "x" * 4001}, "TOO_LONG", "description"),
    ("program-of-other-sector", "fac_a1", {"sector": "HEALTH", "programId": "$KIP"}, "PROGRAM_SECTOR_MISMATCH",
     "programId"),
    ("unknown-program", "fac_a1", {"programId": to_global_id("Program", 987654)}, "NOT_FOUND", "programId"),
    ("member-of-other-household", "fac_a1", {"memberId": "$other_member"}, "NOT_FOUND", "memberId"),
    ("assignee-out-of-area", "sup_a", {"assigneeId": "$fac_a2"}, "ASSIGNEE_OUT_OF_AREA", "assigneeId"),
    ("assignee-outside-actor-area", "sup_a", {"assigneeId": "$fac_b1"}, "NOT_FOUND", "assigneeId"),
    ("assignee-outside-facilitator-area", "fac_a1", {"assigneeId": "$fac_a2"}, "NOT_FOUND", "assigneeId"),
    ("assignee-supervisor", "sup_a", {"assigneeId": "$sup_a"}, "NOT_ASSIGNABLE", "assigneeId"),
    ("assignee-manager", "manager", {"assigneeId": "$manager"}, "NOT_ASSIGNABLE", "assigneeId"),
    ("reported-in-future", "fac_a1", {"reportedAt": "$future"}, "INVALID_TIME", "reportedAt"),
    ("reported-over-a-year-ago", "fac_a1", {"reportedAt": "$ancient"}, "INVALID_TIME", "reportedAt"),
    ("partner", "partner", {}, "FORBIDDEN", None),
    ("unauthenticated", "", {}, "UNAUTHENTICATED", None),
    ("blank-idempotency-key", "fac_a1", {"idempotencyKey": "  "}, "INVALID_IDEMPOTENCY_KEY", "idempotencyKey"),
]


@pytest.mark.parametrize(("actor", "patch", "code", "field"), [f[1:] for f in FILE_FAILURES],
                         ids=[f[0] for f in FILE_FAILURES])
async def test_file_complaint_failure_writes_nothing(client: Client, world: World, session: AsyncSession,
                                                     actor: str, patch: dict[str, Any], code: str,
                                                     field: str | None) -> None:
    household = await register(client, world, n=1)
    other = await register(client, world, n=2)
    hh_a2 = await register(client, world, actor="fac_a2", region=DESA_A2, n=3)
    hh_b1 = await register(client, world, actor="fac_b1", region=DESA_B1, n=4)
    existing = await file(client, world, household["id"])
    values = {
        "$hh_a2": hh_a2["id"], "$hh_b1": hh_b1["id"], "$complaint": existing["id"], "$KIP": program_gid(world, "KIP"),
        "$other_member": other["members"][0]["id"], "$fac_a2": staff_gid(world, "fac_a2"),
        "$fac_b1": staff_gid(world, "fac_b1"), "$sup_a": staff_gid(world, "sup_a"),
        "$manager": staff_gid(world, "manager"),
        "$future": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
        "$ancient": ago(days=400),
    }
    data = complaint_input(household["id"]) | {k: values.get(v, v) if isinstance(v, str) else v
                                                for k, v in patch.items()}
    before = await snapshot(session)
    keys_before = await count(session, IdempotencyKey)
    out = await client.ok(FILE, {"input": data}, actor=world.actor(actor) if actor else None)
    payload = out["fileComplaint"]
    assert payload["complaint"] is None and payload["replayed"] is False
    assert code in codes(payload), payload["errors"]
    assert [e["field"] for e in payload["errors"] if e["code"] == code] == [field]
    assert await snapshot(session) == before
    assert await count(session, IdempotencyKey) == keys_before


async def test_file_complaint_reports_every_input_error_at_once(client: Client, world: World,
                                                                session: AsyncSession) -> None:
    household = await register(client, world)
    data = complaint_input(household["id"], description=" ", programId=program_gid(world, "KIP"),
                           reportedAt=(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat())
    out = await client.ok(FILE, {"input": data}, actor=world.actor("fac_a1"))
    assert sorted(codes(out["fileComplaint"])) == ["INVALID_TIME", "PROGRAM_SECTOR_MISMATCH", "REQUIRED"]
    assert await count(session, Complaint) == 0


async def test_report_time_without_offset_is_handled(client: Client, world: World, session: AsyncSession) -> None:
    """A tablet that sends a local time without an offset gets an answer, not an internal error."""
    household = await register(client, world)
    naive = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(tzinfo=None, microsecond=0).isoformat()
    out = await client.ok(FILE, {"input": complaint_input(household["id"], reportedAt=naive)},
                          actor=world.actor("fac_a1"))
    payload = out["fileComplaint"]
    assert payload["errors"] == [] or codes(payload) == ["INVALID_TIME"]
    assert await count(session, Complaint) == (1 if payload["errors"] == [] else 0)


async def test_idempotency_key_replay_returns_first_complaint(client: Client, world: World,
                                                              session: AsyncSession) -> None:
    household = await register(client, world)
    data = complaint_input(household["id"], idempotencyKey="tablet-7:c-0001")
    first = await client.ok(FILE, {"input": data}, actor=world.actor("fac_a1"))
    second = await client.ok(FILE, {"input": data}, actor=world.actor("fac_a1"))
    assert first["fileComplaint"]["replayed"] is False
    assert second["fileComplaint"]["replayed"] is True and second["fileComplaint"]["errors"] == []
    assert second["fileComplaint"]["complaint"]["id"] == first["fileComplaint"]["complaint"]["id"]
    assert await count(session, Complaint) == 1
    assert await count(session, CaseEvent, CaseEvent.kind == "COMPLAINT_FILED") == 1
    assert await count(session, Assignment) == 1
    # the key is the actor's own: another facilitator with the same key files a new complaint
    third = await client.ok(FILE, {"input": data}, actor=world.actor("fac_a1b"))
    assert third["fileComplaint"]["replayed"] is False
    assert third["fileComplaint"]["complaint"]["id"] != first["fileComplaint"]["complaint"]["id"]
    assert await count(session, Complaint) == 2


async def test_failed_call_does_not_burn_its_idempotency_key(client: Client, world: World,
                                                             session: AsyncSession) -> None:
    household = await register(client, world)
    bad = await client.ok(FILE, {"input": complaint_input(household["id"], description="", idempotencyKey="k-9")},
                          actor=world.actor("fac_a1"))
    assert codes(bad["fileComplaint"]) == ["REQUIRED"]
    good = await client.ok(FILE, {"input": complaint_input(household["id"], idempotencyKey="k-9")},
                           actor=world.actor("fac_a1"))
    assert good["fileComplaint"]["errors"] == [] and good["fileComplaint"]["replayed"] is False
    assert await count(session, Complaint) == 1


async def test_idempotency_key_reused_for_another_operation(client: Client, world: World,
                                                            session: AsyncSession) -> None:
    key = "tablet-7:0042"
    out = await client.ok(REGISTER, {"input": household_input() | {"idempotencyKey": key}},
                          actor=world.actor("fac_a1"))
    household = out["registerHousehold"]["household"]
    before = await snapshot(session)
    again = await client.ok(FILE, {"input": complaint_input(household["id"], idempotencyKey=key)},
                            actor=world.actor("fac_a1"))
    payload = again["fileComplaint"]
    assert payload["complaint"] is None and payload["replayed"] is False
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert await snapshot(session) == before
    assert await count(session, Complaint) == 0


FILE_TWICE = """
mutation($first: FileComplaintInput!, $second: FileComplaintInput!) {
  first: fileComplaint(input: $first) { complaint { id } errors { code } }
  second: fileComplaint(input: $second) { complaint { id } errors { code } }
}"""


@pytest.mark.parametrize("failing", ["first", "second"])
async def test_a_failed_mutation_undoes_only_itself(client: Client, world: World, session: AsyncSession,
                                                    published: Published, failing: str) -> None:
    """The first change of an operation runs without a savepoint (a failure rolls its whole transaction back),
    later ones in a savepoint: either way one mutation's failure keeps its sibling's change and only that."""
    household = await register(client, world)
    good = complaint_input(household["id"], idempotencyKey="k-good")
    bad = complaint_input(household["id"], description=" ", idempotencyKey="k-bad")
    before = await count(session, CaseEvent)
    out = await client.ok(FILE_TWICE, {"first": bad if failing == "first" else good,
                                       "second": bad if failing == "second" else good},
                          actor=world.actor("fac_a1"))
    kept = "second" if failing == "first" else "first"
    assert codes(out[failing]) == ["REQUIRED"] and out[failing]["complaint"] is None
    assert out[kept]["errors"] == [] and out[kept]["complaint"] is not None
    assert [db_id(out[kept]["complaint"]["id"])] == list(await session.scalars(select(Complaint.id)))
    assert list(await session.scalars(select(IdempotencyKey.key).where(IdempotencyKey.key.like("k-%")))) == ["k-good"]
    assert await count(session, CaseEvent) == before + 1
    assert await count(session, Assignment) == 1
    assert len(published.batches[-1]) == 1


STALE_TWICE = """
mutation($first: ComplaintTransitionInput!, $second: ComplaintTransitionInput!) {
  first: verifyComplaint(input: $first) { complaint { id version status } errors { code } }
  second: verifyComplaint(input: $second) { complaint { id version status } errors { code } }
}"""


async def test_two_stale_changes_in_one_operation_both_answer_with_the_current_case(
        client: Client, world: World) -> None:
    """A failed first change rolls the operation's transaction back, which expires what was read before it:
    the second change, stale as well, still answers with the case as it is now, not an internal error."""
    household = await register(client, world)
    c = await file(client, world, household["id"])
    stale = {"id": c["id"], "expectedVersion": c["version"] + 5}
    out = await client.ok(STALE_TWICE, {"first": stale, "second": stale}, actor=world.actor("sup_a"))
    for key in ("first", "second"):
        assert codes(out[key]) == ["STALE_VERSION"]
        assert out[key]["complaint"] == {"id": c["id"], "version": c["version"], "status": "NEW"}


# ----------------------------------------------------------------------------------------- status changes


async def test_verify_start_resolve_happy_path(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    c = await file(client, world, household["id"])
    c = await change(client, world, "verifyComplaint", c, reason="  data lengkap  ")
    assert c["status"] == "VERIFIED" and c["statusReason"] == "data lengkap"
    c = await change(client, world, "startComplaint", c, actor="fac_a1")
    assert c["status"] == "IN_PROGRESS"
    c = await change(client, world, "resolveComplaint", c, actor="fac_a1", decision="  kartu KIS diaktifkan  ")
    assert c["status"] == "RESOLVED" and c["decision"] == "kartu KIS diaktifkan"
    assert c["closedAt"] is not None and c["slaState"] == "CLOSED" and c["version"] == 4
    assert await event_kinds(session, c["id"]) == ["COMPLAINT_FILED", "COMPLAINT_VERIFIED", "COMPLAINT_STARTED",
                                                  "COMPLAINT_RESOLVED"]
    row = (await session.execute(select(Complaint.status, Complaint.version, Complaint.decision)
                                 .where(Complaint.id == db_id(c["id"])))).one()
    assert tuple(row) == ("RESOLVED", 4, "kartu KIS diaktifkan")
    last = (await session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == db_id(c["id"]))
                                  .order_by(CaseEvent.id.desc()))).first()
    assert last is not None and last.actor_id == world.staff["fac_a1"].id
    assert last.data["from"] == "IN_PROGRESS" and last.data["status"] == "RESOLVED" and last.data["version"] == 4


async def test_supervisor_may_start_and_resolve_any_case_in_area(client: Client, world: World) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], "VERIFIED")
    c = await change(client, world, "startComplaint", c, actor="sup_a")
    c = await change(client, world, "resolveComplaint", c, actor="manager", decision="selesai")
    assert c["status"] == "RESOLVED"


async def test_return_and_resubmit(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    c = await file(client, world, household["id"])
    before = await snapshot(session)
    missing = await mutate(client, world, "returnComplaint", {"id": c["id"], "expectedVersion": 1, "reason": "  "})
    assert [(e["code"], e["field"]) for e in missing["errors"]] == [("REASON_REQUIRED", "reason")]
    assert missing["complaint"] is None
    assert await snapshot(session) == before
    c = await change(client, world, "returnComplaint", c, reason="NIK kepala keluarga salah")
    assert c["status"] == "RETURNED" and c["statusReason"] == "NIK kepala keluarga salah"
    # only the facilitator who holds (or filed) the case resubmits it
    before = await snapshot(session)
    other = await mutate(client, world, "resubmitComplaint", {"id": c["id"], "expectedVersion": c["version"]},
                         actor="fac_a1b")
    assert codes(other) == ["FORBIDDEN"] and other["complaint"] is None
    assert await snapshot(session) == before
    blank = await mutate(client, world, "resubmitComplaint", {"id": c["id"], "expectedVersion": c["version"],
                                                              "description": " "}, actor="fac_a1")
    assert codes(blank) == ["REQUIRED"]
    assert await snapshot(session) == before
    c = await change(client, world, "resubmitComplaint", c, actor="fac_a1", description="Kartu KIS ditolak RS")
    assert c["status"] == "NEW" and c["statusReason"] is None and c["description"] == "Kartu KIS ditolak RS"
    assert await event_kinds(session, c["id"]) == ["COMPLAINT_FILED", "COMPLAINT_RETURNED", "COMPLAINT_RESUBMITTED"]
    # once resubmitted it goes through verification again
    c = await change(client, world, "verifyComplaint", c)
    assert c["status"] == "VERIFIED"


async def test_return_a_verified_complaint(client: Client, world: World) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], "VERIFIED")
    c = await change(client, world, "returnComplaint", c, reason="lampirkan foto KIS")
    assert c["status"] == "RETURNED"


async def test_reject_records_decision(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    c = await file(client, world, household["id"])
    before = await snapshot(session)
    missing = await mutate(client, world, "rejectComplaint", {"id": c["id"], "expectedVersion": 1})
    assert codes(missing) == ["REASON_REQUIRED"]
    assert await snapshot(session) == before
    c = await change(client, world, "rejectComplaint", c, reason="pengaduan ganda")
    assert c["status"] == "REJECTED" and c["decision"] == "pengaduan ganda"
    assert c["closedAt"] is not None and c["slaState"] == "CLOSED"
    assert await event_kinds(session, c["id"]) == ["COMPLAINT_FILED", "COMPLAINT_REJECTED"]


async def test_resolve_needs_a_decision(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], "IN_PROGRESS")
    before = await snapshot(session)
    out = await mutate(client, world, "resolveComplaint", {"id": c["id"], "expectedVersion": c["version"],
                                                           "decision": "   "})
    assert [(e["code"], e["field"]) for e in out["errors"]] == [("REASON_REQUIRED", "decision")]
    assert await snapshot(session) == before


@pytest.mark.parametrize("final", ["COMPLETED", "REJECTED", "REVOKED"])
async def test_resolve_waits_for_open_referrals(client: Client, world: World, session: AsyncSession,
                                                final: str) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], "VERIFIED")
    referral = await create_referral(client, world, c)

    async def blocked(complaint: dict[str, Any]) -> None:
        before = await snapshot(session)
        out = await mutate(client, world, "resolveComplaint", {"id": complaint["id"],
                                                               "expectedVersion": complaint["version"],
                                                               "decision": "selesai"})
        assert [(e["code"], e["field"]) for e in out["errors"]] == [("OPEN_REFERRALS", "id")]
        assert out["complaint"] is None
        assert await snapshot(session) == before

    await blocked(c)  # a DRAFT referral is open
    referral = await referral_step(client, world, "sendReferral", referral)
    c = await current(client, world, c["id"])
    assert c["status"] == "REFERRED"
    await blocked(c)  # SENT
    if final == "COMPLETED":
        referral = await referral_step(client, world, "acceptReferral", referral)
        await blocked(c)  # ACCEPTED
        referral = await referral_step(client, world, "completeReferral", referral, outcome="KIS aktif kembali")
    elif final == "REJECTED":
        referral = await referral_step(client, world, "rejectReferral", referral, reason="bukan peserta PBI")
    else:
        referral = await referral_step(client, world, "revokeReferral", referral, reason="salah program")
    assert referral["status"] == final
    c = await current(client, world, c["id"])
    c = await change(client, world, "resolveComplaint", c, decision="ditangani dinas")
    assert c["status"] == "RESOLVED"
    assert (await event_kinds(session, c["id"]))[-1] == "COMPLAINT_RESOLVED"


async def test_reject_a_referred_complaint_once_its_referrals_are_final(client: Client, world: World) -> None:
    """domain/complaints/service.py: `NEW | VERIFIED | IN_PROGRESS | REFERRED -> REJECTED` (an open complaint)."""
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], "VERIFIED")
    referral = await create_referral(client, world, c)
    referral = await referral_step(client, world, "sendReferral", referral)
    await referral_step(client, world, "rejectReferral", referral, reason="bukan peserta")
    c = await current(client, world, c["id"])
    assert c["status"] == "REFERRED"
    c = await change(client, world, "rejectComplaint", c, reason="tidak memenuhi syarat")
    assert c["status"] == "REJECTED"


async def test_reject_waits_for_open_referrals(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], "VERIFIED")
    referral = await create_referral(client, world, c)
    before = await snapshot(session)
    out = await mutate(client, world, "rejectComplaint", {"id": c["id"], "expectedVersion": c["version"],
                                                          "reason": "ganda"})
    assert codes(out) == ["OPEN_REFERRALS"]
    assert await snapshot(session) == before
    await referral_step(client, world, "revokeReferral", referral, reason="salah program")
    c = await change(client, world, "rejectComplaint", c, reason="ganda")
    assert c["status"] == "REJECTED"


async def test_resubmit_with_too_long_description(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], "RETURNED")
    before = await snapshot(session)
    out = await mutate(client, world, "resubmitComplaint", {"id": c["id"], "expectedVersion": c["version"],
                                                            "description": "x" * 4001}, actor="fac_a1")
    assert [(e["code"], e["field"]) for e in out["errors"]] == [("TOO_LONG", "description")]
    assert await snapshot(session) == before


@pytest.mark.parametrize("status", ["RESOLVED", "REJECTED"])
async def test_reopen_restarts_the_clock(client: Client, world: World, session: AsyncSession, status: str) -> None:
    household = await register(client, world)
    reported = ago(days=10)
    c = await file(client, world, household["id"], reportedAt=reported)  # HEALTH: 3 days, long breached
    assert c["slaState"] == "BREACHED"
    c = await change(client, world, "verifyComplaint", c) if status == "RESOLVED" else c
    c = await change(client, world, "resolveComplaint" if status == "RESOLVED" else "rejectComplaint", c,
                     **({"decision": "selesai"} if status == "RESOLVED" else {"reason": "ganda"}))
    assert c["status"] == status
    before = await snapshot(session)
    missing = await mutate(client, world, "reopenComplaint", {"id": c["id"], "expectedVersion": c["version"]})
    assert codes(missing) == ["REASON_REQUIRED"]
    facilitator = await mutate(client, world, "reopenComplaint", {"id": c["id"], "expectedVersion": c["version"],
                                                                  "reason": "belum selesai"}, actor="fac_a1")
    assert codes(facilitator) == ["FORBIDDEN"]
    assert await snapshot(session) == before
    start = dt.datetime.now(dt.UTC)
    c = await change(client, world, "reopenComplaint", c, reason="warga melapor lagi")
    assert c["status"] == "IN_PROGRESS" and c["statusReason"] == "warga melapor lagi"
    assert c["decision"] is None and c["closedAt"] is None
    assert when(c["slaDueAt"]) >= start + dt.timedelta(days=3) - dt.timedelta(seconds=5)
    assert c["slaState"] == "ON_TRACK"
    assert (await event_kinds(session, c["id"]))[-1] == "COMPLAINT_REOPENED"
    # and it can be closed again
    c = await change(client, world, "resolveComplaint", c, decision="selesai kedua kali")
    assert c["status"] == "RESOLVED"


FORBIDDEN_TRANSITIONS = [
    ("verifyComplaint", "RESOLVED", {}),
    ("verifyComplaint", "VERIFIED", {}),
    ("verifyComplaint", "RETURNED", {}),
    ("returnComplaint", "IN_PROGRESS", {"reason": "x"}),
    ("returnComplaint", "RETURNED", {"reason": "x"}),
    ("resubmitComplaint", "NEW", {}),
    ("rejectComplaint", "RESOLVED", {"reason": "x"}),
    ("rejectComplaint", "REJECTED", {"reason": "x"}),
    ("startComplaint", "NEW", {}),
    ("startComplaint", "IN_PROGRESS", {}),
    ("resolveComplaint", "NEW", {"decision": "x"}),
    ("resolveComplaint", "RETURNED", {"decision": "x"}),
    ("resolveComplaint", "REJECTED", {"decision": "x"}),
    ("reopenComplaint", "IN_PROGRESS", {"reason": "x"}),
    ("reopenComplaint", "NEW", {"reason": "x"}),
    ("reassignComplaint", "RESOLVED", {"assigneeId": "$fac_a1b", "reason": "x"}),
    ("reassignComplaint", "REJECTED", {"assigneeId": "$fac_a1b", "reason": "x"}),
]


@pytest.mark.parametrize(("name", "status", "extra"), FORBIDDEN_TRANSITIONS,
                         ids=[f"{n}-{s}" for n, s, _ in FORBIDDEN_TRANSITIONS])
async def test_forbidden_transition_changes_nothing(client: Client, world: World, session: AsyncSession, name: str,
                                                    status: str, extra: dict[str, Any]) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], status)
    extra = {k: staff_gid(world, v[1:]) if isinstance(v, str) and v.startswith("$") else v for k, v in extra.items()}
    before = await snapshot(session)
    out = await mutate(client, world, name, {"id": c["id"], "expectedVersion": c["version"]} | extra,
                       actor="fac_a1" if name == "resubmitComplaint" else "sup_a")
    assert [(e["code"], e["field"]) for e in out["errors"]] == [("INVALID_TRANSITION", "id")]
    assert out["complaint"] is None
    assert await snapshot(session) == before


STALE_CASES = [
    ("verifyComplaint", "NEW", {}, "sup_a"),
    ("returnComplaint", "NEW", {"reason": "x"}, "sup_a"),
    ("resubmitComplaint", "RETURNED", {}, "fac_a1"),
    ("rejectComplaint", "NEW", {"reason": "x"}, "sup_a"),
    ("startComplaint", "VERIFIED", {}, "sup_a"),
    ("resolveComplaint", "IN_PROGRESS", {"decision": "x"}, "sup_a"),
    ("reopenComplaint", "RESOLVED", {"reason": "x"}, "sup_a"),
    ("reassignComplaint", "NEW", {"assigneeId": "$officer_a", "reason": "x"}, "sup_a"),
]


@pytest.mark.parametrize(("name", "status", "extra", "actor"), STALE_CASES, ids=[c[0] for c in STALE_CASES])
async def test_stale_version_changes_nothing_and_returns_current(client: Client, world: World,
                                                                 session: AsyncSession, name: str, status: str,
                                                                 extra: dict[str, Any], actor: str) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], status)
    if c["version"] == 1:  # someone else changes it after we read it
        c = await change(client, world, "reassignComplaint", c, assigneeId=staff_gid(world, "fac_a1b"),
                         reason="pemerataan beban")
    extra = {k: staff_gid(world, v[1:]) if isinstance(v, str) and v.startswith("$") else v for k, v in extra.items()}
    before = await snapshot(session)
    out = await mutate(client, world, name, {"id": c["id"], "expectedVersion": c["version"] - 1} | extra,
                       actor=actor)
    assert [(e["code"], e["field"]) for e in out["errors"]] == [("STALE_VERSION", "expectedVersion")]
    assert out["complaint"] is not None
    assert out["complaint"]["id"] == c["id"]
    assert out["complaint"]["version"] == c["version"] and out["complaint"]["status"] == c["status"]
    assert await snapshot(session) == before


ROLE_CASES = [
    # (mutation, status, extra, actor, code)
    ("verifyComplaint", "NEW", {}, "fac_a1", "FORBIDDEN"),
    ("verifyComplaint", "NEW", {}, "officer_a", "FORBIDDEN"),
    ("verifyComplaint", "NEW", {}, "partner", "FORBIDDEN"),
    ("verifyComplaint", "NEW", {}, None, "UNAUTHENTICATED"),
    ("verifyComplaint", "NEW", {}, "sup_b", "NOT_FOUND"),
    ("returnComplaint", "NEW", {"reason": "x"}, "fac_a1", "FORBIDDEN"),
    ("returnComplaint", "NEW", {"reason": "x"}, "sup_b", "NOT_FOUND"),
    ("rejectComplaint", "NEW", {"reason": "x"}, "fac_a1", "FORBIDDEN"),
    ("rejectComplaint", "NEW", {"reason": "x"}, "sup_b", "NOT_FOUND"),
    ("startComplaint", "VERIFIED", {}, "fac_a1b", "FORBIDDEN"),
    ("startComplaint", "VERIFIED", {}, "officer_a", "FORBIDDEN"),
    ("startComplaint", "VERIFIED", {}, "fac_a2", "NOT_FOUND"),
    ("startComplaint", "VERIFIED", {}, "sup_b", "NOT_FOUND"),
    ("startComplaint", "VERIFIED", {}, "partner", "FORBIDDEN"),
    ("resolveComplaint", "IN_PROGRESS", {"decision": "x"}, "fac_a1b", "FORBIDDEN"),
    ("resolveComplaint", "IN_PROGRESS", {"decision": "x"}, "sup_b", "NOT_FOUND"),
    ("reopenComplaint", "RESOLVED", {"reason": "x"}, "fac_a1", "FORBIDDEN"),
    ("reopenComplaint", "RESOLVED", {"reason": "x"}, "sup_b", "NOT_FOUND"),
    ("resubmitComplaint", "RETURNED", {}, "fac_a1b", "FORBIDDEN"),
    ("resubmitComplaint", "RETURNED", {}, "fac_b1", "NOT_FOUND"),
    ("resubmitComplaint", "RETURNED", {}, "partner", "FORBIDDEN"),
    ("reassignComplaint", "NEW", {"assigneeId": "$fac_a1b", "reason": "x"}, "fac_a1", "FORBIDDEN"),
    ("reassignComplaint", "NEW", {"assigneeId": "$fac_a1b", "reason": "x"}, "officer_a", "FORBIDDEN"),
    ("reassignComplaint", "NEW", {"assigneeId": "$fac_b1", "reason": "x"}, "sup_b", "NOT_FOUND"),
]


@pytest.mark.parametrize(("name", "status", "extra", "actor", "code"), ROLE_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in ROLE_CASES])
async def test_role_and_scope_checks(client: Client, world: World, session: AsyncSession, name: str, status: str,
                                     extra: dict[str, Any], actor: str | None, code: str) -> None:
    household = await register(client, world)
    c = await complaint_in(client, world, household["id"], status)
    extra = {k: staff_gid(world, v[1:]) if isinstance(v, str) and v.startswith("$") else v for k, v in extra.items()}
    before = await snapshot(session)
    out = await mutate(client, world, name, {"id": c["id"], "expectedVersion": c["version"]} | extra, actor=actor)
    assert codes(out) == [code]
    assert out["complaint"] is None
    assert await snapshot(session) == before


async def test_malformed_and_unknown_complaint_ids(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    await file(client, world, household["id"])
    before = await snapshot(session)
    for gid, code in [("bm9wZQ", "INVALID_ID"), (str(to_global_id("Household", 1)), "INVALID_ID"),
                      (str(to_global_id("Complaint", 987654)), "NOT_FOUND")]:
        out = await mutate(client, world, "verifyComplaint", {"id": gid, "expectedVersion": 1})
        assert [(e["code"], e["field"]) for e in out["errors"]] == [(code, "id")]
    out = await mutate(client, world, "reassignComplaint", {"id": "bm9wZQ", "expectedVersion": 1,
                                                            "assigneeId": staff_gid(world, "fac_a1b"),
                                                            "reason": "x"})
    assert codes(out) == ["INVALID_ID"]
    assert await snapshot(session) == before


async def test_out_of_area_complaint_is_invisible(client: Client, world: World) -> None:
    household = await register(client, world)
    c = await file(client, world, household["id"])
    assert (await client.ok(NODE, {"id": c["id"]}, actor=world.actor("sup_b")))["node"] is None
    assert (await client.ok(NODE, {"id": c["id"]}, actor=world.actor("fac_a2")))["node"] is None
    seen = await client.ok(NODE, {"id": c["id"]}, actor=world.actor("sup_a"))
    assert seen["node"] == {"id": c["id"], "status": "NEW", "version": 1}


# --------------------------------------------------------------------------------------------- reassigning


async def test_reassign_records_history_and_event(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    c = await file(client, world, household["id"])
    c = await change(client, world, "reassignComplaint", c, assigneeId=staff_gid(world, "fac_a1b"),
                     reason="fac_a1 cuti")
    assert c["assignee"]["username"] == "fac_a1b" and c["status"] == "NEW"
    c = await change(client, world, "reassignComplaint", c, actor="manager",
                     assigneeId=staff_gid(world, "officer_a"), reason="butuh Puskesos")
    history = [(a["fromStaff"] and a["fromStaff"]["username"], a["toStaff"]["username"], a["by"]["username"],
                a["reason"]) for a in c["assignmentHistory"]]
    assert history == [(None, "fac_a1", "fac_a1", "filed"), ("fac_a1", "fac_a1b", "sup_a", "fac_a1 cuti"),
                       ("fac_a1b", "officer_a", "manager", "butuh Puskesos")]
    rows = list(await session.scalars(select(Assignment).where(Assignment.complaint_id == db_id(c["id"]))
                                      .order_by(Assignment.id)))
    assert [(r.from_staff_id, r.to_staff_id, r.by_staff_id) for r in rows][1:] == [
        (world.staff["fac_a1"].id, world.staff["fac_a1b"].id, world.staff["sup_a"].id),
        (world.staff["fac_a1b"].id, world.staff["officer_a"].id, world.staff["manager"].id)]
    assert await event_kinds(session, c["id"]) == ["COMPLAINT_FILED", "COMPLAINT_REASSIGNED", "COMPLAINT_REASSIGNED"]
    event = (await session.scalars(select(CaseEvent).where(CaseEvent.kind == "COMPLAINT_REASSIGNED")
                                   .order_by(CaseEvent.id))).first()
    assert event is not None
    assert event.data["assigneeId"] == world.staff["fac_a1b"].id
    assert event.data["previousAssigneeId"] == world.staff["fac_a1"].id
    # the new assignee may now start it, the old one may not
    c = await change(client, world, "verifyComplaint", c)
    old = await mutate(client, world, "startComplaint", {"id": c["id"], "expectedVersion": c["version"]},
                       actor="fac_a1")
    assert codes(old) == ["FORBIDDEN"]
    c = await change(client, world, "startComplaint", c, actor="officer_a")
    assert c["status"] == "IN_PROGRESS"


async def test_reassign_an_unassigned_complaint(client: Client, world: World) -> None:
    household = await register(client, world)
    c = await file(client, world, household["id"], actor="sup_a")
    c = await change(client, world, "reassignComplaint", c, assigneeId=staff_gid(world, "fac_a1"), reason="baru")
    assert [(a["fromStaff"], a["toStaff"]["username"]) for a in c["assignmentHistory"]] == [(None, "fac_a1")]


@pytest.mark.parametrize(("patch", "code", "field"), [
    ({"reason": "  "}, "REASON_REQUIRED", "reason"),
    ({"assigneeId": "$fac_a1"}, "ALREADY_ASSIGNED", "assigneeId"),
    ({"assigneeId": "$fac_a2"}, "ASSIGNEE_OUT_OF_AREA", "assigneeId"),
    ({"assigneeId": "$fac_b1"}, "NOT_FOUND", "assigneeId"),
    ({"assigneeId": "$sup_a"}, "NOT_ASSIGNABLE", "assigneeId"),
    ({"assigneeId": "$fac_a1b", "inactive": True}, "NOT_ASSIGNABLE", "assigneeId"),
    ({"assigneeId": "bm9wZQ"}, "INVALID_ID", "assigneeId"),
    ({"assigneeId": "$unknown"}, "NOT_FOUND", "assigneeId"),
], ids=["no-reason", "already-assigned", "out-of-area", "outside-actor-area", "supervisor", "inactive",
        "malformed", "unknown"])
async def test_reassign_failures_change_nothing(client: Client, world: World, session: AsyncSession,
                                                patch: dict[str, Any], code: str, field: str) -> None:
    household = await register(client, world)
    c = await file(client, world, household["id"])
    if patch.pop("inactive", False):
        world.staff["fac_a1b"].active = False
        await session.commit()
    values = {f"${name}": staff_gid(world, name) for name in world.staff} | {
        "$unknown": str(to_global_id("Staff", 987654))}
    data = {"id": c["id"], "expectedVersion": 1, "assigneeId": staff_gid(world, "fac_a1b"), "reason": "cuti"} | {
        k: values.get(v, v) for k, v in patch.items()}
    before = await snapshot(session)
    out = await mutate(client, world, "reassignComplaint", data)
    assert [(e["code"], e["field"]) for e in out["errors"]] == [(code, field)]
    assert out["complaint"] is None
    assert await snapshot(session) == before


async def test_bulk_reassign_moves_all(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    cs = [await file(client, world, household["id"]) for _ in range(3)]
    cs[1] = await change(client, world, "verifyComplaint", cs[1])
    # listed out of id order: the payload keeps input order
    items = [cs[2], cs[0], cs[1]]
    out = await client.ok(BULK, {"input": {
        "complaints": [{"id": c["id"], "expectedVersion": c["version"]} for c in items],
        "assigneeId": staff_gid(world, "fac_a1b"), "reason": "fac_a1 pindah tugas"}}, actor=world.actor("sup_a"))
    payload = out["bulkReassignComplaints"]
    assert payload["errors"] == []
    assert [c["id"] for c in payload["complaints"]] == [c["id"] for c in items]
    assert [c["version"] for c in payload["complaints"]] == [c["version"] + 1 for c in items]
    assert {c["assignee"]["username"] for c in payload["complaints"]} == {"fac_a1b"}
    for c in payload["complaints"]:
        assert [(a["fromStaff"]["username"], a["toStaff"]["username"], a["by"]["username"], a["reason"])
                for a in c["assignmentHistory"][1:]] == [("fac_a1", "fac_a1b", "sup_a", "fac_a1 pindah tugas")]
    assert await count(session, CaseEvent, CaseEvent.kind == "COMPLAINT_REASSIGNED") == 3
    assert await count(session, Complaint, Complaint.assignee_id == world.staff["fac_a1b"].id) == 3


@pytest.mark.parametrize("failure", ["stale", "already-assigned", "closed", "out-of-area", "unknown"])
async def test_bulk_reassign_is_all_or_nothing(client: Client, world: World, session: AsyncSession,
                                               failure: str) -> None:
    household = await register(client, world)
    hh_a2 = await register(client, world, actor="fac_a2", region=DESA_A2, n=2)
    cs = [await file(client, world, household["id"]) for _ in range(3)]
    items = [{"id": c["id"], "expectedVersion": c["version"]} for c in cs]
    expected_field = "complaints.1.expectedVersion"
    expected_code = "STALE_VERSION"
    if failure == "stale":
        cs[1] = await change(client, world, "verifyComplaint", cs[1])  # items[1] still carries version 1
    elif failure == "already-assigned":
        cs[1] = await change(client, world, "reassignComplaint", cs[1], assigneeId=staff_gid(world, "fac_a1b"),
                             reason="x")
        items[1]["expectedVersion"] = cs[1]["version"]
        expected_field, expected_code = "complaints.1.assigneeId", "ALREADY_ASSIGNED"
    elif failure == "closed":
        cs[1] = await change(client, world, "rejectComplaint", cs[1], reason="ganda")
        items[1]["expectedVersion"] = cs[1]["version"]
        expected_field, expected_code = "complaints.1.id", "INVALID_TRANSITION"
    elif failure == "out-of-area":  # fac_a1b does not cover DESA_A2
        other = await file(client, world, hh_a2["id"], actor="fac_a2")
        items[1] = {"id": other["id"], "expectedVersion": 1}
        expected_field, expected_code = "complaints.1.assigneeId", "ASSIGNEE_OUT_OF_AREA"
    else:
        items[1] = {"id": str(to_global_id("Complaint", 987654)), "expectedVersion": 1}
        expected_field, expected_code = "complaints.1.id", "NOT_FOUND"
    before = await snapshot(session)
    out = await client.ok(BULK, {"input": {"complaints": items, "assigneeId": staff_gid(world, "fac_a1b"),
                                           "reason": "pemerataan"}}, actor=world.actor("sup_a"))
    payload = out["bulkReassignComplaints"]
    assert payload["complaints"] == []
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(expected_code, expected_field)]
    assert await snapshot(session) == before


async def test_bulk_reassign_reports_every_failing_item(client: Client, world: World, session: AsyncSession) -> None:
    household = await register(client, world)
    cs = [await file(client, world, household["id"]) for _ in range(4)]
    for i in (1, 3):
        await change(client, world, "verifyComplaint", cs[i])
    before = await snapshot(session)
    out = await client.ok(BULK, {"input": {"complaints": [{"id": c["id"], "expectedVersion": 1} for c in cs],
                                           "assigneeId": staff_gid(world, "fac_a1b"), "reason": "x"}},
                          actor=world.actor("sup_a"))
    errors = out["bulkReassignComplaints"]["errors"]
    assert sorted((e["code"], e["field"]) for e in errors) == [
        ("STALE_VERSION", "complaints.1.expectedVersion"), ("STALE_VERSION", "complaints.3.expectedVersion")]
    assert await snapshot(session) == before


@pytest.mark.parametrize(("case", "code"), [
    ("empty", "INVALID_COUNT"), ("duplicate", "DUPLICATE"), ("no-reason", "REASON_REQUIRED"),
    ("facilitator", "FORBIDDEN"), ("malformed-id", "INVALID_ID"), ("sup_b", "NOT_FOUND"),
    ("too-many", "INVALID_COUNT"),
])
async def test_bulk_reassign_input_failures(client: Client, world: World, session: AsyncSession, case: str,
                                            code: str) -> None:
    household = await register(client, world)
    cs = [await file(client, world, household["id"]) for _ in range(2)]
    items = [{"id": c["id"], "expectedVersion": 1} for c in cs]
    data: dict[str, Any] = {"complaints": items, "assigneeId": staff_gid(world, "fac_a1b"), "reason": "x"}
    actor = "sup_a"
    if case == "empty":
        data["complaints"] = []
    elif case == "duplicate":
        data["complaints"] = [items[0], items[0]]
    elif case == "no-reason":
        data["reason"] = " "
    elif case == "facilitator":
        actor = "fac_a1"
    elif case == "malformed-id":
        data["complaints"] = [items[0], {"id": "bm9wZQ", "expectedVersion": 1}]
    elif case == "too-many":
        data["complaints"] = items + [{"id": to_global_id("Complaint", 10_000 + i), "expectedVersion": 1}
                                      for i in range(499)]
    else:
        actor = "sup_b"
        data["assigneeId"] = staff_gid(world, "fac_b1")
    before = await snapshot(session)
    out = await client.ok(BULK, {"input": data}, actor=world.actor(actor))
    payload = out["bulkReassignComplaints"]
    assert code in codes(payload), payload["errors"]
    assert payload["complaints"] == []
    assert await snapshot(session) == before


# ------------------------------------------------------------------------------------------- complaints query


async def _mixed_cases(client: Client, world: World) -> dict[str, dict[str, Any]]:
    """Complaints in kecamatan A (several states, sectors, assignees) and one in kecamatan B."""
    a1 = await register(client, world, n=1)
    a2 = await register(client, world, actor="fac_a2", region=DESA_A2, n=2)
    b1 = await register(client, world, actor="fac_b1", region=DESA_B1, n=3)
    cases = {
        "fresh_health": await file(client, world, a1["id"]),
        "at_risk": await file(client, world, a1["id"], programId=program_gid(world, "PBI-JK"),
                              reportedAt=ago(days=6)),
        "breached_edu": await file(client, world, a1["id"], sector="EDUCATION", reportedAt=ago(days=20)),
        "a1b_housing": await file(client, world, a1["id"], actor="fac_a1b", sector="HOUSING"),
        "a2_pkh": await file(client, world, a2["id"], actor="fac_a2", sector="PKH"),
        "b1": await file(client, world, b1["id"], actor="fac_b1", reportedAt=ago(days=10)),
    }
    cases["verified"] = await change(client, world, "verifyComplaint", await file(client, world, a1["id"],
                                                                                  sector="FOOD"))
    cases["rejected"] = await change(client, world, "rejectComplaint", await file(client, world, a1["id"],
                                                                                  reportedAt=ago(days=10)),
                                     reason="ganda")
    return cases


async def _ids(client: Client, world: World, actor: str, filter: dict[str, Any] | None) -> set[str]:
    out = await client.ok(COMPLAINTS, {"filter": filter, "first": 100}, actor=world.actor(actor))
    conn = out["complaints"]
    assert conn["totalCount"] == len(conn["edges"])
    return {e["node"]["id"] for e in conn["edges"]}


async def test_complaints_filters(client: Client, world: World) -> None:
    cases = await _mixed_cases(client, world)
    ids = {name: c["id"] for name, c in cases.items()}

    def named(*names: str) -> set[str]:
        return {ids[n] for n in names}

    in_a = named("fresh_health", "at_risk", "breached_edu", "a1b_housing", "a2_pkh", "verified", "rejected")
    assert await _ids(client, world, "sup_a", None) == in_a
    assert await _ids(client, world, "sup_b", None) == named("b1")
    assert await _ids(client, world, "manager", None) == in_a | named("b1")
    assert await _ids(client, world, "fac_a1", None) == in_a - named("a2_pkh")
    assert await _ids(client, world, "sup_a", {"status": ["VERIFIED", "REJECTED"]}) == named("verified", "rejected")
    assert await _ids(client, world, "sup_a", {"sector": ["EDUCATION", "PKH"]}) == named("breached_edu", "a2_pkh")
    assert await _ids(client, world, "sup_a", {"assigneeId": staff_gid(world, "fac_a1b")}) == named("a1b_housing")
    assert await _ids(client, world, "sup_a", {"assigneeId": staff_gid(world, "fac_a2")}) == named("a2_pkh")
    assert await _ids(client, world, "sup_a", {"regionCode": DESA_A2}) == named("a2_pkh")
    assert await _ids(client, world, "sup_a", {"status": ["NEW"], "sector": ["HEALTH"],
                                               "assigneeId": staff_gid(world, "fac_a1")}) == named(
        "fresh_health", "at_risk")
    # kecamatan B's supervisor never sees kecamatan A, whatever the filter
    assert await _ids(client, world, "sup_b", {"regionCode": KEC_A}) == set()
    assert await _ids(client, world, "sup_b", {"assigneeId": staff_gid(world, "fac_a1")}) == set()
    assert await _ids(client, world, "sup_b", {"sector": ["HEALTH"], "status": ["NEW"]}) == named("b1")


async def test_complaints_filter_by_sla_state(client: Client, world: World) -> None:
    cases = await _mixed_cases(client, world)
    ids = {name: c["id"] for name, c in cases.items()}

    def named(*names: str) -> set[str]:
        return {ids[n] for n in names}

    assert await _ids(client, world, "sup_a", {"slaState": ["AT_RISK"]}) == named("at_risk")
    assert await _ids(client, world, "sup_a", {"slaState": ["BREACHED"]}) == named("breached_edu")
    assert await _ids(client, world, "sup_a", {"slaState": ["CLOSED"]}) == named("rejected")
    assert await _ids(client, world, "sup_a", {"slaState": ["ON_TRACK"]}) == named(
        "fresh_health", "a1b_housing", "a2_pkh", "verified")
    assert await _ids(client, world, "sup_a", {"slaState": ["AT_RISK", "BREACHED"], "sector": ["HEALTH"]}) == \
        named("at_risk")
    assert await _ids(client, world, "sup_b", {"slaState": ["AT_RISK", "BREACHED", "ON_TRACK", "CLOSED"]}) == \
        named("b1")
    # the SLA state shown on each complaint agrees with the filter
    out = await client.ok(COMPLAINTS, {"first": 100}, actor=world.actor("sup_a"))
    states = {e["node"]["id"]: e["node"]["slaState"] for e in out["complaints"]["edges"]}
    assert states[ids["at_risk"]] == "AT_RISK" and states[ids["breached_edu"]] == "BREACHED"
    assert states[ids["rejected"]] == "CLOSED" and states[ids["fresh_health"]] == "ON_TRACK"


@pytest.mark.parametrize("order", [None, "OLDEST", "UPDATED", "SLA_DUE"])
async def test_complaints_keyset_paging_visits_every_row_once(client: Client, world: World, order: str | None) -> None:
    a1 = await register(client, world, n=1)
    b1 = await register(client, world, actor="fac_b1", region=DESA_B1, n=2)
    same_time = ago(days=1)
    filed = []
    for i in range(7):
        # pairs share a report time and sector, so SLA_DUE has ties that only the id can break
        filed.append(await file(client, world, a1["id"], reportedAt=same_time if i % 2 else ago(hours=i + 1)))
    await file(client, world, b1["id"], actor="fac_b1")
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        out = await client.ok(COMPLAINTS, {"first": 3, "after": after, "orderBy": order}, actor=world.actor("sup_a"))
        conn = out["complaints"]
        pages += 1
        assert conn["totalCount"] == 7
        assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
        edges = conn["edges"]
        assert conn["pageInfo"]["startCursor"] == edges[0]["cursor"]
        assert conn["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        seen += [e["node"]["id"] for e in edges]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        assert len(edges) == 3
        after = conn["pageInfo"]["endCursor"]
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == {c["id"] for c in filed}
    if order is None:
        assert seen == [c["id"] for c in reversed(filed)]
    elif order == "OLDEST":
        assert seen == [c["id"] for c in filed]
    elif order == "SLA_DUE":
        due = {c["id"]: (when(c["slaDueAt"]), db_id(c["id"])) for c in filed}
        assert seen == sorted(seen, key=lambda gid: due[gid])


async def test_complaints_paging_exact_multiple_has_no_empty_next_page(client: Client, world: World) -> None:
    household = await register(client, world)
    for _ in range(4):
        await file(client, world, household["id"])
    first = await client.ok(COMPLAINTS, {"first": 2}, actor=world.actor("sup_a"))
    assert first["complaints"]["pageInfo"]["hasNextPage"] is True
    second = await client.ok(COMPLAINTS, {"first": 2, "after": first["complaints"]["pageInfo"]["endCursor"]},
                             actor=world.actor("sup_a"))
    assert len(second["complaints"]["edges"]) == 2
    assert second["complaints"]["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize("size", [0, -1, 1001, 5000])
async def test_complaints_page_size_out_of_range(client: Client, world: World, size: int) -> None:
    out = await client.execute(COMPLAINTS, {"first": size}, actor=world.actor("sup_a"))
    assert out["data"] is None
    assert [e["extensions"]["code"] for e in out["errors"]] == ["INVALID_PAGE_SIZE"]


async def test_complaints_rejects_foreign_cursors(client: Client, world: World) -> None:
    household = await register(client, world)
    for _ in range(2):
        await file(client, world, household["id"])
    newest = await client.ok(COMPLAINTS, {"first": 1}, actor=world.actor("sup_a"))
    cursor = newest["complaints"]["pageInfo"]["endCursor"]
    for after, order in [(cursor, "OLDEST"), ("not-a-cursor", None)]:
        out = await client.execute(COMPLAINTS, {"first": 1, "after": after, "orderBy": order},
                                   actor=world.actor("sup_a"))
        assert [e["extensions"]["code"] for e in out["errors"]] == ["INVALID_CURSOR"]


async def test_complaints_requires_login(client: Client, world: World) -> None:
    out = await client.execute(COMPLAINTS, {"first": 5}, actor=None)
    assert [e["extensions"]["code"] for e in out["errors"]] == ["UNAUTHENTICATED"]


# ------------------------------------------------------------------------------------------------- workload


async def test_workload_per_facilitator(client: Client, world: World) -> None:
    a1 = await register(client, world, n=1)
    b1 = await register(client, world, actor="fac_b1", region=DESA_B1, n=2)
    pbi = program_gid(world, "PBI-JK")  # 7 days: at risk under 1.75 days left
    await file(client, world, a1["id"], programId=pbi)                                   # on track
    await file(client, world, a1["id"], programId=pbi, reportedAt=ago(days=4))          # 3 days left: on track
    await file(client, world, a1["id"], programId=pbi, reportedAt=ago(days=6))          # at risk
    await file(client, world, a1["id"], programId=pbi, reportedAt=ago(days=10))         # breached
    closed = await file(client, world, a1["id"], programId=pbi, reportedAt=ago(days=10))
    await change(client, world, "rejectComplaint", closed, reason="ganda")               # closed: not open
    await file(client, world, a1["id"], actor="fac_a1b", programId=pbi, reportedAt=ago(days=6, hours=12))  # at risk
    await file(client, world, a1["id"], actor="sup_a", reportedAt=ago(days=10))          # nobody holds it
    await file(client, world, b1["id"], actor="fac_b1", reportedAt=ago(days=10))         # kecamatan B

    out = await client.ok(WORKLOAD, {}, actor=world.actor("sup_a"))
    rows = {r["staff"]["username"]: r for r in out["workload"]}
    assert set(rows) == {"fac_a1", "fac_a1b", "fac_a2", "officer_a"}
    assert [r["staff"]["username"] for r in out["workload"]][:2] == ["fac_a1", "fac_a1b"]  # busiest first
    counts = {name: (r["open"], r["atRisk"], r["breached"]) for name, r in rows.items()}
    assert counts == {"fac_a1": (4, 1, 1), "fac_a1b": (1, 1, 0), "fac_a2": (0, 0, 0), "officer_a": (0, 0, 0)}
    assert rows["fac_a1"]["newToday"] == 5 and rows["fac_a1b"]["newToday"] == 1 and rows["fac_a2"]["newToday"] == 0
    assert rows["fac_a1"]["oldestOpenAt"] is not None and rows["fac_a2"]["oldestOpenAt"] is None

    out = await client.ok(WORKLOAD, {}, actor=world.actor("sup_b"))
    assert {r["staff"]["username"]: (r["open"], r["breached"]) for r in out["workload"]} == {"fac_b1": (1, 1)}
    out = await client.ok(WORKLOAD, {"regionCode": DESA_A2}, actor=world.actor("sup_a"))
    assert [r["staff"]["username"] for r in out["workload"]] == ["fac_a2"]


async def test_workload_is_for_supervisors_in_their_area(client: Client, world: World) -> None:
    out = await client.execute(WORKLOAD, {}, actor=world.actor("fac_a1"))
    assert [e["extensions"]["code"] for e in out["errors"]] == ["FORBIDDEN"]
    out = await client.execute(WORKLOAD, {"regionCode": KEC_B}, actor=world.actor("sup_a"))
    assert [e["extensions"]["code"] for e in out["errors"]] == ["NOT_FOUND"]
