"""Referrals and their status machine.

    DRAFT -> SENT -> ACCEPTED -> COMPLETED (outcome required)
    SENT | ACCEPTED -> REJECTED (reason required)
    DRAFT | SENT | ACCEPTED -> REVOKED (by the sender or a supervisor)

A referral is sent only with the household's consent or a recorded reason to override it. Sending the
first referral moves its complaint to REFERRED; the complaint resolves once every referral is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import ASSIGNABLE_ROLES, Actor, Op
from domain.complaints.models import Complaint
from domain.complaints.service import get_complaint
from domain.enums import FINAL_REFERRAL_STATUSES, ComplaintStatus, ReferralStatus
from domain.errors import DomainError, Forbidden, InvalidTransition, NotFound, StaleVersion, ValidationFailed
from domain.events import EventKind, append_event
from domain.programs import Program
from domain.referrals.models import Referral
from domain.scoping import get_in_scope

R = ReferralStatus
MAX_TEXT = 4000


@dataclass(slots=True)
class ReferralData:
    complaint_id: int
    program_id: int
    consent_given: bool
    receiving_agency: str | None = None
    consent_override_reason: str | None = None
    note: str | None = None


def _text(value: str | None, *, field: str, required: bool) -> str | None:
    if value is None or not value.strip():
        if required:
            raise ValidationFailed([DomainError("this field is required", field=field, code="REASON_REQUIRED")])
        return None
    if len(value) > MAX_TEXT:
        raise ValidationFailed([DomainError(f"at most {MAX_TEXT} characters", field=field, code="TOO_LONG")])
    return value.strip()


async def get_referral(session: AsyncSession, *, actor: Actor, referral_id: int, for_update: bool = False) -> Referral:
    return await get_in_scope(session, Referral, actor=actor, pk=referral_id, region_column=Referral.region_code,
                              for_update=for_update, what="referral")


async def create_referral(session: AsyncSession, *, actor: Actor, data: ReferralData) -> Referral:
    actor.require(Op.PROPOSE_REFERRAL)
    complaint = await get_complaint(session, actor=actor, complaint_id=data.complaint_id, for_update=True,
                                    field="complaintId")
    if complaint.status not in {ComplaintStatus.VERIFIED, ComplaintStatus.IN_PROGRESS, ComplaintStatus.REFERRED}:
        raise InvalidTransition("only a verified complaint that is still open can be referred",
                                field="complaintId")
    if actor.role in ASSIGNABLE_ROLES and complaint.assignee_id != actor.id:
        raise Forbidden("only the assignee or a supervisor may refer this case")
    program = await session.get(Program, data.program_id)
    if program is None or not program.active:
        raise NotFound("no such program", field="programId")
    override = _text(data.consent_override_reason, field="consentOverrideReason", required=False)
    agency = _text(data.receiving_agency, field="receivingAgency", required=False) or program.owner_agency
    note = _text(data.note, field="note", required=False)
    open_same = await session.scalar(
        select(func.count()).select_from(Referral).where(
            Referral.complaint_id == complaint.id, Referral.program_id == program.id,
            Referral.status.not_in([s.value for s in FINAL_REFERRAL_STATUSES]))
    )
    if open_same:
        raise DomainError("this case already has an open referral to this program", field="programId",
                          code="DUPLICATE_REFERRAL")
    referral = Referral(
        complaint_id=complaint.id, program_id=program.id, region_code=complaint.region_code,
        receiving_agency=agency, note=note, consent_given=data.consent_given, consent_override_reason=override,
        status=R.DRAFT.value, created_by_id=actor.id,
    )
    session.add(referral)
    await session.flush()
    await append_event(session, kind=EventKind.REFERRAL_CREATED, actor=actor, region_code=referral.region_code,
                       household_id=complaint.household_id, complaint_id=complaint.id, referral_id=referral.id,
                       data={"status": R.DRAFT.value, "programId": program.id, "version": 1})
    await session.refresh(referral)
    return referral


async def _locked(session: AsyncSession, *, actor: Actor, referral_id: int, expected_version: int, op: Op,
                  allowed: frozenset[ReferralStatus]) -> Referral:
    actor.require(op)
    referral = await get_referral(session, actor=actor, referral_id=referral_id, for_update=True)
    if referral.version != expected_version:
        raise StaleVersion(current_version=referral.version)
    if R(referral.status) not in allowed:
        raise InvalidTransition(f"a {referral.status.lower()} referral cannot be changed this way", field="id")
    return referral


async def _apply(session: AsyncSession, referral: Referral, *, actor: Actor, kind: EventKind,
                 **values: Any) -> Referral:
    before = referral.status
    for name, value in values.items():
        setattr(referral, name, value)
    referral.version += 1
    referral.updated_at = func.now()
    await session.flush()
    household_id = await session.scalar(select(Complaint.household_id).where(Complaint.id == referral.complaint_id))
    await append_event(session, kind=kind, actor=actor, region_code=referral.region_code,
                       household_id=household_id, complaint_id=referral.complaint_id, referral_id=referral.id,
                       data={"from": before, "status": referral.status, "version": referral.version})
    await session.refresh(referral)
    return referral


async def send_referral(session: AsyncSession, *, actor: Actor, referral_id: int, expected_version: int) -> Referral:
    referral = await _locked(session, actor=actor, referral_id=referral_id, expected_version=expected_version,
                             op=Op.SEND_REFERRAL, allowed=frozenset({R.DRAFT}))
    if not referral.consent_given and not referral.consent_override_reason:
        raise DomainError("record the household's consent, or a reason to refer without it", field="id",
                          code="CONSENT_REQUIRED")
    complaint = await get_complaint(session, actor=actor, complaint_id=referral.complaint_id, for_update=True)
    if complaint.status in {ComplaintStatus.VERIFIED, ComplaintStatus.IN_PROGRESS}:
        before = complaint.status
        complaint.status = ComplaintStatus.REFERRED.value
        complaint.version += 1
        complaint.updated_at = func.now()
        await session.flush()
        await append_event(session, kind=EventKind.COMPLAINT_REFERRED, actor=actor,
                           region_code=complaint.region_code, household_id=complaint.household_id,
                           complaint_id=complaint.id,
                           data={"from": before, "status": complaint.status, "assigneeId": complaint.assignee_id,
                                 "version": complaint.version, "referralId": referral.id})
    elif complaint.status != ComplaintStatus.REFERRED:
        raise InvalidTransition("the complaint is no longer open", field="id")
    return await _apply(session, referral, actor=actor, kind=EventKind.REFERRAL_SENT, status=R.SENT.value,
                        sent_at=func.now())


async def accept_referral(session: AsyncSession, *, actor: Actor, referral_id: int,
                          expected_version: int) -> Referral:
    referral = await _locked(session, actor=actor, referral_id=referral_id, expected_version=expected_version,
                             op=Op.RECORD_REFERRAL_RESPONSE, allowed=frozenset({R.SENT}))
    return await _apply(session, referral, actor=actor, kind=EventKind.REFERRAL_ACCEPTED, status=R.ACCEPTED.value,
                        responded_at=func.now())


async def reject_referral(session: AsyncSession, *, actor: Actor, referral_id: int, expected_version: int,
                          reason: str | None) -> Referral:
    text = _text(reason, field="reason", required=True)
    referral = await _locked(session, actor=actor, referral_id=referral_id, expected_version=expected_version,
                             op=Op.RECORD_REFERRAL_RESPONSE, allowed=frozenset({R.SENT, R.ACCEPTED}))
    return await _apply(session, referral, actor=actor, kind=EventKind.REFERRAL_REJECTED, status=R.REJECTED.value,
                        rejection_reason=text, responded_at=func.now())


async def revoke_referral(session: AsyncSession, *, actor: Actor, referral_id: int, expected_version: int,
                          reason: str | None) -> Referral:
    text = _text(reason, field="reason", required=True)
    referral = await _locked(session, actor=actor, referral_id=referral_id, expected_version=expected_version,
                             op=Op.PROPOSE_REFERRAL, allowed=frozenset({R.DRAFT, R.SENT, R.ACCEPTED}))
    if referral.created_by_id != actor.id and not actor.may(Op.REVOKE_REFERRAL):
        raise Forbidden("only the sender or a supervisor may revoke a referral")
    return await _apply(session, referral, actor=actor, kind=EventKind.REFERRAL_REVOKED, status=R.REVOKED.value,
                        revocation_reason=text)


async def complete_referral(session: AsyncSession, *, actor: Actor, referral_id: int, expected_version: int,
                            outcome: str | None) -> Referral:
    text = _text(outcome, field="outcome", required=True)
    referral = await _locked(session, actor=actor, referral_id=referral_id, expected_version=expected_version,
                             op=Op.RECORD_REFERRAL_RESPONSE, allowed=frozenset({R.ACCEPTED}))
    return await _apply(session, referral, actor=actor, kind=EventKind.REFERRAL_COMPLETED,
                        status=R.COMPLETED.value, outcome=text, completed_at=func.now())
