"""NIK (*Nomor Induk Kependudukan*) and No. KK rules.

A NIK is 16 digits: province (2), kabupaten/kota (2), kecamatan (2), birth date DDMMYY with 40 added
to the day for women, and a serial (4, never 0000). The registry (DTKS) records people who have no
NIK with placeholder numbers made of one repeated digit (``0000000000000000``, ``9999999999999999``);
those are accepted as placeholders, carry no identity and are never deduplicated.

A NIK is issued where a person was first registered and does not change when they move, so a number
from another kecamatan is not an error in itself: it must be declared (``nikFromOtherRegion``) and is
otherwise rejected as a likely typing mistake.
"""

from __future__ import annotations

import datetime as dt
import re

from domain.enums import NikStatus, Sex
from domain.errors import DomainError

_DIGITS16 = re.compile(r"[0-9]{16}")


class NikError(DomainError):
    code = "INVALID_NIK"


def is_placeholder(number: str) -> bool:
    return bool(_DIGITS16.fullmatch(number)) and len(set(number)) == 1


def normalise(number: str) -> str:
    """Strip the spaces, dots and dashes people type between digit groups."""
    return re.sub(r"[\s.\-]", "", number)


def validate_nik(
    number: str,
    *,
    region_code: str,
    birth_date: dt.date,
    sex: Sex,
    from_other_region: bool = False,
    field: str = "nik",
) -> NikStatus:
    """Check a NIK against the member's region, birth date and sex; raise :class:`NikError` on the
    first broken rule (each with its own ``code``)."""
    if not _DIGITS16.fullmatch(number):
        raise NikError("a NIK has exactly 16 digits", field=field, code="INVALID_NIK_FORMAT")
    if is_placeholder(number):
        return NikStatus.PLACEHOLDER
    prefix = "".join(region_code.split(".")[:3])
    if len(prefix) == 6 and number[:6] != prefix and not from_other_region:
        raise NikError(
            "the NIK's region digits do not match the household's kecamatan; declare a NIK issued "
            "elsewhere with nikFromOtherRegion",
            field=field,
            code="NIK_REGION_MISMATCH",
        )
    if number[:2] in {"00"} or number[2:4] == "00" or number[4:6] == "00":
        raise NikError("the NIK's region digits are not a region code", field=field, code="INVALID_NIK_REGION")
    day, month, year = int(number[6:8]), int(number[8:10]), int(number[10:12])
    female = day > 40
    if female:
        day -= 40
    if not (1 <= day <= 31 and 1 <= month <= 12):
        raise NikError("the NIK's date digits are not a date", field=field, code="INVALID_NIK_DATE")
    if (day, month, year) != (birth_date.day, birth_date.month, birth_date.year % 100):
        raise NikError("the NIK's date digits do not match the birth date", field=field,
                       code="NIK_BIRTH_DATE_MISMATCH")
    if female != (sex is Sex.FEMALE):
        raise NikError("the NIK's date digits encode the other sex (day + 40 for women)", field=field,
                       code="NIK_SEX_MISMATCH")
    if number[12:] == "0000":
        raise NikError("the NIK's serial cannot be 0000", field=field, code="INVALID_NIK_SERIAL")
    return NikStatus.VALID


def validate_kk(number: str, *, field: str = "number") -> None:
    """A No. KK is 16 digits of which the first six are a region code; placeholders are not accepted."""
    if not _DIGITS16.fullmatch(number):
        raise DomainError("a family card number (No. KK) has exactly 16 digits", field=field,
                          code="INVALID_KK_FORMAT")
    if is_placeholder(number) or number[:2] == "00" or number[2:4] == "00" or number[4:6] == "00":
        raise DomainError("the family card number does not start with a region code", field=field,
                          code="INVALID_KK_REGION")
