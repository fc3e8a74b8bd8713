"""createReferral, sendReferral, acceptReferral, rejectReferral, revokeReferral, completeReferral against the
real database: every success with the case events it writes, every failure with proof that it wrote nothing
(no row changed, no case event, nothing published), and the whole life of a case from intake to resolution."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.complaints.models import Complaint
from domain.events import CaseEvent
from domain.referrals.models import Referral
from schema.relay import pk_of, to_global_id
from tests.conftest import DESA_A1, DESA_B1, KEC_A, KEC_B, Client, Published, World, nik

# --- GraphQL documents ------------------------------------------------------------------------------------

REGISTER = """
mutation($input: RegisterHouseholdInput!) {
  registerHousehold(input: $input) { household { id members { id } } errors { field code } }
}"""

COMPLAINT = "id status version decision"

FILE = f"""
mutation($input: FileComplaintInput!) {{
  fileComplaint(input: $input) {{ complaint {{ {COMPLAINT} assignee {{ username }} }} errors {{ field code }} }}
}}"""


def _complaint_mutation(name: str, input_type: str) -> str:
    return f"""
mutation($input: {input_type}!) {{
  {name}(input: $input) {{ complaint {{ {COMPLAINT} }} errors {{ field code message }} }}
}}"""


COMPLAINT_MUTATIONS = {
    "verifyComplaint": _complaint_mutation("verifyComplaint", "ComplaintTransitionInput"),
    "startComplaint": _complaint_mutation("startComplaint", "ComplaintTransitionInput"),
    "returnComplaint": _complaint_mutation("returnComplaint", "ComplaintTransitionInput"),
    "rejectComplaint": _complaint_mutation("rejectComplaint", "ComplaintTransitionInput"),
    "resolveComplaint": _complaint_mutation("resolveComplaint", "ResolveComplaintInput"),
}

REFERRAL = """id status version receivingAgency note consentGiven consentOverrideReason rejectionReason
  revocationReason outcome sentAt respondedAt completedAt createdAt updatedAt
  program { code } createdBy { username } complaint { id status version }"""


def _referral_mutation(name: str, input_type: str) -> str:
    return f"""
mutation($input: {input_type}!) {{
  {name}(input: $input) {{ referral {{ {REFERRAL} }} errors {{ field code message }} }}
}}"""


MUTATIONS = {
    "createReferral": _referral_mutation("createReferral", "CreateReferralInput"),
    "sendReferral": _referral_mutation("sendReferral", "ReferralTransitionInput"),
    "acceptReferral": _referral_mutation("acceptReferral", "ReferralTransitionInput"),
    "rejectReferral": _referral_mutation("rejectReferral", "ReferralTransitionInput"),
    "revokeReferral": _referral_mutation("revokeReferral", "ReferralTransitionInput"),
    "completeReferral": _referral_mutation("completeReferral", "CompleteReferralInput"),
}

TRANSITIONS = ["sendReferral", "acceptReferral", "rejectReferral", "revokeReferral", "completeReferral"]

# the state each transition starts from in the parametrised failure tests, and the text it needs
START_STATE = {"sendReferral": "DRAFT", "acceptReferral": "SENT", "rejectReferral": "SENT",
               "revokeReferral": "SENT", "completeReferral": "ACCEPTED"}


def transition_input(op: str, rid: str, version: int) -> dict[str, Any]:
    data: dict[str, Any] = {"id": rid, "expectedVersion": version}
    if op == "completeReferral":
        data["outcome"] = "Terdaftar sebagai peserta PBI-JK"
    elif op in {"rejectReferral", "revokeReferral"}:
        data["reason"] = "Data kepesertaan tidak lengkap"
    return data


# --- helpers ----------------------------------------------------------------------------------------------

_serials = itertools.count(1)
HEAD_BIRTH = dt.date(1979, 8, 17)


async def register(client: Client, world: World, *, region: str = DESA_A1) -> str:
    """A household with one head, registered by the facilitator of its village; returns its global id."""
    serial = next(_serials)
    kecamatan = KEC_A if region.startswith(KEC_A) else KEC_B
    digits = "".join(kecamatan.split("."))
    data = {
        "regionCode": region, "address": f"Jl. Veteran No. {serial}", "dtksStatus": "REGISTERED",
        "familyCards": [f"{digits}1708790{serial:03d}"],
        "members": [{"name": "Hasan Lubis", "sex": "MALE", "birthDate": HEAD_BIRTH.isoformat(), "relation": "HEAD",
                     "nik": nik(kecamatan, HEAD_BIRTH, female=False, serial=serial)}],
    }
    actor = "fac_a1" if region == DESA_A1 else "fac_b1"
    out = await client.ok(REGISTER, {"input": data}, actor=world.actor(actor))
    assert out["registerHousehold"]["errors"] == [], out
    hid: str = out["registerHousehold"]["household"]["id"]
    return hid


async def complaint_op(client: Client, op: str, actor: Actor, **data: Any) -> dict[str, Any]:
    out = await client.ok(COMPLAINT_MUTATIONS[op], {"input": data}, actor=actor)
    payload: dict[str, Any] = out[op]
    return payload


@dataclass
class Case:
    """A complaint and who handles it: the assignee facilitator and the kecamatan supervisor."""

    complaint_id: str
    version: int
    facilitator: Actor
    supervisor: Actor


async def open_case(client: Client, world: World, *, status: str = "VERIFIED", region: str = DESA_A1) -> Case:
    """A complaint filed by the village facilitator (who holds it), brought to ``status``."""
    fac = world.actor("fac_a1" if region == DESA_A1 else "fac_b1")
    sup = world.actor("sup_a" if region == DESA_A1 else "sup_b")
    hid = await register(client, world, region=region)
    out = await client.ok(FILE, {"input": {"householdId": hid, "sector": "HEALTH", "description": "Belum punya KIS",
                                           "programId": to_global_id("Program", world.programs["PBI-JK"].id)}},
                          actor=fac)
    filed = out["fileComplaint"]
    assert filed["errors"] == [] and filed["complaint"]["assignee"]["username"] == fac.username, filed
    case = Case(complaint_id=filed["complaint"]["id"], version=1, facilitator=fac, supervisor=sup)
    steps: dict[str, list[tuple[str, Actor, dict[str, Any]]]] = {
        "NEW": [],
        "VERIFIED": [("verifyComplaint", sup, {})],
        "IN_PROGRESS": [("verifyComplaint", sup, {}), ("startComplaint", fac, {})],
        "RETURNED": [("returnComplaint", sup, {"reason": "Lengkapi alamat"})],
        "REJECTED": [("rejectComplaint", sup, {"reason": "Bukan keluhan"})],
        "RESOLVED": [("verifyComplaint", sup, {}), ("resolveComplaint", fac, {"decision": "Sudah dibantu"})],
    }
    for op, actor, extra in steps[status]:
        payload = await complaint_op(client, op, actor, id=case.complaint_id, expectedVersion=case.version, **extra)
        assert payload["errors"] == [], payload
        case.version = payload["complaint"]["version"]
    return case


async def referral_op(client: Client, op: str, actor: Actor | None, **data: Any) -> dict[str, Any]:
    out = await client.ok(MUTATIONS[op], {"input": data}, actor=actor)
    payload: dict[str, Any] = out[op]
    return payload


async def create(client: Client, world: World, case: Case, *, actor: Actor | None = None, program: str = "PBI-JK",
                 consent: bool = True, **extra: Any) -> dict[str, Any]:
    return await referral_op(client, "createReferral", actor or case.facilitator, complaintId=case.complaint_id,
                             programId=to_global_id("Program", world.programs[program].id), consentGiven=consent,
                             **extra)


async def referral_in(client: Client, world: World, case: Case, status: str, *, program: str = "PBI-JK",
                      **create_args: Any) -> dict[str, Any]:
    """A referral of ``case`` drafted by its facilitator and brought to ``status`` by the supervisor."""
    created = await create(client, world, case, program=program, **create_args)
    assert created["errors"] == [], created
    referral: dict[str, Any] = created["referral"]
    path = {"DRAFT": [], "SENT": ["sendReferral"], "ACCEPTED": ["sendReferral", "acceptReferral"],
            "COMPLETED": ["sendReferral", "acceptReferral", "completeReferral"],
            "REJECTED": ["sendReferral", "rejectReferral"], "REVOKED": ["revokeReferral"]}[status]
    for op in path:
        payload = await referral_op(client, op, case.supervisor, **transition_input(op, referral["id"],
                                                                                   referral["version"]))
        assert payload["errors"] == [], payload
        referral = payload["referral"]
    assert referral["status"] == status
    return referral


@dataclass(frozen=True)
class Snapshot:
    events: list[tuple[Any, ...]]
    referrals: list[tuple[Any, ...]]
    complaints: list[tuple[Any, ...]]
    published: int


async def snapshot(session: AsyncSession, published: Published) -> Snapshot:
    """Everything a referral mutation may write, read fresh from the database (column selects bypass the
    identity map)."""
    events = await session.execute(select(CaseEvent.id, CaseEvent.kind).order_by(CaseEvent.id))
    referrals = await session.execute(select(
        Referral.id, Referral.status, Referral.version, Referral.receiving_agency, Referral.consent_given,
        Referral.consent_override_reason, Referral.rejection_reason, Referral.revocation_reason, Referral.outcome,
        Referral.sent_at, Referral.responded_at, Referral.completed_at, Referral.updated_at).order_by(Referral.id))
    complaints = await session.execute(select(
        Complaint.id, Complaint.status, Complaint.version, Complaint.decision, Complaint.closed_at,
        Complaint.updated_at).order_by(Complaint.id))
    return Snapshot(events=[tuple(r) for r in events], referrals=[tuple(r) for r in referrals],
                    complaints=[tuple(r) for r in complaints], published=len(published.ids))


async def events_after(session: AsyncSession, last_id: int) -> list[CaseEvent]:
    stmt = select(CaseEvent).where(CaseEvent.id > last_id).order_by(CaseEvent.id)
    return list(await session.scalars(stmt.execution_options(populate_existing=True)))


async def last_event_id(session: AsyncSession) -> int:
    rows = await session.execute(select(CaseEvent.id).order_by(CaseEvent.id.desc()).limit(1))
    row = rows.first()
    return int(row[0]) if row else 0


async def db_referral(session: AsyncSession, rid: str) -> tuple[str, int]:
    row = (await session.execute(select(Referral.status, Referral.version).where(
        Referral.id == pk_of(rid, "Referral")))).one()
    return row[0], row[1]


async def db_complaint(session: AsyncSession, cid: str) -> tuple[str, int]:
    row = (await session.execute(select(Complaint.status, Complaint.version).where(
        Complaint.id == pk_of(cid, "Complaint")))).one()
    return row[0], row[1]


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


def assert_failed(payload: dict[str, Any], code: str, *, field: str | None | object = ...,
                  keeps_referral: bool = False) -> None:
    assert codes(payload) == [code], payload
    if field is not ...:
        assert payload["errors"][0]["field"] == field, payload
    if not keeps_referral:
        assert payload["referral"] is None, payload


# --- createReferral -----------------------------------------------------------------------------------------


async def test_create_referral_drafts_it_and_writes_one_event(client: Client, world: World, session: AsyncSession,
                                                              published: Published) -> None:
    case = await open_case(client, world)
    before = await last_event_id(session)
    payload = await create(client, world, case, note="Mohon diproses segera")
    assert payload["errors"] == []
    referral = payload["referral"]
    assert referral["status"] == "DRAFT" and referral["version"] == 1
    assert referral["receivingAgency"] == "BPJS Kesehatan"  # the program's owner agency by default
    assert referral["program"]["code"] == "PBI-JK"
    assert referral["createdBy"]["username"] == "fac_a1"
    assert referral["consentGiven"] is True and referral["consentOverrideReason"] is None
    assert referral["note"] == "Mohon diproses segera"
    assert referral["sentAt"] is None and referral["respondedAt"] is None and referral["completedAt"] is None
    # proposing a referral does not move the complaint
    assert referral["complaint"] == {"id": case.complaint_id, "status": "VERIFIED", "version": case.version}
    assert await db_complaint(session, case.complaint_id) == ("VERIFIED", case.version)
    assert await db_referral(session, referral["id"]) == ("DRAFT", 1)
    events = await events_after(session, before)
    assert [e.kind for e in events] == ["REFERRAL_CREATED"]
    event = events[0]
    assert event.referral_id == pk_of(referral["id"], "Referral")
    assert event.complaint_id == pk_of(case.complaint_id, "Complaint")
    assert event.actor_id == world.staff["fac_a1"].id and event.region_code == DESA_A1
    assert event.data["status"] == "DRAFT" and event.data["version"] == 1
    assert published.ids[-1] == event.id


async def test_create_referral_receiving_agency_given_or_defaulted(client: Client, world: World) -> None:
    case = await open_case(client, world)
    given = await create(client, world, case, receivingAgency="RSUD Dr. Tengku Mansyur")
    assert given["errors"] == [] and given["referral"]["receivingAgency"] == "RSUD Dr. Tengku Mansyur"
    blank = await create(client, world, case, program="KIP", receivingAgency="   ")
    assert blank["errors"] == [] and blank["referral"]["receivingAgency"] == "Dinas Pendidikan"
    omitted = await create(client, world, case, program="PKH")
    assert omitted["errors"] == [] and omitted["referral"]["receivingAgency"] == "Kementerian Sosial"


@pytest.mark.parametrize("status", ["VERIFIED", "IN_PROGRESS", "REFERRED"])
async def test_create_referral_for_verified_open_complaints(client: Client, world: World, session: AsyncSession,
                                                            status: str) -> None:
    case = await open_case(client, world, status="VERIFIED" if status == "REFERRED" else status)
    if status == "REFERRED":
        await referral_in(client, world, case, "SENT")
        assert (await db_complaint(session, case.complaint_id))[0] == "REFERRED"
    payload = await create(client, world, case, program="KIP")
    assert payload["errors"] == []
    assert payload["referral"]["status"] == "DRAFT"
    assert payload["referral"]["complaint"]["status"] == status


@pytest.mark.parametrize("status", ["NEW", "RETURNED", "RESOLVED", "REJECTED"])
async def test_create_referral_for_unverified_or_closed_complaint_is_invalid(
        client: Client, world: World, session: AsyncSession, published: Published, status: str) -> None:
    case = await open_case(client, world, status=status)
    before = await snapshot(session, published)
    payload = await create(client, world, case, actor=case.supervisor)
    assert_failed(payload, "INVALID_TRANSITION", field="complaintId")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("who", ["fac_a1b", "officer_a"])
async def test_create_referral_by_staff_not_holding_the_case_is_forbidden(
        client: Client, world: World, session: AsyncSession, published: Published, who: str) -> None:
    case = await open_case(client, world)
    before = await snapshot(session, published)
    payload = await create(client, world, case, actor=world.actor(who))
    assert_failed(payload, "FORBIDDEN")
    assert await snapshot(session, published) == before
    # a supervisor does not need to hold the case
    allowed = await create(client, world, case, actor=world.actor("sup_a"))
    assert allowed["errors"] == [] and allowed["referral"]["createdBy"]["username"] == "sup_a"


async def test_create_referral_to_unknown_or_inactive_program_is_not_found(
        client: Client, world: World, session: AsyncSession, published: Published) -> None:
    case = await open_case(client, world)
    world.programs["KIP"].active = False
    await session.commit()
    before = await snapshot(session, published)
    unknown = await referral_op(client, "createReferral", case.facilitator, complaintId=case.complaint_id,
                                programId=to_global_id("Program", 987654), consentGiven=True)
    assert_failed(unknown, "NOT_FOUND", field="programId")
    inactive = await create(client, world, case, program="KIP")
    assert_failed(inactive, "NOT_FOUND", field="programId")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("first_status", ["DRAFT", "SENT", "ACCEPTED"])
async def test_second_open_referral_to_the_same_program_is_a_duplicate(
        client: Client, world: World, session: AsyncSession, published: Published, first_status: str) -> None:
    case = await open_case(client, world)
    await referral_in(client, world, case, first_status)
    before = await snapshot(session, published)
    payload = await create(client, world, case, actor=case.supervisor)
    assert_failed(payload, "DUPLICATE_REFERRAL", field="programId")
    assert await snapshot(session, published) == before
    # another program is fine
    other = await create(client, world, case, program="PKH")
    assert other["errors"] == []


@pytest.mark.parametrize("final_status", ["REVOKED", "REJECTED", "COMPLETED"])
async def test_a_final_referral_does_not_block_a_new_one(client: Client, world: World, final_status: str) -> None:
    case = await open_case(client, world)
    first = await referral_in(client, world, case, final_status)
    again = await create(client, world, case, actor=case.supervisor)
    assert again["errors"] == [] and again["referral"]["id"] != first["id"]


async def test_create_referral_ids_scope_and_roles(client: Client, world: World, session: AsyncSession,
                                                   published: Published) -> None:
    case = await open_case(client, world)
    program = to_global_id("Program", world.programs["PBI-JK"].id)
    before = await snapshot(session, published)
    attempts: list[tuple[str | None, dict[str, Any], str, str | None]] = [
        ("fac_a1", {"complaintId": "not-an-id"}, "INVALID_ID", "complaintId"),
        ("fac_a1", {"complaintId": program}, "INVALID_ID", "complaintId"),
        ("fac_a1", {"programId": case.complaint_id}, "INVALID_ID", "programId"),
        ("fac_a1", {"programId": "%%%"}, "INVALID_ID", "programId"),
        ("fac_a1", {"complaintId": to_global_id("Complaint", 987654)}, "NOT_FOUND", "complaintId"),
        ("sup_b", {}, "NOT_FOUND", "complaintId"),
        ("fac_b1", {}, "NOT_FOUND", "complaintId"),
        ("partner", {}, "FORBIDDEN", None),
        (None, {}, "UNAUTHENTICATED", None),
    ]
    for who, patch, code, field in attempts:
        data = {"complaintId": case.complaint_id, "programId": program, "consentGiven": True} | patch
        payload = await referral_op(client, "createReferral", world.actor(who) if who else None, **data)
        assert codes(payload) == [code], (who, patch, payload)
        assert payload["errors"][0]["field"] == field, (who, patch, payload)
        assert payload["referral"] is None
    assert await snapshot(session, published) == before


async def test_create_referral_rejects_overlong_text(client: Client, world: World, session: AsyncSession,
                                                     published: Published) -> None:
    case = await open_case(client, world)
    before = await snapshot(session, published)
    payload = await create(client, world, case, note="x" * 4001)
    assert_failed(payload, "TOO_LONG", field="note")
    assert await snapshot(session, published) == before


# --- sendReferral -------------------------------------------------------------------------------------------


async def test_send_referral_refers_the_complaint(client: Client, world: World, session: AsyncSession,
                                                  published: Published) -> None:
    case = await open_case(client, world, status="IN_PROGRESS")
    draft = await referral_in(client, world, case, "DRAFT")
    before = await last_event_id(session)
    payload = await referral_op(client, "sendReferral", world.actor("sup_a"), id=draft["id"], expectedVersion=1)
    assert payload["errors"] == []
    sent = payload["referral"]
    assert sent["status"] == "SENT" and sent["version"] == 2 and sent["sentAt"] is not None
    assert sent["complaint"] == {"id": case.complaint_id, "status": "REFERRED", "version": case.version + 1}
    assert await db_complaint(session, case.complaint_id) == ("REFERRED", case.version + 1)
    assert await db_referral(session, draft["id"]) == ("SENT", 2)
    events = await events_after(session, before)
    assert sorted(e.kind for e in events) == ["COMPLAINT_REFERRED", "REFERRAL_SENT"]
    by_kind = {e.kind: e for e in events}
    referred, sent_event = by_kind["COMPLAINT_REFERRED"], by_kind["REFERRAL_SENT"]
    assert referred.complaint_id == pk_of(case.complaint_id, "Complaint")
    assert referred.data["from"] == "IN_PROGRESS" and referred.data["status"] == "REFERRED"
    assert referred.data["version"] == case.version + 1
    assert sent_event.referral_id == pk_of(draft["id"], "Referral")
    assert sent_event.data == {"from": "DRAFT", "status": "SENT", "version": 2}
    assert all(e.actor_id == world.staff["sup_a"].id for e in events)
    assert published.ids[-2:] == [e.id for e in events]


async def test_sending_another_referral_leaves_a_referred_complaint_alone(client: Client, world: World,
                                                                          session: AsyncSession) -> None:
    case = await open_case(client, world)
    await referral_in(client, world, case, "SENT")
    status, version = await db_complaint(session, case.complaint_id)
    assert status == "REFERRED"
    second = await referral_in(client, world, case, "DRAFT", program="KIP")
    before = await last_event_id(session)
    payload = await referral_op(client, "sendReferral", case.supervisor, id=second["id"], expectedVersion=1)
    assert payload["errors"] == [] and payload["referral"]["status"] == "SENT"
    assert await db_complaint(session, case.complaint_id) == ("REFERRED", version)
    assert [e.kind for e in await events_after(session, before)] == ["REFERRAL_SENT"]


@pytest.mark.parametrize("override", [None, "", "   "])
async def test_send_without_consent_or_override_reason_needs_consent(
        client: Client, world: World, session: AsyncSession, published: Published, override: str | None) -> None:
    case = await open_case(client, world)
    draft = await referral_in(client, world, case, "DRAFT", consent=False, consentOverrideReason=override)
    assert draft["consentGiven"] is False and draft["consentOverrideReason"] is None
    before = await snapshot(session, published)
    payload = await referral_op(client, "sendReferral", case.supervisor, id=draft["id"], expectedVersion=1)
    assert_failed(payload, "CONSENT_REQUIRED")
    assert await snapshot(session, published) == before
    assert await db_complaint(session, case.complaint_id) == ("VERIFIED", case.version)


async def test_send_without_consent_but_with_override_reason(client: Client, world: World,
                                                             session: AsyncSession) -> None:
    case = await open_case(client, world)
    reason = "Anak dalam situasi berisiko; orang tua tidak dapat dihubungi"
    draft = await referral_in(client, world, case, "DRAFT", consent=False, consentOverrideReason=f"  {reason} ")
    assert draft["consentOverrideReason"] == reason
    payload = await referral_op(client, "sendReferral", case.supervisor, id=draft["id"], expectedVersion=1)
    assert payload["errors"] == []
    assert payload["referral"]["status"] == "SENT" and payload["referral"]["consentGiven"] is False
    assert await db_complaint(session, case.complaint_id) == ("REFERRED", case.version + 1)


@pytest.mark.parametrize("who", ["fac_a1", "fac_a1b", "partner"])
async def test_facilitators_and_partners_may_not_send(client: Client, world: World, session: AsyncSession,
                                                      published: Published, who: str) -> None:
    case = await open_case(client, world)
    draft = await referral_in(client, world, case, "DRAFT")
    before = await snapshot(session, published)
    payload = await referral_op(client, "sendReferral", world.actor(who), id=draft["id"], expectedVersion=1)
    assert_failed(payload, "FORBIDDEN")
    assert await snapshot(session, published) == before


async def test_puskesos_officer_may_send(client: Client, world: World) -> None:
    case = await open_case(client, world)
    draft = await referral_in(client, world, case, "DRAFT")
    payload = await referral_op(client, "sendReferral", world.actor("officer_a"), id=draft["id"], expectedVersion=1)
    assert payload["errors"] == [] and payload["referral"]["status"] == "SENT"


@pytest.mark.parametrize("status", ["SENT", "ACCEPTED", "REJECTED", "REVOKED", "COMPLETED"])
async def test_send_only_from_draft(client: Client, world: World, session: AsyncSession, published: Published,
                                    status: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, status)
    before = await snapshot(session, published)
    payload = await referral_op(client, "sendReferral", case.supervisor, id=referral["id"],
                                expectedVersion=referral["version"])
    assert_failed(payload, "INVALID_TRANSITION")
    assert await snapshot(session, published) == before


# --- acceptReferral -----------------------------------------------------------------------------------------


async def test_accept_referral(client: Client, world: World, session: AsyncSession) -> None:
    case = await open_case(client, world)
    sent = await referral_in(client, world, case, "SENT")
    complaint_before = await db_complaint(session, case.complaint_id)
    before = await last_event_id(session)
    payload = await referral_op(client, "acceptReferral", case.supervisor, id=sent["id"], expectedVersion=2)
    assert payload["errors"] == []
    accepted = payload["referral"]
    assert accepted["status"] == "ACCEPTED" and accepted["version"] == 3 and accepted["respondedAt"] is not None
    assert await db_referral(session, sent["id"]) == ("ACCEPTED", 3)
    assert await db_complaint(session, case.complaint_id) == complaint_before
    events = await events_after(session, before)
    assert [e.kind for e in events] == ["REFERRAL_ACCEPTED"]
    assert events[0].data == {"from": "SENT", "status": "ACCEPTED", "version": 3}


@pytest.mark.parametrize("status", ["DRAFT", "ACCEPTED", "REJECTED", "REVOKED", "COMPLETED"])
async def test_accept_only_a_sent_referral(client: Client, world: World, session: AsyncSession,
                                           published: Published, status: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, status)
    before = await snapshot(session, published)
    payload = await referral_op(client, "acceptReferral", case.supervisor, id=referral["id"],
                                expectedVersion=referral["version"])
    assert_failed(payload, "INVALID_TRANSITION")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("op", ["acceptReferral", "rejectReferral", "completeReferral"])
@pytest.mark.parametrize("who", ["fac_a1", "partner"])
async def test_facilitators_and_partners_may_not_record_responses(
        client: Client, world: World, session: AsyncSession, published: Published, op: str, who: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, START_STATE[op])
    before = await snapshot(session, published)
    payload = await referral_op(client, op, world.actor(who), **transition_input(op, referral["id"],
                                                                                 referral["version"]))
    assert_failed(payload, "FORBIDDEN")
    assert await snapshot(session, published) == before


# --- rejectReferral -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["SENT", "ACCEPTED"])
async def test_reject_referral_records_the_reason(client: Client, world: World, session: AsyncSession,
                                                  status: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, status)
    before = await last_event_id(session)
    payload = await referral_op(client, "rejectReferral", case.supervisor, id=referral["id"],
                                expectedVersion=referral["version"], reason="  Sudah menjadi peserta mandiri ")
    assert payload["errors"] == []
    rejected = payload["referral"]
    assert rejected["status"] == "REJECTED" and rejected["version"] == referral["version"] + 1
    assert rejected["rejectionReason"] == "Sudah menjadi peserta mandiri"
    assert rejected["respondedAt"] is not None
    assert await db_referral(session, referral["id"]) == ("REJECTED", referral["version"] + 1)
    events = await events_after(session, before)
    assert [e.kind for e in events] == ["REFERRAL_REJECTED"]
    assert events[0].data["from"] == status and events[0].data["status"] == "REJECTED"
    # the reason is not copied into the event log
    assert "peserta" not in str(events[0].data)


@pytest.mark.parametrize("reason", [None, "", "   "])
async def test_reject_referral_needs_a_reason(client: Client, world: World, session: AsyncSession,
                                              published: Published, reason: str | None) -> None:
    case = await open_case(client, world)
    sent = await referral_in(client, world, case, "SENT")
    before = await snapshot(session, published)
    payload = await referral_op(client, "rejectReferral", case.supervisor, id=sent["id"], expectedVersion=2,
                                reason=reason)
    assert_failed(payload, "REASON_REQUIRED", field="reason")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("status", ["DRAFT", "REJECTED", "REVOKED", "COMPLETED"])
async def test_reject_only_sent_or_accepted(client: Client, world: World, session: AsyncSession,
                                            published: Published, status: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, status)
    before = await snapshot(session, published)
    payload = await referral_op(client, "rejectReferral", case.supervisor, id=referral["id"],
                                expectedVersion=referral["version"], reason="Tidak memenuhi syarat")
    assert_failed(payload, "INVALID_TRANSITION")
    assert await snapshot(session, published) == before


# --- revokeReferral -----------------------------------------------------------------------------------------


async def test_creator_revokes_own_draft(client: Client, world: World, session: AsyncSession) -> None:
    case = await open_case(client, world)
    draft = await referral_in(client, world, case, "DRAFT")
    before = await last_event_id(session)
    payload = await referral_op(client, "revokeReferral", world.actor("fac_a1"), id=draft["id"], expectedVersion=1,
                                reason="Salah pilih program")
    assert payload["errors"] == []
    assert payload["referral"]["status"] == "REVOKED" and payload["referral"]["version"] == 2
    assert payload["referral"]["revocationReason"] == "Salah pilih program"
    assert await db_referral(session, draft["id"]) == ("REVOKED", 2)
    events = await events_after(session, before)
    assert [e.kind for e in events] == ["REFERRAL_REVOKED"]
    assert events[0].actor_id == world.staff["fac_a1"].id
    assert events[0].data == {"from": "DRAFT", "status": "REVOKED", "version": 2}


@pytest.mark.parametrize("status", ["DRAFT", "SENT", "ACCEPTED"])
async def test_supervisor_revokes_a_referral_someone_else_created(client: Client, world: World,
                                                                  session: AsyncSession, status: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, status)
    assert referral["createdBy"]["username"] == "fac_a1"
    before = await last_event_id(session)
    payload = await referral_op(client, "revokeReferral", world.actor("sup_a"), id=referral["id"],
                                expectedVersion=referral["version"], reason="Kasus ditangani dinas lain")
    assert payload["errors"] == [] and payload["referral"]["status"] == "REVOKED"
    assert [e.kind for e in await events_after(session, before)] == ["REFERRAL_REVOKED"]


@pytest.mark.parametrize("who", ["fac_a1b", "partner"])
async def test_others_may_not_revoke(client: Client, world: World, session: AsyncSession, published: Published,
                                     who: str) -> None:
    case = await open_case(client, world)
    draft = await referral_in(client, world, case, "DRAFT")
    before = await snapshot(session, published)
    payload = await referral_op(client, "revokeReferral", world.actor(who), id=draft["id"], expectedVersion=1,
                                reason="Saya batalkan")
    assert_failed(payload, "FORBIDDEN")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("reason", [None, "", " \t "])
async def test_revoke_needs_a_reason(client: Client, world: World, session: AsyncSession, published: Published,
                                     reason: str | None) -> None:
    case = await open_case(client, world)
    draft = await referral_in(client, world, case, "DRAFT")
    before = await snapshot(session, published)
    payload = await referral_op(client, "revokeReferral", world.actor("fac_a1"), id=draft["id"], expectedVersion=1,
                                reason=reason)
    assert_failed(payload, "REASON_REQUIRED", field="reason")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("status", ["REJECTED", "REVOKED", "COMPLETED"])
async def test_final_referral_cannot_be_revoked(client: Client, world: World, session: AsyncSession,
                                                published: Published, status: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, status)
    before = await snapshot(session, published)
    payload = await referral_op(client, "revokeReferral", case.supervisor, id=referral["id"],
                                expectedVersion=referral["version"], reason="Terlambat")
    assert_failed(payload, "INVALID_TRANSITION")
    assert await snapshot(session, published) == before


# --- completeReferral ---------------------------------------------------------------------------------------


async def test_complete_an_accepted_referral_with_its_outcome(client: Client, world: World,
                                                              session: AsyncSession) -> None:
    case = await open_case(client, world)
    accepted = await referral_in(client, world, case, "ACCEPTED")
    before = await last_event_id(session)
    payload = await referral_op(client, "completeReferral", case.supervisor, id=accepted["id"], expectedVersion=3,
                                outcome=" Kartu KIS diterbitkan ")
    assert payload["errors"] == []
    done = payload["referral"]
    assert done["status"] == "COMPLETED" and done["version"] == 4
    assert done["outcome"] == "Kartu KIS diterbitkan" and done["completedAt"] is not None
    assert await db_referral(session, accepted["id"]) == ("COMPLETED", 4)
    events = await events_after(session, before)
    assert [e.kind for e in events] == ["REFERRAL_COMPLETED"]
    assert events[0].data == {"from": "ACCEPTED", "status": "COMPLETED", "version": 4}


@pytest.mark.parametrize("status", ["DRAFT", "SENT", "REJECTED", "REVOKED", "COMPLETED"])
async def test_complete_only_from_accepted(client: Client, world: World, session: AsyncSession,
                                           published: Published, status: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, status)
    before = await snapshot(session, published)
    payload = await referral_op(client, "completeReferral", case.supervisor, id=referral["id"],
                                expectedVersion=referral["version"], outcome="Selesai")
    assert_failed(payload, "INVALID_TRANSITION")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("outcome", ["", "   "])
async def test_complete_needs_an_outcome(client: Client, world: World, session: AsyncSession,
                                         published: Published, outcome: str) -> None:
    case = await open_case(client, world)
    accepted = await referral_in(client, world, case, "ACCEPTED")
    before = await snapshot(session, published)
    payload = await referral_op(client, "completeReferral", case.supervisor, id=accepted["id"], expectedVersion=3,
                                outcome=outcome)
    assert_failed(payload, "REASON_REQUIRED", field="outcome")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("op", ["rejectReferral", "revokeReferral", "completeReferral"])
async def test_overlong_reason_or_outcome_is_refused(client: Client, world: World, session: AsyncSession,
                                                     published: Published, op: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, START_STATE[op])
    data = transition_input(op, referral["id"], referral["version"])
    field = "outcome" if op == "completeReferral" else "reason"
    data[field] = "x" * 4001
    before = await snapshot(session, published)
    payload = await referral_op(client, op, case.supervisor, **data)
    assert_failed(payload, "TOO_LONG", field=field)
    assert await snapshot(session, published) == before


# --- failures shared by every transition ---------------------------------------------------------------------


@pytest.mark.parametrize("op", TRANSITIONS)
@pytest.mark.parametrize("delta", [-1, 1])
async def test_stale_version_changes_nothing_and_returns_the_current_referral(
        client: Client, world: World, session: AsyncSession, published: Published, op: str, delta: int) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, START_STATE[op])
    before = await snapshot(session, published)
    payload = await referral_op(client, op, case.supervisor,
                                **transition_input(op, referral["id"], referral["version"] + delta))
    assert_failed(payload, "STALE_VERSION", field="expectedVersion", keeps_referral=True)
    current = payload["referral"]
    assert current is not None
    assert current["id"] == referral["id"]
    assert current["status"] == referral["status"] and current["version"] == referral["version"]
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("op", TRANSITIONS)
@pytest.mark.parametrize("who", ["sup_b", "fac_b1"])
async def test_out_of_scope_staff_get_not_found(client: Client, world: World, session: AsyncSession,
                                                published: Published, op: str, who: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, START_STATE[op])
    before = await snapshot(session, published)
    payload = await referral_op(client, op, world.actor(who),
                                **transition_input(op, referral["id"], referral["version"]))
    if who == "fac_b1" and op != "revokeReferral":
        # a facilitator's role is refused before the referral is looked up: same answer wherever it is
        assert_failed(payload, "FORBIDDEN")
    else:
        assert_failed(payload, "NOT_FOUND", field="id")
    assert await snapshot(session, published) == before
    # a stale version does not reveal an out-of-scope referral either
    stale = await referral_op(client, op, world.actor("sup_b"),
                              **transition_input(op, referral["id"], referral["version"] + 5))
    assert_failed(stale, "NOT_FOUND", field="id")


@pytest.mark.parametrize("op", TRANSITIONS)
async def test_unknown_and_malformed_ids(client: Client, world: World, session: AsyncSession,
                                         published: Published, op: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, START_STATE[op])
    before = await snapshot(session, published)
    malformed = ["nope", "", "!!!", case.complaint_id, to_global_id("Referral", "abc"), to_global_id("Referral", 0),
                 to_global_id("Referral", -3), to_global_id("Referral", 2**64), "x" * 500]
    for gid in malformed:
        payload = await referral_op(client, op, case.supervisor, **transition_input(op, gid, referral["version"]))
        assert_failed(payload, "INVALID_ID", field="id")
    unknown = await referral_op(client, op, case.supervisor,
                                **transition_input(op, to_global_id("Referral", 987654), 1))
    assert_failed(unknown, "NOT_FOUND", field="id")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("op", ["createReferral", *TRANSITIONS])
async def test_ids_with_non_ascii_digits_are_invalid_ids(client: Client, world: World, session: AsyncSession,
                                                         published: Published, op: str) -> None:
    """'\u00b2' (superscript two) passes str.isdigit() but is no number: the id is malformed, not a crash."""
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, START_STATE.get(op, "DRAFT"))
    before = await snapshot(session, published)
    if op == "createReferral":
        data = {"complaintId": to_global_id("Complaint", "\u00b2"), "consentGiven": True,
                "programId": to_global_id("Program", world.programs["KIP"].id)}
    else:
        data = transition_input(op, to_global_id("Referral", "\u00b2"), referral["version"])
    out = await client.execute(MUTATIONS[op], {"input": data}, actor=case.supervisor)
    assert out["errors"] == [], out["errors"]
    payload = out["data"][op]
    assert_failed(payload, "INVALID_ID", field="complaintId" if op == "createReferral" else "id")
    assert await snapshot(session, published) == before


@pytest.mark.parametrize("op", TRANSITIONS)
async def test_transitions_need_credentials(client: Client, world: World, session: AsyncSession,
                                            published: Published, op: str) -> None:
    case = await open_case(client, world)
    referral = await referral_in(client, world, case, START_STATE[op])
    before = await snapshot(session, published)
    payload = await referral_op(client, op, None, **transition_input(op, referral["id"], referral["version"]))
    assert_failed(payload, "UNAUTHENTICATED")
    assert await snapshot(session, published) == before


# --- a case from intake to resolution -----------------------------------------------------------------------

TIMELINE = """
query($id: ID!) {
  node(id: $id) { ... on Complaint {
    id status version decision closedAt slaState
    referrals { id status outcome }
    timeline { id cursor kind regionCode householdId complaintId referralId actorId data }
  } }
}"""


async def test_full_life_of_a_case(client: Client, world: World, session: AsyncSession,
                                   published: Published) -> None:
    fac, sup = world.actor("fac_a1"), world.actor("sup_a")
    hid = await register(client, world)
    out = await client.ok(FILE, {"input": {"householdId": hid, "sector": "HEALTH",
                                           "description": "Ibu hamil belum punya jaminan kesehatan"}}, actor=fac)
    cid = out["fileComplaint"]["complaint"]["id"]
    assert out["fileComplaint"]["complaint"]["status"] == "NEW"

    verified = await complaint_op(client, "verifyComplaint", sup, id=cid, expectedVersion=1)
    assert verified["complaint"]["status"] == "VERIFIED"
    started = await complaint_op(client, "startComplaint", fac, id=cid, expectedVersion=2)
    assert started["complaint"]["status"] == "IN_PROGRESS"

    created = await referral_op(client, "createReferral", fac, complaintId=cid, consentGiven=True,
                                programId=to_global_id("Program", world.programs["PBI-JK"].id))
    rid = created["referral"]["id"]
    sent = await referral_op(client, "sendReferral", sup, id=rid, expectedVersion=1)
    assert sent["referral"]["status"] == "SENT" and sent["referral"]["complaint"]["status"] == "REFERRED"
    accepted = await referral_op(client, "acceptReferral", sup, id=rid, expectedVersion=2)
    assert accepted["referral"]["status"] == "ACCEPTED"

    # the complaint cannot resolve while its referral is open
    early = await complaint_op(client, "resolveComplaint", fac, id=cid, expectedVersion=4, decision="Selesai")
    assert [e["code"] for e in early["errors"]] == ["OPEN_REFERRALS"]
    assert await db_complaint(session, cid) == ("REFERRED", 4)

    completed = await referral_op(client, "completeReferral", sup, id=rid, expectedVersion=3,
                                  outcome="Terdaftar PBI-JK mulai bulan depan")
    assert completed["referral"]["status"] == "COMPLETED"
    resolved = await complaint_op(client, "resolveComplaint", fac, id=cid, expectedVersion=4,
                                  decision="Didaftarkan sebagai peserta PBI-JK")
    assert resolved["errors"] == []
    assert resolved["complaint"]["status"] == "RESOLVED" and resolved["complaint"]["version"] == 5

    view = (await client.ok(TIMELINE, {"id": cid}, actor=sup))["node"]
    assert view["status"] == "RESOLVED" and view["slaState"] == "CLOSED" and view["closedAt"] is not None
    assert view["decision"] == "Didaftarkan sebagai peserta PBI-JK"
    assert view["referrals"] == [{"id": rid, "status": "COMPLETED", "outcome": "Terdaftar PBI-JK mulai bulan depan"}]
    timeline = view["timeline"]
    kinds = [e["kind"] for e in timeline]
    assert kinds[:4] == ["COMPLAINT_FILED", "COMPLAINT_VERIFIED", "COMPLAINT_STARTED", "REFERRAL_CREATED"]
    assert sorted(kinds[4:6]) == ["COMPLAINT_REFERRED", "REFERRAL_SENT"]
    assert kinds[6:] == ["REFERRAL_ACCEPTED", "REFERRAL_COMPLETED", "COMPLAINT_RESOLVED"]
    cursors = [int(e["cursor"]) for e in timeline]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    assert all(e["complaintId"] == cid and e["householdId"] == hid and e["regionCode"] == DESA_A1 for e in timeline)
    assert [e["referralId"] is not None for e in timeline] == [k.startswith("REFERRAL_") for k in kinds]
    assert all(e["referralId"] == rid for e in timeline if e["referralId"] is not None)
    actors = {world.staff[name].id: name for name in ("fac_a1", "sup_a")}
    assert [actors[pk_of(e["actorId"], "Staff") or 0] for e in timeline] == [
        "fac_a1", "sup_a", "fac_a1", "fac_a1", "sup_a", "sup_a", "sup_a", "sup_a", "fac_a1"]
    # the timeline is exactly what the log holds for this complaint, and every event was published once
    logged = list(await session.scalars(select(CaseEvent.id).where(
        CaseEvent.complaint_id == pk_of(cid, "Complaint")).order_by(CaseEvent.id)))
    assert cursors == logged
    assert set(logged) <= set(published.ids) and len(published.ids) == len(set(published.ids))
    # the timeline of a case in another kecamatan is not reachable
    assert (await client.ok(TIMELINE, {"id": cid}, actor=world.actor("sup_b")))["node"] is None


async def test_referrals_of_kecamatan_b_are_invisible_to_kecamatan_a(client: Client, world: World) -> None:
    case_b = await open_case(client, world, region=DESA_B1)
    referral = await referral_in(client, world, case_b, "SENT")
    payload = await referral_op(client, "acceptReferral", world.actor("sup_b"), id=referral["id"], expectedVersion=2)
    assert payload["errors"] == []
    for who in ("sup_a", "officer_a"):
        other = await referral_op(client, "revokeReferral", world.actor(who), id=referral["id"], expectedVersion=3,
                                  reason="Bukan wilayah kami")
        assert_failed(other, "NOT_FOUND", field="id")
    manager = await referral_op(client, "completeReferral", world.actor("manager"), id=referral["id"],
                                expectedVersion=3, outcome="Selesai ditangani")
    assert manager["errors"] == [] and manager["referral"]["status"] == "COMPLETED"
