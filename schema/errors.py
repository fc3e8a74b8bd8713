"""Typed payload errors. Each mutation has its own error type (``<Mutation>Error``) with ``field``,
``message`` and a ``code`` from its area's enum; the codes are stable and documented here."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any, ClassVar, TypeVar

import strawberry

from domain.errors import DomainError, ValidationFailed
from server.observability import count_payload_error

log = logging.getLogger(__name__)

DESCRIPTIONS: dict[str, str] = {
    "UNAUTHENTICATED": "No valid credentials were sent.",
    "FORBIDDEN": "Your role may not do this.",
    "NOT_FOUND": "No such object in your area (objects outside your area are reported the same way).",
    "INVALID": "The input breaks a rule; see the message.",
    "INVALID_ID": "Not a global id of the expected type.",
    "REQUIRED": "A required value is missing or blank.",
    "TOO_LONG": "A text is longer than allowed.",
    "TOO_MANY": "A list is longer than allowed.",
    "STALE_VERSION": "The object changed since you read it: reload it, then decide again.",
    "INVALID_TRANSITION": "The object's status does not allow this change.",
    "INVALID_IDEMPOTENCY_KEY": "The idempotency key is empty or longer than 100 characters.",
    "IDEMPOTENCY_KEY_REUSED": "The idempotency key was used before for a different operation.",
    "INVALID_NIK_FORMAT": "A NIK has exactly 16 digits.",
    "NIK_REGION_MISMATCH": "The NIK's first six digits are not the household's kecamatan; declare a NIK issued "
                           "elsewhere with nikFromOtherRegion.",
    "INVALID_NIK_REGION": "The NIK's first six digits are not a region code.",
    "INVALID_NIK_DATE": "The NIK's date digits are not a date.",
    "NIK_BIRTH_DATE_MISMATCH": "The NIK's date digits do not match the birth date.",
    "NIK_SEX_MISMATCH": "The NIK encodes the other sex (40 is added to the day for women).",
    "INVALID_NIK_SERIAL": "The NIK's serial (last four digits) cannot be 0000.",
    "INVALID_KK_FORMAT": "A family card number (No. KK) has exactly 16 digits.",
    "INVALID_KK_REGION": "The family card number does not start with a region code.",
    "DUPLICATE_KK": "The family card is already registered; the payload carries the existing household when it "
                    "is in your area.",
    "DUPLICATE_NIK": "A member with this NIK is already registered; the payload carries the existing household "
                     "when it is in your area.",
    "REGION_NOT_DESA": "Households lie in a desa/kelurahan: give its full code.",
    "INVALID_REGION_CODE": "Not a Kemendagri region code.",
    "INVALID_RT_RW": "RT and RW are numbers of up to three digits.",
    "INVALID_COORDINATES": "Coordinates come in pairs and lie in Indonesia.",
    "UNKNOWN_INDICATOR": "Not one of the 14 poverty indicators.",
    "INVALID_BIRTH_DATE": "The birth date is in the future or before 1900.",
    "INVALID_FAMILY_CARD_INDEX": "No family card at this index.",
    "INVALID_PROGRAMS": "Programs are up to 20 codes of up to 40 characters.",
    "ONE_HEAD_REQUIRED": "A household has exactly one head.",
    "INVALID_TIME": "The time is in the future or more than a year ago.",
    "PROGRAM_SECTOR_MISMATCH": "The program belongs to another sector.",
    "NOT_ASSIGNABLE": "Cases go to active facilitators and Puskesos officers.",
    "ASSIGNEE_OUT_OF_AREA": "The person does not cover the household's village.",
    "ALREADY_ASSIGNED": "The case is already assigned to this person.",
    "REASON_REQUIRED": "This change needs a reason, decision or outcome.",
    "OPEN_REFERRALS": "Finish, reject or revoke the complaint's open referrals first.",
    "INVALID_COUNT": "Give between 1 and 500 items.",
    "DUPLICATE": "An item is listed twice.",
    "DUPLICATE_REFERRAL": "The case already has an open referral to this program.",
    "CONSENT_REQUIRED": "Record the household's consent, or a reason to refer without it.",
    "INVALID_CREDENTIALS": "Wrong username or password.",
    "INVALID_TOKEN": "The token is not valid.",
    "TOKEN_EXPIRED": "The token has expired; log in again or refresh.",
    "INVALID_USERNAME": "Usernames have 3-80 lowercase letters, digits, dots, dashes or underscores.",
    "WEAK_PASSWORD": "Passwords have at least 8 characters.",
    "USERNAME_TAKEN": "The username is taken.",
    "INVALID_CURSOR": "Not a cursor of this list.",
    "OUT_OF_SCOPE": "Outside the regions the account may cover.",
    "INVALID_PAGE_SIZE": "`first` is out of range.",
}


def _v(code: str) -> Any:
    return strawberry.enum_value(code, description=DESCRIPTIONS[code])


@strawberry.enum(description="Error codes of the household mutations.")
class HouseholdErrorCode(Enum):
    UNAUTHENTICATED = _v("UNAUTHENTICATED")
    FORBIDDEN = _v("FORBIDDEN")
    NOT_FOUND = _v("NOT_FOUND")
    INVALID = _v("INVALID")
    INVALID_ID = _v("INVALID_ID")
    REQUIRED = _v("REQUIRED")
    TOO_LONG = _v("TOO_LONG")
    TOO_MANY = _v("TOO_MANY")
    STALE_VERSION = _v("STALE_VERSION")
    INVALID_IDEMPOTENCY_KEY = _v("INVALID_IDEMPOTENCY_KEY")
    IDEMPOTENCY_KEY_REUSED = _v("IDEMPOTENCY_KEY_REUSED")
    INVALID_NIK_FORMAT = _v("INVALID_NIK_FORMAT")
    NIK_REGION_MISMATCH = _v("NIK_REGION_MISMATCH")
    INVALID_NIK_REGION = _v("INVALID_NIK_REGION")
    INVALID_NIK_DATE = _v("INVALID_NIK_DATE")
    NIK_BIRTH_DATE_MISMATCH = _v("NIK_BIRTH_DATE_MISMATCH")
    NIK_SEX_MISMATCH = _v("NIK_SEX_MISMATCH")
    INVALID_NIK_SERIAL = _v("INVALID_NIK_SERIAL")
    INVALID_KK_FORMAT = _v("INVALID_KK_FORMAT")
    INVALID_KK_REGION = _v("INVALID_KK_REGION")
    DUPLICATE_KK = _v("DUPLICATE_KK")
    DUPLICATE_NIK = _v("DUPLICATE_NIK")
    REGION_NOT_DESA = _v("REGION_NOT_DESA")
    INVALID_REGION_CODE = _v("INVALID_REGION_CODE")
    INVALID_RT_RW = _v("INVALID_RT_RW")
    INVALID_COORDINATES = _v("INVALID_COORDINATES")
    UNKNOWN_INDICATOR = _v("UNKNOWN_INDICATOR")
    INVALID_BIRTH_DATE = _v("INVALID_BIRTH_DATE")
    INVALID_FAMILY_CARD_INDEX = _v("INVALID_FAMILY_CARD_INDEX")
    INVALID_PROGRAMS = _v("INVALID_PROGRAMS")
    ONE_HEAD_REQUIRED = _v("ONE_HEAD_REQUIRED")


@strawberry.enum(description="Error codes of the complaint mutations.")
class ComplaintErrorCode(Enum):
    UNAUTHENTICATED = _v("UNAUTHENTICATED")
    FORBIDDEN = _v("FORBIDDEN")
    NOT_FOUND = _v("NOT_FOUND")
    INVALID = _v("INVALID")
    INVALID_ID = _v("INVALID_ID")
    REQUIRED = _v("REQUIRED")
    TOO_LONG = _v("TOO_LONG")
    STALE_VERSION = _v("STALE_VERSION")
    INVALID_TRANSITION = _v("INVALID_TRANSITION")
    INVALID_IDEMPOTENCY_KEY = _v("INVALID_IDEMPOTENCY_KEY")
    IDEMPOTENCY_KEY_REUSED = _v("IDEMPOTENCY_KEY_REUSED")
    INVALID_TIME = _v("INVALID_TIME")
    PROGRAM_SECTOR_MISMATCH = _v("PROGRAM_SECTOR_MISMATCH")
    NOT_ASSIGNABLE = _v("NOT_ASSIGNABLE")
    ASSIGNEE_OUT_OF_AREA = _v("ASSIGNEE_OUT_OF_AREA")
    ALREADY_ASSIGNED = _v("ALREADY_ASSIGNED")
    REASON_REQUIRED = _v("REASON_REQUIRED")
    OPEN_REFERRALS = _v("OPEN_REFERRALS")
    INVALID_COUNT = _v("INVALID_COUNT")
    DUPLICATE = _v("DUPLICATE")


@strawberry.enum(description="Error codes of the referral mutations.")
class ReferralErrorCode(Enum):
    UNAUTHENTICATED = _v("UNAUTHENTICATED")
    FORBIDDEN = _v("FORBIDDEN")
    NOT_FOUND = _v("NOT_FOUND")
    INVALID = _v("INVALID")
    INVALID_ID = _v("INVALID_ID")
    REQUIRED = _v("REQUIRED")
    TOO_LONG = _v("TOO_LONG")
    STALE_VERSION = _v("STALE_VERSION")
    INVALID_TRANSITION = _v("INVALID_TRANSITION")
    REASON_REQUIRED = _v("REASON_REQUIRED")
    DUPLICATE_REFERRAL = _v("DUPLICATE_REFERRAL")
    CONSENT_REQUIRED = _v("CONSENT_REQUIRED")


@strawberry.enum(description="Error codes of login, token refresh and account administration.")
class AuthErrorCode(Enum):
    INVALID_CREDENTIALS = _v("INVALID_CREDENTIALS")
    INVALID_TOKEN = _v("INVALID_TOKEN")
    TOKEN_EXPIRED = _v("TOKEN_EXPIRED")
    UNAUTHENTICATED = _v("UNAUTHENTICATED")
    FORBIDDEN = _v("FORBIDDEN")
    NOT_FOUND = _v("NOT_FOUND")
    INVALID = _v("INVALID")
    INVALID_ID = _v("INVALID_ID")
    REQUIRED = _v("REQUIRED")
    INVALID_USERNAME = _v("INVALID_USERNAME")
    WEAK_PASSWORD = _v("WEAK_PASSWORD")
    USERNAME_TAKEN = _v("USERNAME_TAKEN")
    OUT_OF_SCOPE = _v("OUT_OF_SCOPE")


@strawberry.enum(description="Error codes of batch intake items (any household, complaint or referral code).")
class IntakeErrorCode(Enum):
    UNAUTHENTICATED = _v("UNAUTHENTICATED")
    FORBIDDEN = _v("FORBIDDEN")
    NOT_FOUND = _v("NOT_FOUND")
    INVALID = _v("INVALID")
    INVALID_ID = _v("INVALID_ID")
    REQUIRED = _v("REQUIRED")
    TOO_LONG = _v("TOO_LONG")
    TOO_MANY = _v("TOO_MANY")
    STALE_VERSION = _v("STALE_VERSION")
    INVALID_TRANSITION = _v("INVALID_TRANSITION")
    INVALID_IDEMPOTENCY_KEY = _v("INVALID_IDEMPOTENCY_KEY")
    IDEMPOTENCY_KEY_REUSED = _v("IDEMPOTENCY_KEY_REUSED")
    INVALID_NIK_FORMAT = _v("INVALID_NIK_FORMAT")
    NIK_REGION_MISMATCH = _v("NIK_REGION_MISMATCH")
    INVALID_NIK_REGION = _v("INVALID_NIK_REGION")
    INVALID_NIK_DATE = _v("INVALID_NIK_DATE")
    NIK_BIRTH_DATE_MISMATCH = _v("NIK_BIRTH_DATE_MISMATCH")
    NIK_SEX_MISMATCH = _v("NIK_SEX_MISMATCH")
    INVALID_NIK_SERIAL = _v("INVALID_NIK_SERIAL")
    INVALID_KK_FORMAT = _v("INVALID_KK_FORMAT")
    INVALID_KK_REGION = _v("INVALID_KK_REGION")
    DUPLICATE_KK = _v("DUPLICATE_KK")
    DUPLICATE_NIK = _v("DUPLICATE_NIK")
    REGION_NOT_DESA = _v("REGION_NOT_DESA")
    INVALID_REGION_CODE = _v("INVALID_REGION_CODE")
    INVALID_RT_RW = _v("INVALID_RT_RW")
    INVALID_COORDINATES = _v("INVALID_COORDINATES")
    UNKNOWN_INDICATOR = _v("UNKNOWN_INDICATOR")
    INVALID_BIRTH_DATE = _v("INVALID_BIRTH_DATE")
    INVALID_FAMILY_CARD_INDEX = _v("INVALID_FAMILY_CARD_INDEX")
    INVALID_PROGRAMS = _v("INVALID_PROGRAMS")
    ONE_HEAD_REQUIRED = _v("ONE_HEAD_REQUIRED")
    INVALID_TIME = _v("INVALID_TIME")
    PROGRAM_SECTOR_MISMATCH = _v("PROGRAM_SECTOR_MISMATCH")
    NOT_ASSIGNABLE = _v("NOT_ASSIGNABLE")
    ASSIGNEE_OUT_OF_AREA = _v("ASSIGNEE_OUT_OF_AREA")
    ALREADY_ASSIGNED = _v("ALREADY_ASSIGNED")
    REASON_REQUIRED = _v("REASON_REQUIRED")
    OPEN_REFERRALS = _v("OPEN_REFERRALS")
    INVALID_COUNT = _v("INVALID_COUNT")
    DUPLICATE = _v("DUPLICATE")
    DUPLICATE_REFERRAL = _v("DUPLICATE_REFERRAL")
    CONSENT_REQUIRED = _v("CONSENT_REQUIRED")


@strawberry.type
class _Error:
    field: str | None = strawberry.field(description="Input path of the offending value (e.g. `members.0.nik`), "
                                         "or null when the whole input is concerned.")
    message: str = strawberry.field(description="What is wrong, in English; clients translate by `code`.")


E = TypeVar("E", bound=_Error)


@strawberry.type(description="An error of a household mutation.")
class HouseholdError(_Error):
    codes: ClassVar[type[Enum]] = HouseholdErrorCode
    code: HouseholdErrorCode = strawberry.field(description="Stable error code.")


@strawberry.type(description="An error of a complaint mutation.")
class ComplaintError(_Error):
    codes: ClassVar[type[Enum]] = ComplaintErrorCode
    code: ComplaintErrorCode = strawberry.field(description="Stable error code.")


@strawberry.type(description="An error of a referral mutation.")
class ReferralError(_Error):
    codes: ClassVar[type[Enum]] = ReferralErrorCode
    code: ReferralErrorCode = strawberry.field(description="Stable error code.")


@strawberry.type(description="An error of login or token refresh.")
class AuthError(_Error):
    codes: ClassVar[type[Enum]] = AuthErrorCode
    code: AuthErrorCode = strawberry.field(description="Stable error code.")


@strawberry.type(description="An error of a batch intake item, or of the batch as a whole.")
class IntakeError(_Error):
    codes: ClassVar[type[Enum]] = IntakeErrorCode
    code: IntakeErrorCode = strawberry.field(description="Stable error code.")


def errors_of(exc: DomainError, cls: type[E]) -> list[E]:
    """The payload errors for a domain error (several for a failed validation)."""
    items = exc.errors if isinstance(exc, ValidationFailed) else [exc]
    codes: type[Enum] = cls.codes  # type: ignore[attr-defined]
    out = []
    for item in items:
        try:
            code = codes[item.code]
        except KeyError:
            log.error("domain error code %s is not declared in %s", item.code, codes.__name__)
            code = codes["INVALID"] if "INVALID" in codes.__members__ else next(iter(codes))
        count_payload_error(code.name)
        out.append(cls(field=item.field, message=item.message, code=code))  # type: ignore[call-arg]
    return out
