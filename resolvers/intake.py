"""submitIntakeBatch: parse each item, hand the batch to :func:`domain.intake.submit_batch`, map results."""

from __future__ import annotations

from domain import intake
from domain.complaints.service import ComplaintData
from domain.enums import Channel, ComplaintKind, Priority, Sector
from domain.errors import DomainError, ValidationFailed
from domain.referrals.service import ReferralData
from resolvers.common import Info, attempt, aware, optional_pk, pk
from resolvers.households import household_changes, household_data
from schema.errors import IntakeError, errors_of
from schema.types.complaints import Complaint
from schema.types.households import Household
from schema.types.intake import (
    IntakeItemInput,
    IntakeItemResult,
    IntakeItemStatus,
    SubmitIntakeBatchInput,
    SubmitIntakeBatchPayload,
)
from schema.types.referrals import Referral


def _item(index: int, given: IntakeItemInput) -> intake.IntakeItem:
    prefix = f"items.{index}"
    item = intake.IntakeItem(idempotency_key=given.idempotency_key,
                             client_timestamp=aware(given.client_timestamp, field=f"{prefix}.clientTimestamp"))
    if given.household is not None:
        item.household = household_data(given.household)
    if given.household_update is not None:
        u = given.household_update
        item.household_update = (pk(u.id, "Household", field=f"{prefix}.householdUpdate.id"), u.expected_version,
                                 household_changes(u))
    if given.complaint is not None:
        c = given.complaint
        if (c.household_id is None) == (c.household_key is None):
            raise ValidationFailed([DomainError("give the household's id or its item's key", code="REQUIRED",
                                                field=f"{prefix}.complaint.householdId")])
        item.complaint = ComplaintData(
            household_id=optional_pk(c.household_id, "Household", field=f"{prefix}.complaint.householdId") or 0,
            member_id=optional_pk(c.member_id, "Member", field=f"{prefix}.complaint.memberId"),
            program_id=optional_pk(c.program_id, "Program", field=f"{prefix}.complaint.programId"),
            kind=ComplaintKind(c.kind), sector=Sector(c.sector), description=c.description,
            channel=Channel(c.channel), priority=Priority(c.priority),
            reported_at=aware(c.reported_at, field=f"{prefix}.complaint.reportedAt"))
        item.complaint_household_key = c.household_key
    if given.referral is not None:
        r = given.referral
        if (r.complaint_id is None) == (r.complaint_key is None):
            raise ValidationFailed([DomainError("give the complaint's id or its item's key", code="REQUIRED",
                                                field=f"{prefix}.referral.complaintId")])
        item.referral = ReferralData(
            complaint_id=optional_pk(r.complaint_id, "Complaint", field=f"{prefix}.referral.complaintId") or 0,
            program_id=pk(r.program_id, "Program", field=f"{prefix}.referral.programId"),
            consent_given=r.consent_given, consent_override_reason=r.consent_override_reason, note=r.note)
        item.referral_complaint_key = r.complaint_key
    return item


async def _result(info: Info, r: intake.ItemResult) -> IntakeItemResult:
    loaders = info.context.loaders
    household = await loaders.household.load(r.household_id) if r.household_id else None
    complaint = await loaders.complaint.load(r.complaint_id) if r.complaint_id else None
    referral = await loaders.referral.load(r.referral_id) if r.referral_id else None
    error = ValidationFailed(r.errors) if r.errors else None
    return IntakeItemResult(
        idempotency_key=r.idempotency_key, status=IntakeItemStatus[r.status.value], replayed=r.replayed,
        household=Household.from_row(household) if household else None,
        complaint=Complaint.from_row(complaint) if complaint else None,
        referral=Referral.from_row(referral) if referral else None,
        errors=errors_of(error, IntakeError) if error else [])


async def submit_intake_batch(info: Info, input: SubmitIntakeBatchInput) -> SubmitIntakeBatchPayload:
    if not input.items or len(input.items) > intake.MAX_ITEMS:
        count = DomainError(f"send 1 to {intake.MAX_ITEMS} items", field="items", code="INVALID_COUNT")
        return SubmitIntakeBatchPayload(results=[], errors=errors_of(count, IntakeError))
    parsed: list[intake.IntakeItem] = []
    early: dict[int, intake.ItemResult] = {}
    for index, given in enumerate(input.items):
        try:
            parsed.append(_item(index, given))
        except DomainError as exc:
            errors = exc.errors if isinstance(exc, ValidationFailed) else [exc]
            early[index] = intake.ItemResult(given.idempotency_key, intake.ItemStatus.REJECTED, errors=errors)
            parsed.append(intake.IntakeItem(idempotency_key=given.idempotency_key))
    to_apply = [p for i, p in enumerate(parsed) if i not in early]
    try:
        results = await attempt(info, lambda s, a: intake.submit_batch(
            s, actor=a, cipher=info.context.cipher, items=to_apply)) if to_apply else []
    except DomainError as exc:
        return SubmitIntakeBatchPayload(results=[], errors=errors_of(exc, IntakeError))
    applied = iter(results)
    merged = [early[i] if i in early else next(applied) for i in range(len(parsed))]
    return SubmitIntakeBatchPayload(results=[await _result(info, r) for r in merged], errors=[])
