"""Bulk export for a partner's first full sync: every row in scope, streamed from one consistent snapshot,
with the event-log cursor of that snapshot to continue with ``changes`` (nothing missed, nothing twice).

Rows are read in batches through a server-side cursor and turned into plain dicts one at a time, so memory
stays flat however many rows there are. The same scope (regions, programs) and masking (personal data only
with the grant) apply as in the GraphQL API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor, Op
from domain.complaints import queries as complaint_queries
from domain.complaints.models import Complaint
from domain.crypto import NIK, PersonalDataCipher
from domain.events import audit, latest_event_id
from domain.households.models import Household, Member
from domain.privacy import initials
from domain.programs import Program
from domain.referrals import queries as referral_queries
from domain.referrals.models import Referral
from domain.regions import in_subtree
from domain.sqljson import Ascii, global_id, iso, obj

BATCH = 1000
KINDS = ("complaints", "households", "referrals")


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another object; the API layer writes it as that object's global id."""

    type_name: str
    pk: int


def _ref(type_name: str, pk: int | None) -> Ref | None:
    return Ref(type_name, pk) if pk is not None else None


async def snapshot(session: AsyncSession) -> int:
    """Start the export's snapshot (REPEATABLE READ) and return the event cursor it corresponds to."""
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return await latest_event_id(session)


def _region(stmt: Select[Any], column: Any, region: str | None) -> Select[Any]:
    return stmt.where(in_subtree(column, region)) if region else stmt


async def complaints(session: AsyncSession, *, actor: Actor, region: str | None) -> AsyncIterator[dict[str, Any]]:
    actor.require(Op.READ)
    program_code = select(Program.code).where(Program.id == Complaint.program_id).scalar_subquery()
    stmt = complaint_queries.scoped(select(*Complaint.__table__.c, program_code.label("program_code")), actor)
    stmt = _region(stmt, Complaint.region_code, region).order_by(Complaint.id)
    result = await session.stream(stmt.execution_options(yield_per=BATCH))
    async for row in result:
        yield {
            "id": _ref("Complaint", row.id), "householdId": _ref("Household", row.household_id),
            "memberId": _ref("Member", row.member_id), "regionCode": row.region_code, "kind": row.kind,
            "sector": row.sector, "program": row.program_code, "description": row.description,
            "channel": row.channel, "priority": row.priority, "status": row.status,
            "assigneeId": _ref("Staff", row.assignee_id), "slaDueAt": row.sla_due_at,
            "decision": row.decision, "closedAt": row.closed_at, "reportedAt": row.reported_at,
            "createdAt": row.created_at, "updatedAt": row.updated_at, "version": row.version,
        }


#: enum columns (``Ascii``) are held to their enum's names by CHECK constraints: JSON needs no escape for them
def _line(pairs: list[tuple[str, str]]) -> Any:
    return literal_column(obj(pairs) + "::text")


def _ts(column: str) -> str:
    return iso(column)


COMPLAINT_LINE = _line([
    ("id", global_id("Complaint", "complaints.id")), ("householdId", global_id("Household", "complaints.household_id")),
    ("memberId", global_id("Member", "complaints.member_id")), ("regionCode", "complaints.region_code"),
    ("kind", Ascii("complaints.kind")), ("sector", Ascii("complaints.sector")),
    ("program", "(SELECT programs.code FROM programs WHERE programs.id = complaints.program_id)"),
    ("description", "complaints.description"), ("channel", Ascii("complaints.channel")),
    ("priority", Ascii("complaints.priority")), ("status", Ascii("complaints.status")),
    ("assigneeId", global_id("Staff", "complaints.assignee_id")), ("slaDueAt", _ts("complaints.sla_due_at")),
    ("decision", "complaints.decision"), ("closedAt", _ts("complaints.closed_at")),
    ("reportedAt", _ts("complaints.reported_at")), ("createdAt", _ts("complaints.created_at")),
    ("updatedAt", _ts("complaints.updated_at")), ("version", "complaints.version"),
])

REFERRAL_LINE = _line([
    ("id", global_id("Referral", "referrals.id")), ("complaintId", global_id("Complaint", "referrals.complaint_id")),
    ("program", "(SELECT programs.code FROM programs WHERE programs.id = referrals.program_id)"),
    ("regionCode", "referrals.region_code"), ("receivingAgency", "referrals.receiving_agency"),
    ("status", Ascii("referrals.status")), ("consentGiven", "referrals.consent_given"),
    ("rejectionReason", "referrals.rejection_reason"), ("outcome", "referrals.outcome"),
    ("sentAt", _ts("referrals.sent_at")), ("respondedAt", _ts("referrals.responded_at")),
    ("completedAt", _ts("referrals.completed_at")), ("createdAt", _ts("referrals.created_at")),
    ("updatedAt", _ts("referrals.updated_at")), ("version", "referrals.version"),
])


async def complaint_lines(session: AsyncSession, *, actor: Actor, region: str | None) -> AsyncIterator[list[str]]:
    """The complaints of :func:`complaints` as JSON lines written by PostgreSQL, in batches (the same fields,
    ids and times as the API writes them: no per-row work in Python)."""
    actor.require(Op.READ)
    stmt = complaint_queries.scoped(select(COMPLAINT_LINE).select_from(Complaint), actor)
    async for batch in _batches(session, _region(stmt, Complaint.region_code, region).order_by(Complaint.id)):
        yield batch


async def referral_lines(session: AsyncSession, *, actor: Actor, region: str | None) -> AsyncIterator[list[str]]:
    """The referrals of :func:`referrals` as JSON lines written by PostgreSQL, in batches."""
    actor.require(Op.READ)
    stmt = referral_queries.scoped(select(REFERRAL_LINE).select_from(Referral), actor)
    async for batch in _batches(session, _region(stmt, Referral.region_code, region).order_by(Referral.id)):
        yield batch


async def _batches(session: AsyncSession, stmt: Select[Any]) -> AsyncIterator[list[str]]:
    result = await session.stream(stmt.execution_options(yield_per=BATCH))
    async for rows in result.partitions(BATCH):
        yield [row[0] for row in rows]


async def referrals(session: AsyncSession, *, actor: Actor, region: str | None) -> AsyncIterator[dict[str, Any]]:
    actor.require(Op.READ)
    program_code = select(Program.code).where(Program.id == Referral.program_id).scalar_subquery()
    stmt = referral_queries.scoped(select(*Referral.__table__.c, program_code.label("program_code")), actor)
    stmt = _region(stmt, Referral.region_code, region).order_by(Referral.id)
    result = await session.stream(stmt.execution_options(yield_per=BATCH))
    async for row in result:
        yield {
            "id": _ref("Referral", row.id), "complaintId": _ref("Complaint", row.complaint_id),
            "program": row.program_code, "regionCode": row.region_code, "receivingAgency": row.receiving_agency,
            "status": row.status, "consentGiven": row.consent_given, "rejectionReason": row.rejection_reason,
            "outcome": row.outcome, "sentAt": row.sent_at, "respondedAt": row.responded_at,
            "completedAt": row.completed_at, "createdAt": row.created_at,
            "updatedAt": row.updated_at, "version": row.version,
        }


async def households(session: AsyncSession, *, actor: Actor, region: str | None,
                     cipher: PersonalDataCipher) -> AsyncIterator[dict[str, Any]]:
    actor.require(Op.READ)
    sees = actor.sees_personal_data
    members = (
        select(func.coalesce(func.json_agg(aggregate_order_by(literal_column("m"), literal_column("m.id"))),
                             literal_column("'[]'::json")))
        .select_from(Member.__table__.alias("m"))
        .where(literal_column("m.household_id") == Household.id)
        .scalar_subquery()
    )
    stmt = actor.restrict(select(*Household.__table__.c, members.label("members")), Household.region_code)
    stmt = _region(stmt, Household.region_code, region).order_by(Household.id)
    result = await session.stream(stmt.execution_options(yield_per=BATCH))
    shown = 0
    async for row in result:
        people = []
        for m in row.members:
            nik = None
            if sees and m.get("nik_sealed"):
                nik = cipher.open(bytes.fromhex(m["nik_sealed"][2:]), kind=NIK)
                shown += 1
            people.append({
                "id": _ref("Member", m["id"]), "name": m["name"] if sees else initials(m["name"]), "sex": m["sex"],
                "birthDate": m["birth_date"], "relation": m["relation"], "nikStatus": m["nik_status"],
                "nikMasked": m["nik_masked"], "nik": nik, "programs": m["programs"],
            })
        yield {
            "id": _ref("Household", row.id), "regionCode": row.region_code, "rt": row.rt, "rw": row.rw,
            "address": row.address if sees else None, "latitude": row.latitude if sees else None,
            "longitude": row.longitude if sees else None, "dtksStatus": row.dtks_status,
            "indicators": row.indicators, "members": people, "createdAt": row.created_at,
            "updatedAt": row.updated_at, "version": row.version,
        }
    if shown:
        await audit(session, actor=actor, action="READ_PERSONAL_DATA", entity_type="Export", entity_id=None,
                    detail={"niks": shown})
