"""The root Mutation type: every change goes through one of these, input + payload + typed errors."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import admin, auth, complaints, households, intake, referrals
from schema import inputs
from schema import payloads as p
from schema.types.admin import (
    CreateApiKeyInput,
    CreateApiKeyPayload,
    CreateUserInput,
    CreateUserPayload,
    RevokeApiKeyPayload,
)
from schema.types.intake import SubmitIntakeBatchInput, SubmitIntakeBatchPayload
from server.context import Context

Info = strawberry.Info[Context, None]
M = strawberry.mutation
A = strawberry.argument
INPUT = A(description="What to do; see the input type.")
STALE = " A stale `expectedVersion` changes nothing and returns STALE_VERSION with the current state."


@strawberry.type(description="Registering, filing, verifying, assigning and referring.")
class Mutation:
    @M(description="Log in with username and password; returns an access and a refresh token.")
    async def login(
        self,
        info: Info,
        username: Annotated[str, A(description="Login name.")],
        password: Annotated[str, A(description="Password.")],
    ) -> p.LoginPayload:
        return await auth.login(info, username, password)

    @M(description="Exchange a refresh token for a new access token.")
    async def refresh_token(
        self, info: Info, refresh_token: Annotated[str, A(description="The refresh token from `login`.")]
    ) -> p.LoginPayload:
        return await auth.refresh_token(info, refresh_token)

    @M(
        description="Register a household with its family cards and members. An already registered No. KK or "
        "NIK changes nothing and returns the existing household with DUPLICATE_KK / DUPLICATE_NIK."
    )
    async def register_household(
        self, info: Info, input: Annotated[inputs.RegisterHouseholdInput, INPUT]
    ) -> p.RegisterHouseholdPayload:
        return await households.register_household(info, input)

    @M(description="Change a household's address, location, registry status or indicators." + STALE)
    async def update_household(
        self, info: Info, input: Annotated[inputs.UpdateHouseholdInput, INPUT]
    ) -> p.UpdateHouseholdPayload:
        return await households.update_household(info, input)

    @M(description="Add a member to a registered household.")
    async def add_member(self, info: Info, input: Annotated[inputs.AddMemberInput, INPUT]) -> p.AddMemberPayload:
        return await households.add_member(info, input)

    @M(description="File a complaint for a household; its service-level time comes from the program or sector.")
    async def file_complaint(
        self, info: Info, input: Annotated[inputs.FileComplaintInput, INPUT]
    ) -> p.FileComplaintPayload:
        return await complaints.file_complaint(info, input)

    @M(description="NEW -> VERIFIED (supervisors)." + STALE)
    async def verify_complaint(
        self, info: Info, input: Annotated[inputs.ComplaintTransitionInput, INPUT]
    ) -> p.ComplaintPayload:
        return await complaints.verify_complaint(info, input)

    @M(
        description="NEW or VERIFIED -> RETURNED to the facilitator for correction, with a reason (supervisors)."
        + STALE
    )
    async def return_complaint(
        self, info: Info, input: Annotated[inputs.ComplaintTransitionInput, INPUT]
    ) -> p.ComplaintPayload:
        return await complaints.return_complaint(info, input)

    @M(description="RETURNED -> NEW after correction (the facilitator holding the case)." + STALE)
    async def resubmit_complaint(
        self, info: Info, input: Annotated[inputs.ResubmitComplaintInput, INPUT]
    ) -> p.ComplaintPayload:
        return await complaints.resubmit_complaint(info, input)

    @M(description="Reject an open complaint, recording the reason as its decision (supervisors)." + STALE)
    async def reject_complaint(
        self, info: Info, input: Annotated[inputs.ComplaintTransitionInput, INPUT]
    ) -> p.ComplaintPayload:
        return await complaints.reject_complaint(info, input)

    @M(description="VERIFIED -> IN_PROGRESS: the assignee takes the case up." + STALE)
    async def start_complaint(
        self, info: Info, input: Annotated[inputs.ComplaintTransitionInput, INPUT]
    ) -> p.ComplaintPayload:
        return await complaints.start_complaint(info, input)

    @M(description="Resolve a verified complaint with a decision, once all its referrals are final." + STALE)
    async def resolve_complaint(
        self, info: Info, input: Annotated[inputs.ResolveComplaintInput, INPUT]
    ) -> p.ComplaintPayload:
        return await complaints.resolve_complaint(info, input)

    @M(
        description="RESOLVED or REJECTED -> IN_PROGRESS with a reason; restarts the service-level clock "
        "(supervisors)." + STALE
    )
    async def reopen_complaint(
        self, info: Info, input: Annotated[inputs.ComplaintTransitionInput, INPUT]
    ) -> p.ComplaintPayload:
        return await complaints.reopen_complaint(info, input)

    @M(
        description="Move an open complaint to another facilitator or officer covering its village, with a "
        "reason (supervisors)." + STALE
    )
    async def reassign_complaint(
        self, info: Info, input: Annotated[inputs.ReassignComplaintInput, INPUT]
    ) -> p.ComplaintPayload:
        return await complaints.reassign_complaint(info, input)

    @M(
        description="Move up to 500 open complaints to one assignee: all of them, or none when any fails "
        "(each failure is reported)."
    )
    async def bulk_reassign_complaints(
        self, info: Info, input: Annotated[inputs.BulkReassignComplaintsInput, INPUT]
    ) -> p.BulkReassignComplaintsPayload:
        return await complaints.bulk_reassign_complaints(info, input)

    @M(description="Propose a referral of a verified complaint to a program (DRAFT).")
    async def create_referral(
        self, info: Info, input: Annotated[inputs.CreateReferralInput, INPUT]
    ) -> p.ReferralPayload:
        return await referrals.create_referral(info, input)

    @M(description="DRAFT -> SENT, given consent or an override reason; the complaint becomes REFERRED." + STALE)
    async def send_referral(
        self, info: Info, input: Annotated[inputs.ReferralTransitionInput, INPUT]
    ) -> p.ReferralPayload:
        return await referrals.send_referral(info, input)

    @M(description="SENT -> ACCEPTED: record the receiving agency's acceptance." + STALE)
    async def accept_referral(
        self, info: Info, input: Annotated[inputs.ReferralTransitionInput, INPUT]
    ) -> p.ReferralPayload:
        return await referrals.accept_referral(info, input)

    @M(description="SENT or ACCEPTED -> REJECTED: record the agency's refusal and its reason." + STALE)
    async def reject_referral(
        self, info: Info, input: Annotated[inputs.ReferralTransitionInput, INPUT]
    ) -> p.ReferralPayload:
        return await referrals.reject_referral(info, input)

    @M(description="DRAFT, SENT or ACCEPTED -> REVOKED by the sender or a supervisor, with a reason." + STALE)
    async def revoke_referral(
        self, info: Info, input: Annotated[inputs.ReferralTransitionInput, INPUT]
    ) -> p.ReferralPayload:
        return await referrals.revoke_referral(info, input)

    @M(description="ACCEPTED -> COMPLETED, recording the outcome." + STALE)
    async def complete_referral(
        self, info: Info, input: Annotated[inputs.CompleteReferralInput, INPUT]
    ) -> p.ReferralPayload:
        return await referrals.complete_referral(info, input)

    @M(description="Create a staff or partner account (admins).")
    async def create_user(self, info: Info, input: Annotated[CreateUserInput, INPUT]) -> CreateUserPayload:
        return await admin.create_user(info, input)

    @M(description="Create an API key for a partner account (admins); the key is returned once.")
    async def create_api_key(self, info: Info, input: Annotated[CreateApiKeyInput, INPUT]) -> CreateApiKeyPayload:
        return await admin.create_api_key(info, input)

    @M(description="Revoke an API key at once (admins).")
    async def revoke_api_key(
        self, info: Info, id: Annotated[strawberry.ID, A(description="Global id of the key.")]
    ) -> RevokeApiKeyPayload:
        return await admin.revoke_api_key(info, id)

    @M(description="Offline sync: many households, household updates, complaints and referral proposals collected "
       "on a tablet, each with its own idempotency key; one result per item. Good items are stored, bad ones "
       "reported; re-sending the batch changes nothing; server-side edits are reported as CONFLICT, never "
       "overwritten.")
    async def submit_intake_batch(
        self, info: Info, input: Annotated[SubmitIntakeBatchInput, INPUT]
    ) -> SubmitIntakeBatchPayload:
        return await intake.submit_intake_batch(info, input)
