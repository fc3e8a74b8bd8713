"""createReferral and the referral status changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.errors import DomainError
from domain.referrals import service
from domain.referrals.models import Referral as ReferralRow
from domain.referrals.service import ReferralData
from resolvers.common import Info, attempt, pk
from schema.errors import ReferralError, errors_of
from schema.inputs import CompleteReferralInput, CreateReferralInput, ReferralTransitionInput
from schema.payloads import ReferralPayload
from schema.types.referrals import Referral

Transition = Callable[[AsyncSession, Actor, int], Awaitable[ReferralRow]]


async def create_referral(info: Info, input: CreateReferralInput) -> ReferralPayload:
    try:
        data = ReferralData(
            complaint_id=pk(input.complaint_id, "Complaint", field="complaintId"),
            program_id=pk(input.program_id, "Program", field="programId"), consent_given=input.consent_given,
            consent_override_reason=input.consent_override_reason, receiving_agency=input.receiving_agency,
            note=input.note)
        row = await attempt(info, lambda s, a: service.create_referral(s, actor=a, data=data))
    except DomainError as exc:
        return ReferralPayload(referral=None, errors=errors_of(exc, ReferralError))
    return ReferralPayload(referral=Referral.from_row(row), errors=[])


async def _transition(info: Info, input: ReferralTransitionInput | CompleteReferralInput,
                      work: Transition) -> ReferralPayload:
    try:
        referral_id = pk(input.id, "Referral")
        row = await attempt(info, lambda s, a: work(s, a, referral_id))
    except DomainError as exc:
        current = None
        if exc.code == "STALE_VERSION":
            found = await info.context.loaders.referral.load(pk(input.id, "Referral"))
            current = Referral.from_row(found) if found else None
        return ReferralPayload(referral=current, errors=errors_of(exc, ReferralError))
    return ReferralPayload(referral=Referral.from_row(row), errors=[])


async def send_referral(info: Info, input: ReferralTransitionInput) -> ReferralPayload:
    return await _transition(info, input, lambda s, a, i: service.send_referral(
        s, actor=a, referral_id=i, expected_version=input.expected_version))


async def accept_referral(info: Info, input: ReferralTransitionInput) -> ReferralPayload:
    return await _transition(info, input, lambda s, a, i: service.accept_referral(
        s, actor=a, referral_id=i, expected_version=input.expected_version))


async def reject_referral(info: Info, input: ReferralTransitionInput) -> ReferralPayload:
    return await _transition(info, input, lambda s, a, i: service.reject_referral(
        s, actor=a, referral_id=i, expected_version=input.expected_version, reason=input.reason))


async def revoke_referral(info: Info, input: ReferralTransitionInput) -> ReferralPayload:
    return await _transition(info, input, lambda s, a, i: service.revoke_referral(
        s, actor=a, referral_id=i, expected_version=input.expected_version, reason=input.reason))


async def complete_referral(info: Info, input: CompleteReferralInput) -> ReferralPayload:
    return await _transition(info, input, lambda s, a, i: service.complete_referral(
        s, actor=a, referral_id=i, expected_version=input.expected_version, outcome=input.outcome))
