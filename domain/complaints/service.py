"""Filing complaints and moving them through their status machine.

    NEW -> VERIFIED -> IN_PROGRESS -> REFERRED -> RESOLVED
    NEW -> RETURNED -> NEW (resubmitted after correction)
    NEW | RETURNED | VERIFIED | IN_PROGRESS | REFERRED -> REJECTED (once every referral is final)
    RESOLVED | REJECTED -> IN_PROGRESS (reopened)

Every transition takes the version the actor last saw; a different current version is a conflict,
never a silent overwrite. Every change appends a case event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import idempotency
from domain.actor import ASSIGNABLE_ROLES, Actor, Op
from domain.base import Base
from domain.complaints.models import Assignment, Complaint
from domain.enums import (
    FINAL_REFERRAL_STATUSES,
    SECTOR_SLA_DAYS,
    Channel,
    ComplaintKind,
    ComplaintStatus,
    Priority,
    Role,
    Sector,
)
from domain.errors import DomainError, Forbidden, InvalidTransition, NotFound, StaleVersion, ValidationFailed
from domain.events import EventKind, append_event
from domain.households.models import Member
from domain.households.service import household_region
from domain.programs import Program
from domain.referrals.models import Referral
from domain.scoping import get_in_scope
from domain.staff.models import Staff
from domain.staff.service import actor_of

S = ComplaintStatus
MAX_TEXT = 4000
MAX_BULK = 500
#: the operation a filing's idempotency keys are claimed for
FILING = "fileComplaint"


@dataclass(slots=True)
class ComplaintData:
    household_id: int
    kind: ComplaintKind
    sector: Sector
    description: str
    channel: Channel
    priority: Priority = Priority.NORMAL
    member_id: int | None = None
    program_id: int | None = None
    assignee_id: int | None = None
    reported_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Filed:
    complaint: Complaint
    replayed: bool


def _description(value: str) -> str:
    if not value.strip():
        raise ValidationFailed([DomainError("describe the complaint", field="description", code="REQUIRED")])
    if len(value) > MAX_TEXT:
        raise ValidationFailed([DomainError(f"at most {MAX_TEXT} characters", field="description", code="TOO_LONG")])
    return value.strip()


def _reason(value: str | None, *, field: str = "reason") -> str:
    if value is None or not value.strip():
        raise ValidationFailed([DomainError("give a reason", field=field, code="REASON_REQUIRED")])
    if len(value) > MAX_TEXT:
        raise ValidationFailed([DomainError(f"at most {MAX_TEXT} characters", field=field, code="TOO_LONG")])
    return value.strip()


async def get_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int, for_update: bool = False,
                        field: str = "id") -> Complaint:
    return await get_in_scope(session, Complaint, actor=actor, pk=complaint_id, region_column=Complaint.region_code,
                              for_update=for_update, field=field, what="complaint")


async def _assignee(session: AsyncSession, *, actor: Actor, staff_id: int, region_code: str,
                    field: str = "assigneeId") -> Staff:
    staff = await session.get(Staff, staff_id)
    if staff is None or not actor.covers(staff.region_code or ""):
        raise NotFound("no such staff member in your area", field=field)
    if Role(staff.role) not in ASSIGNABLE_ROLES or not staff.active:
        raise DomainError("cases are assigned to active facilitators and Puskesos officers", field=field,
                          code="NOT_ASSIGNABLE")
    if not actor_of(staff).covers(region_code):
        raise DomainError("this person does not cover the household's village", field=field,
                          code="ASSIGNEE_OUT_OF_AREA")
    return staff


async def sla_days(session: AsyncSession, *, sector: Sector, program_id: int | None) -> int:
    if program_id is not None:
        days = await session.scalar(select(Program.sla_days).where(Program.id == program_id))
        if days is not None:
            return days
    return SECTOR_SLA_DAYS[sector]


async def file_complaint(
    session: AsyncSession,
    *,
    actor: Actor,
    data: ComplaintData,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Filed:
    actor.require(Op.FILE_COMPLAINT)
    claimed = await idempotency.claim(session, actor=actor, key=idempotency_key, operation=FILING,
                                      reserve=Complaint)
    if claimed.earlier is not None:
        return Filed(await get_complaint(session, actor=actor, complaint_id=claimed.earlier), replayed=True)
    household_id = data.household_id
    region_code = await household_region(session, actor=actor, household_id=household_id, field="householdId")
    now = now or dt.datetime.now(dt.UTC)
    errors = filing_errors(data, now=now)
    if data.member_id is not None:
        member_household = await session.scalar(select(Member.household_id).where(Member.id == data.member_id))
        if member_household != household_id:
            errors.append(DomainError("this member is not in the household", field="memberId", code="NOT_FOUND"))
    if data.program_id is not None:
        program_sector = await session.scalar(
            select(Program.sector).where(Program.id == data.program_id, Program.active.is_(True)))
        if program_sector is None:
            errors.append(DomainError("no such program", field="programId", code="NOT_FOUND"))
        elif program_sector != data.sector.value:
            errors.append(DomainError("the program belongs to another sector", field="programId",
                                      code="PROGRAM_SECTOR_MISMATCH"))
    if errors:
        raise ValidationFailed(errors)
    assignee_id = data.assignee_id
    if assignee_id is not None:
        await _assignee(session, actor=actor, staff_id=assignee_id, region_code=region_code)
    elif actor.role in ASSIGNABLE_ROLES:
        assignee_id = actor.id
    days = await sla_days(session, sector=data.sector, program_id=data.program_id)
    complaint = await _insert_filed(session, {
        **filed_values(actor, data, region_code=region_code, assignee_id=assignee_id, days=days, now=now),
        **({} if claimed.reserved is None else {"id": claimed.reserved})})
    await append_event(session, kind=EventKind.COMPLAINT_FILED, actor=actor, region_code=complaint.region_code,
                       household_id=household_id, complaint_id=complaint.id,
                       data=filed_event_data(sector=complaint.sector, priority=complaint.priority,
                                             assignee_id=assignee_id))
    return Filed(complaint, replayed=False)


def filing_errors(data: ComplaintData, *, now: dt.datetime) -> list[DomainError]:
    """What is wrong with a new complaint on its face, before anything is looked up."""
    errors: list[DomainError] = []
    try:
        _description(data.description)
    except ValidationFailed as exc:
        errors += exc.errors
    if data.reported_at is not None:
        if data.reported_at.tzinfo is None:
            errors.append(DomainError("give the report time with its UTC offset, e.g. 2026-11-23T09:30:00+07:00",
                                      field="reportedAt", code="INVALID_TIME"))
        elif data.reported_at > now + dt.timedelta(minutes=10) or data.reported_at < now - dt.timedelta(days=365):
            errors.append(DomainError("the report time is not plausible", field="reportedAt", code="INVALID_TIME"))
    return errors


def filed_values(actor: Actor, data: ComplaintData, *, region_code: str | None, assignee_id: int | None, days: int,
                 now: dt.datetime) -> dict[str, Any]:
    """The columns of a new complaint (``_FILED_COLUMNS``): NEW, its SLA window running from the report."""
    started = data.reported_at or now
    return {
        "household_id": data.household_id, "member_id": data.member_id, "region_code": region_code,
        "kind": data.kind.value, "sector": data.sector.value, "program_id": data.program_id,
        "description": data.description.strip(), "channel": data.channel.value, "priority": data.priority.value,
        "status": S.NEW.value, "assignee_id": assignee_id, "filed_by_id": actor.id, "sla_started_at": started,
        "sla_due_at": started + dt.timedelta(days=days), "reported_at": data.reported_at}


def filed_event_data(*, sector: str, priority: str, assignee_id: int | None) -> dict[str, Any]:
    """The facts of a COMPLAINT_FILED event."""
    return {"status": S.NEW.value, "sector": sector, "priority": priority, "assigneeId": assignee_id, "version": 1}


_COMPLAINTS = Base.metadata.tables[Complaint.__tablename__]
_ASSIGNMENTS = Base.metadata.tables[Assignment.__tablename__]
_FILED_COLUMNS = ("household_id", "member_id", "region_code", "kind", "sector", "program_id", "description",
                  "channel", "priority", "status", "assignee_id", "filed_by_id", "sla_started_at", "sla_due_at",
                  "reported_at")


@functools.cache
def _filing(*, reserved: bool) -> Any:
    """Insert a new complaint (with a reserved id, or the identity's next) and, when it has an assignee, its first
    assignment ("filed", by whoever filed it), in one statement, RETURNING the complaint with the server's
    defaults. Built once: building a statement with CTEs costs more than running it."""
    columns = _FILED_COLUMNS + (("id",) if reserved else ())
    filed = (insert(_COMPLAINTS).values({name: bindparam(name, type_=_COMPLAINTS.c[name].type) for name in columns})
             .returning(*_COMPLAINTS.c).cte("filed"))
    assigned = insert(_ASSIGNMENTS).from_select(
        ["complaint_id", "to_staff_id", "by_staff_id", "reason"],
        select(filed.c.id, filed.c.assignee_id, filed.c.filed_by_id, literal("filed"))
        .where(filed.c.assignee_id.is_not(None)),
    ).cte("assigned")
    return select(filed).add_cte(assigned)


async def _insert_filed(session: AsyncSession, values: dict[str, Any]) -> Complaint:
    """The new complaint and its first assignment (see :func:`_filing`). The complaint is not added to the session:
    nothing changes it later in the operation, and a service that needs it loads it."""
    row = (await session.execute(_filing(reserved="id" in values), values)).one()
    return Complaint(**row._mapping)


async def _locked(session: AsyncSession, *, actor: Actor, complaint_id: int, expected_version: int,
                  op: Op, allowed: frozenset[ComplaintStatus], field: str = "id") -> Complaint:
    actor.require(op)
    complaint = await get_complaint(session, actor=actor, complaint_id=complaint_id, for_update=True, field=field)
    if complaint.version != expected_version:
        raise StaleVersion(current_version=complaint.version)
    if S(complaint.status) not in allowed:
        raise InvalidTransition(f"a {complaint.status.lower()} complaint cannot be changed this way",
                                field="id")
    if actor.role in ASSIGNABLE_ROLES and op in {Op.START_COMPLAINT, Op.RESOLVE_COMPLAINT} and \
            complaint.assignee_id != actor.id:
        raise Forbidden("only the assignee or a supervisor may do this")
    return complaint


async def _apply(session: AsyncSession, complaint: Complaint, *, actor: Actor, kind: EventKind,
                 data: dict[str, Any] | None = None, **values: Any) -> Complaint:
    before = complaint.status
    for name, value in values.items():
        setattr(complaint, name, value)
    complaint.version += 1
    complaint.updated_at = func.now()
    await session.flush()
    await append_event(session, kind=kind, actor=actor, region_code=complaint.region_code,
                       household_id=complaint.household_id, complaint_id=complaint.id,
                       data={"from": before, "status": complaint.status, "assigneeId": complaint.assignee_id,
                             "version": complaint.version, **(data or {})})
    await session.refresh(complaint)
    return complaint


async def verify_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int, expected_version: int,
                           note: str | None = None) -> Complaint:
    c = await _locked(session, actor=actor, complaint_id=complaint_id, expected_version=expected_version,
                      op=Op.VERIFY_COMPLAINT, allowed=frozenset({S.NEW}))
    return await _apply(session, c, actor=actor, kind=EventKind.COMPLAINT_VERIFIED, status=S.VERIFIED.value,
                        status_reason=note.strip() if note and note.strip() else None)


async def return_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int, expected_version: int,
                           reason: str | None) -> Complaint:
    text = _reason(reason)
    c = await _locked(session, actor=actor, complaint_id=complaint_id, expected_version=expected_version,
                      op=Op.RETURN_COMPLAINT, allowed=frozenset({S.NEW, S.VERIFIED}))
    return await _apply(session, c, actor=actor, kind=EventKind.COMPLAINT_RETURNED, status=S.RETURNED.value,
                        status_reason=text)


async def resubmit_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int, expected_version: int,
                             description: str | None = None) -> Complaint:
    c = await _locked(session, actor=actor, complaint_id=complaint_id, expected_version=expected_version,
                      op=Op.RESUBMIT_COMPLAINT, allowed=frozenset({S.RETURNED}))
    if actor.role in ASSIGNABLE_ROLES and actor.id not in {c.assignee_id, c.filed_by_id}:
        raise Forbidden("only the facilitator who holds the case may resubmit it")
    values: dict[str, Any] = {"status": S.NEW.value, "status_reason": None}
    if description is not None:
        values["description"] = _description(description)
    return await _apply(session, c, actor=actor, kind=EventKind.COMPLAINT_RESUBMITTED, **values)


async def reject_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int, expected_version: int,
                           reason: str | None) -> Complaint:
    text = _reason(reason)
    c = await _locked(session, actor=actor, complaint_id=complaint_id, expected_version=expected_version,
                      op=Op.REJECT_COMPLAINT,
                      allowed=frozenset({S.NEW, S.RETURNED, S.VERIFIED, S.IN_PROGRESS, S.REFERRED}))
    await _require_no_open_referrals(session, c)
    return await _apply(session, c, actor=actor, kind=EventKind.COMPLAINT_REJECTED, status=S.REJECTED.value,
                        decision=text, closed_at=func.now())


async def start_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int,
                          expected_version: int) -> Complaint:
    c = await _locked(session, actor=actor, complaint_id=complaint_id, expected_version=expected_version,
                      op=Op.START_COMPLAINT, allowed=frozenset({S.VERIFIED}))
    return await _apply(session, c, actor=actor, kind=EventKind.COMPLAINT_STARTED, status=S.IN_PROGRESS.value)


async def _require_no_open_referrals(session: AsyncSession, complaint: Complaint) -> None:
    open_referrals = await session.scalar(
        select(func.count()).select_from(Referral).where(
            Referral.complaint_id == complaint.id,
            Referral.status.not_in([s.value for s in FINAL_REFERRAL_STATUSES]),
        )
    )
    if open_referrals:
        raise InvalidTransition("finish, reject or revoke this complaint's open referrals first",
                                field="id", code="OPEN_REFERRALS")


async def resolve_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int, expected_version: int,
                            decision: str | None) -> Complaint:
    text = _reason(decision, field="decision")
    c = await _locked(session, actor=actor, complaint_id=complaint_id, expected_version=expected_version,
                      op=Op.RESOLVE_COMPLAINT, allowed=frozenset({S.VERIFIED, S.IN_PROGRESS, S.REFERRED}))
    await _require_no_open_referrals(session, c)
    return await _apply(session, c, actor=actor, kind=EventKind.COMPLAINT_RESOLVED, status=S.RESOLVED.value,
                        decision=text, closed_at=func.now())


async def reopen_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int, expected_version: int,
                           reason: str | None, now: dt.datetime | None = None) -> Complaint:
    text = _reason(reason)
    c = await _locked(session, actor=actor, complaint_id=complaint_id, expected_version=expected_version,
                      op=Op.REOPEN_COMPLAINT, allowed=frozenset({S.RESOLVED, S.REJECTED}))
    now = now or dt.datetime.now(dt.UTC)
    days = await sla_days(session, sector=Sector(c.sector), program_id=c.program_id)
    return await _apply(session, c, actor=actor, kind=EventKind.COMPLAINT_REOPENED, status=S.IN_PROGRESS.value,
                        status_reason=text, decision=None, closed_at=None, sla_started_at=now,
                        sla_due_at=now + dt.timedelta(days=days))


async def reassign_complaint(session: AsyncSession, *, actor: Actor, complaint_id: int, expected_version: int,
                             assignee_id: int, reason: str | None, field_prefix: str = "") -> Complaint:
    text = _reason(reason)
    c = await _locked(session, actor=actor, complaint_id=complaint_id, expected_version=expected_version,
                      op=Op.REASSIGN_COMPLAINT, allowed=frozenset(S) - {S.RESOLVED, S.REJECTED},
                      field=f"{field_prefix}id")
    await _assignee(session, actor=actor, staff_id=assignee_id, region_code=c.region_code,
                    field=f"{field_prefix}assigneeId" if field_prefix else "assigneeId")
    if c.assignee_id == assignee_id:
        raise DomainError("the case is already assigned to this person", field="assigneeId",
                          code="ALREADY_ASSIGNED")
    session.add(Assignment(complaint_id=c.id, from_staff_id=c.assignee_id, to_staff_id=assignee_id,
                           by_staff_id=actor.id, reason=text))
    return await _apply(session, c, actor=actor, kind=EventKind.COMPLAINT_REASSIGNED, assignee_id=assignee_id,
                        data={"previousAssigneeId": c.assignee_id})


@dataclass(frozen=True, slots=True)
class BulkItem:
    complaint_id: int
    expected_version: int


async def bulk_reassign(session: AsyncSession, *, actor: Actor, items: list[BulkItem], assignee_id: int,
                        reason: str | None) -> list[Complaint]:
    """Reassign many cases at once: all of them, or none when any one fails (each failure reported)."""
    actor.require(Op.BULK_REASSIGN)
    _reason(reason)
    if not items or len(items) > MAX_BULK:
        raise ValidationFailed([DomainError(f"give 1 to {MAX_BULK} complaints", field="complaints",
                                            code="INVALID_COUNT")])
    if len({i.complaint_id for i in items}) != len(items):
        raise ValidationFailed([DomainError("a complaint is listed twice", field="complaints", code="DUPLICATE")])
    done: list[Complaint] = []
    errors: list[DomainError] = []
    # lock in id order so two bulk moves over overlapping cases cannot deadlock
    for index, item in sorted(enumerate(items), key=lambda pair: pair[1].complaint_id):
        try:
            async with session.begin_nested():
                done.append(await reassign_complaint(
                    session, actor=actor, complaint_id=item.complaint_id, expected_version=item.expected_version,
                    assignee_id=assignee_id, reason=reason, field_prefix=f"complaints.{index}."))
        except DomainError as exc:
            if exc.field and not exc.field.startswith("complaints."):
                exc.field = f"complaints.{index}.{exc.field}"
            errors.append(exc)
    if errors:
        raise ValidationFailed(errors)
    order = {item.complaint_id: i for i, item in enumerate(items)}
    return sorted(done, key=lambda c: order[c.id])
