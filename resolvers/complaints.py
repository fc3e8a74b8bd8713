"""fileComplaint and the complaint status changes and reassignments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.complaints import service
from domain.complaints.models import Complaint as ComplaintRow
from domain.complaints.service import BulkItem, ComplaintData
from domain.enums import Channel, ComplaintKind, Priority, Sector
from domain.errors import DomainError
from resolvers.common import Info, attempt, optional_pk, pk
from schema.errors import ComplaintError, errors_of
from schema.inputs import (
    BulkReassignComplaintsInput,
    ComplaintTransitionInput,
    FileComplaintInput,
    ReassignComplaintInput,
    ResolveComplaintInput,
    ResubmitComplaintInput,
)
from schema.payloads import BulkReassignComplaintsPayload, ComplaintPayload, FileComplaintPayload
from schema.types.complaints import Complaint

Transition = Callable[[AsyncSession, Actor, int], Awaitable[ComplaintRow]]


def complaint_data(input: FileComplaintInput) -> ComplaintData:
    """The service's data of a ``fileComplaint`` input (a malformed id raises its typed error)."""
    return ComplaintData(
        household_id=pk(input.household_id, "Household", field="householdId"),
        member_id=optional_pk(input.member_id, "Member", field="memberId"),
        program_id=optional_pk(input.program_id, "Program", field="programId"),
        assignee_id=optional_pk(input.assignee_id, "Staff", field="assigneeId"),
        kind=ComplaintKind(input.kind), sector=Sector(input.sector), description=input.description,
        channel=Channel(input.channel), priority=Priority(input.priority), reported_at=input.reported_at)


async def file_complaint(info: Info, input: FileComplaintInput) -> FileComplaintPayload:
    """(A plain filing by a known account usually takes the compiled path instead: ``resolvers.compiled``.)"""
    try:
        data = complaint_data(input)
        filed = await attempt(info, lambda s, a: service.file_complaint(
            s, actor=a, data=data, idempotency_key=input.idempotency_key))
    except DomainError as exc:
        return FileComplaintPayload(complaint=None, replayed=False, errors=errors_of(exc, ComplaintError))
    return FileComplaintPayload(complaint=Complaint.from_row(filed.complaint), replayed=filed.replayed, errors=[])


async def _transition(info: Info, gid: str, work: Transition) -> ComplaintPayload:
    try:
        complaint_id = pk(gid, "Complaint")
        row = await attempt(info, lambda s, a: work(s, a, complaint_id))
    except DomainError as exc:
        current = None
        if exc.code == "STALE_VERSION":
            found = await info.context.loaders.complaint.load(pk(gid, "Complaint"))
            current = Complaint.from_row(found) if found else None
        return ComplaintPayload(complaint=current, errors=errors_of(exc, ComplaintError))
    return ComplaintPayload(complaint=Complaint.from_row(row), errors=[])


async def verify_complaint(info: Info, input: ComplaintTransitionInput) -> ComplaintPayload:
    return await _transition(info, input.id, lambda s, a, i: service.verify_complaint(
        s, actor=a, complaint_id=i, expected_version=input.expected_version, note=input.reason))


async def return_complaint(info: Info, input: ComplaintTransitionInput) -> ComplaintPayload:
    return await _transition(info, input.id, lambda s, a, i: service.return_complaint(
        s, actor=a, complaint_id=i, expected_version=input.expected_version, reason=input.reason))


async def resubmit_complaint(info: Info, input: ResubmitComplaintInput) -> ComplaintPayload:
    return await _transition(info, input.id, lambda s, a, i: service.resubmit_complaint(
        s, actor=a, complaint_id=i, expected_version=input.expected_version, description=input.description))


async def reject_complaint(info: Info, input: ComplaintTransitionInput) -> ComplaintPayload:
    return await _transition(info, input.id, lambda s, a, i: service.reject_complaint(
        s, actor=a, complaint_id=i, expected_version=input.expected_version, reason=input.reason))


async def start_complaint(info: Info, input: ComplaintTransitionInput) -> ComplaintPayload:
    return await _transition(info, input.id, lambda s, a, i: service.start_complaint(
        s, actor=a, complaint_id=i, expected_version=input.expected_version))


async def resolve_complaint(info: Info, input: ResolveComplaintInput) -> ComplaintPayload:
    return await _transition(info, input.id, lambda s, a, i: service.resolve_complaint(
        s, actor=a, complaint_id=i, expected_version=input.expected_version, decision=input.decision))


async def reopen_complaint(info: Info, input: ComplaintTransitionInput) -> ComplaintPayload:
    return await _transition(info, input.id, lambda s, a, i: service.reopen_complaint(
        s, actor=a, complaint_id=i, expected_version=input.expected_version, reason=input.reason))


async def reassign_complaint(info: Info, input: ReassignComplaintInput) -> ComplaintPayload:
    try:
        assignee_id = pk(input.assignee_id, "Staff", field="assigneeId")
    except DomainError as exc:
        return ComplaintPayload(complaint=None, errors=errors_of(exc, ComplaintError))
    return await _transition(info, input.id, lambda s, a, i: service.reassign_complaint(
        s, actor=a, complaint_id=i, expected_version=input.expected_version, assignee_id=assignee_id,
        reason=input.reason))


async def bulk_reassign_complaints(info: Info, input: BulkReassignComplaintsInput) -> BulkReassignComplaintsPayload:
    try:
        items = [BulkItem(complaint_id=pk(item.id, "Complaint", field=f"complaints.{i}.id"),
                          expected_version=item.expected_version) for i, item in enumerate(input.complaints)]
        assignee_id = pk(input.assignee_id, "Staff", field="assigneeId")
        rows = await attempt(info, lambda s, a: service.bulk_reassign(
            s, actor=a, items=items, assignee_id=assignee_id, reason=input.reason))
    except DomainError as exc:
        return BulkReassignComplaintsPayload(complaints=[], errors=errors_of(exc, ComplaintError))
    return BulkReassignComplaintsPayload(complaints=[Complaint.from_row(r) for r in rows], errors=[])
