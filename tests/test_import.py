"""Importing a district office's household list (CSV and XLSX) through the CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
from openpyxl import Workbook

from tests.conftest import nik

ROOT = Path(__file__).resolve().parent.parent
HEADER = "no_kk;nik;nama;jenis_kelamin;tanggal_lahir;hubungan;kode_wilayah;alamat;rt;rw;status_dtks"


def rujuk(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUJUK_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def person(kk: str, born: dt.date, *, female: bool, name: str, relation: str, serial: int,
           desa: str = "12.74.01.1001") -> str:
    return ";".join([kk, nik("12.74.01", born, female=female, serial=serial), name, "P" if female else "L",
                     born.strftime("%d-%m-%Y"), relation, desa, "Jl. Asahan No. 7", "002", "003", "TERDAFTAR"])


def district_file(tmp_path: Path) -> Path:
    rows = [
        HEADER,
        person("1274010101150001", dt.date(1979, 2, 1), female=False, name="Ahmad Lubis", relation="KEPALA KELUARGA",
               serial=1),
        person("1274010101150001", dt.date(1983, 5, 9), female=True, name="Rina Siregar", relation="ISTRI", serial=2),
        person("1274010101150002", dt.date(1990, 1, 1), female=False, name="Budi", relation="KEPALA KELUARGA",
               serial=3).replace("L;01-01-1990", "X;01-01-1990"),  # line 4: bad sex
        person("1274010101150003", dt.date(1970, 7, 7), female=True, name="Siti Hasibuan", relation="KEPALA KELUARGA",
               serial=4),
        person("1274010101150003", dt.date(2001, 3, 3), female=False, name="Dedi", relation="ANAK", serial=9)
        .replace(nik("12.74.01", dt.date(2001, 3, 3), female=False, serial=9), "1274010303019999"[:15]),  # bad NIK
        person("1274010101150004", dt.date(1965, 12, 12), female=False, name="Usman Nasution",
               relation="KEPALA KELUARGA", serial=5),
    ]
    path = tmp_path / "keluarga.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def seed(fresh_database_url: str) -> None:
    done = rujuk("seed-demo", "--households", "1", database_url=fresh_database_url)
    assert done.returncode == 0, done.stdout + done.stderr


def test_csv_imports_good_households_and_reports_each_bad_row(fresh_database_url: str, tmp_path: Path) -> None:
    seed(fresh_database_url)
    before = asyncio.run(fetch(fresh_database_url, "SELECT count(*) AS n FROM households"))[0]["n"]
    report = tmp_path / "masalah.csv"
    done = rujuk("import-households", str(district_file(tmp_path)), "--as", "manajer", "--report", str(report),
                 database_url=fresh_database_url)
    assert done.returncode == 1, done.stdout + done.stderr  # some rows had problems
    assert "Imported 2 households (3 people)" in done.stdout
    assert "line 4: jenis_kelamin: use L or P" in done.stdout
    assert "line 6: members.1.nik:" in done.stdout
    assert report.read_text().splitlines()[0] == "line,field,message"
    after = asyncio.run(fetch(fresh_database_url, "SELECT count(*) AS n FROM households"))[0]["n"]
    assert after - before == 2
    # no half-registered household: the one with a bad member was not stored at all
    names = {r["name"] for r in asyncio.run(fetch(fresh_database_url, "SELECT name FROM members"))}
    assert {"Ahmad Lubis", "Rina Siregar", "Usman Nasution"} <= names and "Siti Hasibuan" not in names
    again = rujuk("import-households", str(district_file(tmp_path)), "--as", "manajer",
                  database_url=fresh_database_url)
    assert "Imported 0 households" in again.stdout and "2 already registered" in again.stdout


def test_all_or_nothing_and_xlsx(fresh_database_url: str, tmp_path: Path) -> None:
    seed(fresh_database_url)
    before = asyncio.run(fetch(fresh_database_url, "SELECT count(*) AS n FROM households"))[0]["n"]
    strict = rujuk("import-households", str(district_file(tmp_path)), "--as", "manajer", "--all-or-nothing",
                   database_url=fresh_database_url)
    assert strict.returncode == 1 and "Imported nothing" in strict.stdout
    assert asyncio.run(fetch(fresh_database_url, "SELECT count(*) AS n FROM households"))[0]["n"] == before
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(";"))
    born = dt.datetime(1988, 8, 8)  # noqa: DTZ001 - spreadsheets hold dates without a time zone
    sheet.append(["1274010101150077", nik("12.74.01", born.date(), female=True, serial=77), "Nur Aini", "P", born,
                  "KEPALA KELUARGA", "12.74.01.1001", "Jl. Sudirman 1", "1", "1", "DIUSULKAN"])
    xlsx = tmp_path / "keluarga.xlsx"
    book.save(xlsx)
    done = rujuk("import-households", str(xlsx), "--as", "manajer", database_url=fresh_database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Imported 1 households (1 people)" in done.stdout
    rows = asyncio.run(fetch(fresh_database_url, "SELECT dtks_status FROM households ORDER BY id DESC LIMIT 1"))
    assert rows[0]["dtks_status"] == "PROPOSED"
