"""Importing household lists as district offices keep them (CSV or XLSX): one row per person, grouped
into households by family card number (No. KK).

Each household goes through the same registration service as the API (NIK checks, dedup, events). The
choice, documented in the CLI's help and the README: by default the good households are imported and every
bad row is reported with its line number and reason; with ``all_or_nothing`` a single bad row imports
nothing. Either way no half-registered household is ever left behind (each one is its own savepoint).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.crypto import PersonalDataCipher
from domain.enums import DtksStatus, Relation, Sex
from domain.errors import DomainError, ValidationFailed
from domain.events import PENDING_EVENTS
from domain.households import service as households

COLUMNS = ("no_kk", "nik", "nama", "jenis_kelamin", "tanggal_lahir", "hubungan", "kode_wilayah", "alamat", "rt",
           "rw", "status_dtks")
REQUIRED = ("no_kk", "nama", "jenis_kelamin", "tanggal_lahir", "hubungan", "kode_wilayah", "alamat")

SEX = {"L": Sex.MALE, "LAKI-LAKI": Sex.MALE, "LAKI LAKI": Sex.MALE, "MALE": Sex.MALE,
       "P": Sex.FEMALE, "PEREMPUAN": Sex.FEMALE, "FEMALE": Sex.FEMALE}
RELATION = {
    "KEPALA KELUARGA": Relation.HEAD, "KK": Relation.HEAD, "HEAD": Relation.HEAD,
    "ISTRI": Relation.SPOUSE, "SUAMI": Relation.SPOUSE, "SPOUSE": Relation.SPOUSE,
    "ANAK": Relation.CHILD, "CHILD": Relation.CHILD, "MENANTU": Relation.CHILD_IN_LAW, "CUCU": Relation.GRANDCHILD,
    "ORANG TUA": Relation.PARENT, "ORANGTUA": Relation.PARENT, "MERTUA": Relation.PARENT_IN_LAW,
    "FAMILI LAIN": Relation.OTHER_RELATIVE, "LAINNYA": Relation.OTHER,
}
DTKS = {"TERDAFTAR": DtksStatus.REGISTERED, "REGISTERED": DtksStatus.REGISTERED, "YA": DtksStatus.REGISTERED,
        "TIDAK TERDAFTAR": DtksStatus.NOT_REGISTERED, "NOT_REGISTERED": DtksStatus.NOT_REGISTERED,
        "TIDAK": DtksStatus.NOT_REGISTERED, "": DtksStatus.NOT_REGISTERED,
        "DIUSULKAN": DtksStatus.PROPOSED, "PROPOSED": DtksStatus.PROPOSED}


@dataclass(slots=True)
class RowError:
    line: int
    field: str | None
    message: str


@dataclass(slots=True)
class ImportReport:
    households: int = 0
    members: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    rolled_back: bool = False


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row with lower-case keys) from a CSV (comma or semicolon) or XLSX file."""
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).active
        assert sheet is not None
        rows = sheet.iter_rows(values_only=True)
        header = [str(h or "").strip().lower() for h in next(rows, ())]
        for number, values in enumerate(rows, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            yield number, {h: _cell(v) for h, v in zip(header, values, strict=False)}
        return
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    for number, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values()):
            continue
        yield number, {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}


def _cell(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def _date(text: str) -> dt.date:
    for pattern in ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise ValueError(text)


@dataclass(slots=True)
class _Household:
    lines: list[int]
    data: households.HouseholdData


def group(rows: Iterable[tuple[int, dict[str, str]]], report: ImportReport) -> list[_Household]:
    """Rows -> households by No. KK; rows that cannot be read are reported and their household skipped."""
    found: dict[str, _Household] = {}
    broken: set[str] = set()
    for line, row in rows:
        missing = [c for c in REQUIRED if not row.get(c)]
        kk = row.get("no_kk", "")
        if missing:
            report.errors.append(RowError(line, missing[0], f"column {missing[0]} is empty"))
            broken.add(kk)
            continue
        try:
            sex = SEX[row["jenis_kelamin"].upper()]
        except KeyError:
            report.errors.append(RowError(line, "jenis_kelamin", "use L or P"))
            broken.add(kk)
            continue
        try:
            relation = RELATION[row["hubungan"].upper()]
        except KeyError:
            report.errors.append(RowError(line, "hubungan", "unknown relation to the head"))
            broken.add(kk)
            continue
        try:
            born = _date(row["tanggal_lahir"])
        except ValueError:
            report.errors.append(RowError(line, "tanggal_lahir", "not a date (YYYY-MM-DD or DD-MM-YYYY)"))
            broken.add(kk)
            continue
        dtks = DTKS.get(row.get("status_dtks", "").upper())
        if dtks is None:
            report.errors.append(RowError(line, "status_dtks", "use TERDAFTAR, TIDAK TERDAFTAR or DIUSULKAN"))
            broken.add(kk)
            continue
        household = found.get(kk)
        if household is None:
            household = found[kk] = _Household(lines=[], data=households.HouseholdData(
                region_code=row["kode_wilayah"], address=row["alamat"], dtks_status=dtks, family_cards=[kk],
                members=[], rt=row.get("rt") or None, rw=row.get("rw") or None))
        household.lines.append(line)
        household.data.members.append(households.MemberData(
            name=row["nama"], sex=sex, birth_date=born, relation=relation, nik=row.get("nik") or None))
    return [h for kk, h in found.items() if kk not in broken]


async def import_households(session: AsyncSession, *, actor: Actor, cipher: PersonalDataCipher,
                            rows: Iterable[tuple[int, dict[str, str]]], all_or_nothing: bool = False,
                            progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Register every readable household. The caller commits (or, when ``report.rolled_back``, rolls back)."""
    report = ImportReport()
    groups = group(rows, report)
    for done, household in enumerate(groups, start=1):
        pending: list[object] = session.info.setdefault(PENDING_EVENTS, [])
        mark = len(pending)
        try:
            async with session.begin_nested():
                await households.register_household(session, actor=actor, cipher=cipher, data=household.data)
            report.households += 1
            report.members += len(household.data.members)
        except DomainError as exc:
            del pending[mark:]
            if exc.code in {"DUPLICATE_KK", "DUPLICATE_NIK"}:
                report.duplicates += 1
            for error in exc.errors if isinstance(exc, ValidationFailed) else [exc]:
                report.errors.append(RowError(_line_of(household, error.field), error.field, error.message))
        if progress is not None:
            progress(done, len(groups))
    if all_or_nothing and report.errors:
        report.rolled_back = True
        report.households = report.members = 0
    return report


def _line_of(household: _Household, field_path: str | None) -> int:
    """The file line of a member named by an error field like ``members.2.nik``."""
    if field_path and field_path.startswith("members."):
        index = field_path.split(".")[1]
        if index.isdigit() and int(index) < len(household.lines):
            return household.lines[int(index)]
    return household.lines[0]
