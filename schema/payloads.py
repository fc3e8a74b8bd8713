"""Mutation payloads: the object (null on failure) and the typed errors (empty on success)."""

from __future__ import annotations

import strawberry

from schema.errors import AuthError, ComplaintError, HouseholdError, ReferralError
from schema.types.complaints import Complaint
from schema.types.households import Household, Member
from schema.types.reference import Staff
from schema.types.referrals import Referral

F = strawberry.field
ERRORS = "Why the mutation changed nothing; empty on success."
REPLAYED = "True when this is the stored result of an earlier call with the same idempotency key."


@strawberry.type(description="Result of `login` and `refreshToken`.")
class LoginPayload:
    access_token: str | None = F(description="Send as `Authorization: Bearer <token>`; expires after "
                                 "`expiresIn` seconds.")
    refresh_token: str | None = F(description="Exchange for a new access token with `refreshToken`.")
    expires_in: int | None = F(description="Lifetime of the access token in seconds.")
    staff: Staff | None = F(description="Who logged in.")
    errors: list[AuthError] = F(description=ERRORS)


@strawberry.type(description="Result of `registerHousehold`.")
class RegisterHouseholdPayload:
    household: Household | None = F(description="The household registered; on DUPLICATE_KK / DUPLICATE_NIK the "
                                    "existing household when it is in your area.")
    replayed: bool = F(description=REPLAYED)
    errors: list[HouseholdError] = F(description=ERRORS)


@strawberry.type(description="Result of `updateHousehold`.")
class UpdateHouseholdPayload:
    household: Household | None = F(description="The household as it is now.")
    errors: list[HouseholdError] = F(description=ERRORS)


@strawberry.type(description="Result of `addMember`.")
class AddMemberPayload:
    member: Member | None = F(description="The member added.")
    household: Household | None = F(description="The household the member belongs to; on DUPLICATE_NIK the "
                                    "existing one when it is in your area.")
    replayed: bool = F(description=REPLAYED)
    errors: list[HouseholdError] = F(description=ERRORS)


@strawberry.type(description="Result of `fileComplaint`.")
class FileComplaintPayload:
    complaint: Complaint | None = F(description="The complaint filed.")
    replayed: bool = F(description=REPLAYED)
    errors: list[ComplaintError] = F(description=ERRORS)


@strawberry.type(description="Result of a complaint status change or reassignment.")
class ComplaintPayload:
    complaint: Complaint | None = F(description="The complaint as it is now; on STALE_VERSION the current state, "
                                    "so the client can show it.")
    errors: list[ComplaintError] = F(description=ERRORS)


@strawberry.type(description="Result of `bulkReassignComplaints`.")
class BulkReassignComplaintsPayload:
    complaints: list[Complaint] = F(description="The complaints as they are now, in input order (empty on failure).")
    errors: list[ComplaintError] = F(description=ERRORS + " Fields are `complaints.<index>.<field>`.")


@strawberry.type(description="Result of a referral mutation.")
class ReferralPayload:
    referral: Referral | None = F(description="The referral as it is now; on STALE_VERSION the current state.")
    errors: list[ReferralError] = F(description=ERRORS)
