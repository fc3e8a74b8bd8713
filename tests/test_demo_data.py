from __future__ import annotations

import datetime
import random
import re

import pytest

from domain import demo_data as dd

TODAY = datetime.date(2025, 6, 1)


def _households(seed: int, count: int) -> list[tuple[str, list[dd.DemoMember]]]:
    rng = random.Random(seed)
    used: set[str] = set()
    out = []
    for _ in range(count):
        kec = rng.choice(dd.KECAMATAN)
        out.append((kec.code, dd.household_members(rng, kec.code, TODAY, used_niks=used)))
    return out


@pytest.fixture(scope="module")
def households() -> list[tuple[str, list[dd.DemoMember]]]:
    return _households(seed=20250601, count=900)


# --- regions ---------------------------------------------------------------------------------------


def test_six_kecamatan_and_31_kelurahan() -> None:
    assert dd.PROVINCE == ("12", "Sumatera Utara")
    assert dd.KABUPATEN == ("12.74", "Kota Tanjungbalai")
    assert len(dd.KECAMATAN) == 6
    assert sum(len(kec.kelurahan) for kec in dd.KECAMATAN) == 31
    assert len(dd.KELURAHAN) == 31
    assert {kec.name for kec in dd.KECAMATAN} == {
        "Datuk Bandar", "Datuk Bandar Timur", "Sei Tualang Raso", "Tanjungbalai Selatan",
        "Tanjungbalai Utara", "Teluk Nibung",
    }


def test_region_codes_are_under_the_kabupaten() -> None:
    kab = dd.KABUPATEN[0]
    assert kab.startswith(dd.PROVINCE[0] + ".")
    assert [kec.code for kec in dd.KECAMATAN] == [f"12.74.0{i}" for i in range(1, 7)]
    seen: set[str] = set()
    for kec in dd.KECAMATAN:
        assert re.fullmatch(r"12\.74\.\d{2}", kec.code)
        assert kec.kelurahan
        for kel in kec.kelurahan:
            assert re.fullmatch(r"12\.74\.\d{2}\.1\d{3}", kel.code), kel.code
            assert kel.code.startswith(kec.code + ".")
            assert kel.name.strip() == kel.name and kel.name
            assert dd.kecamatan_of(kel.code) is kec
            seen.add(kel.code)
    assert len(seen) == 31
    assert len({kel.name for kel in dd.KELURAHAN}) == 31
    assert dd.KELURAHAN_BY_CODE["12.74.04.1004"].name == "Kapias Pulau Buaya"


def test_random_kelurahan() -> None:
    rng = random.Random(1)
    for _ in range(100):
        kec, kel = dd.random_kelurahan(rng)
        assert kel in kec.kelurahan


# --- names and addresses ---------------------------------------------------------------------------


def test_name_lists() -> None:
    assert len(dd.MALE_GIVEN_NAMES) >= 60
    assert len(dd.FEMALE_GIVEN_NAMES) >= 60
    for names in (dd.MALE_GIVEN_NAMES, dd.FEMALE_GIVEN_NAMES, dd.BATAK_MARGA, dd.CHINESE_INDONESIAN_SURNAMES):
        assert len(set(names)) == len(names)
        assert all(n and n.strip() == n for n in names)
    assert {"Siregar", "Nasution", "Lubis", "Harahap", "Simanjuntak", "Sitorus", "Pane", "Hasibuan"} <= set(
        dd.BATAK_MARGA
    )


@pytest.mark.parametrize("ethnicity", [None, "MELAYU", "BATAK", "JAWA", "TIONGHOA"])
def test_full_name(ethnicity: dd.Ethnicity | None) -> None:
    rng = random.Random(3)
    for _ in range(200):
        sex = rng.choice(("M", "F"))
        name = dd.full_name(rng, "M" if sex == "M" else "F", ethnicity)
        assert name and name.strip() == name and "  " not in name
        if ethnicity == "BATAK":
            assert dd.marga_of(name) is not None


def test_address_rt_rw_phone() -> None:
    rng = random.Random(5)
    for _ in range(500):
        line = dd.address(rng)
        assert re.fullmatch(r"(Jl\.|Gg\.).+ No\. \d+[AB]?, Lingkungan [IVX]+", line), line
        assert len(line) <= 300
        assert re.fullmatch(r"0(0[1-9]|1[0-5])", dd.rt(rng))
        assert re.fullmatch(r"0(0[1-9]|1[0-5])", dd.rw(rng))
        assert re.fullmatch(r"08\d{9,10}", dd.phone_number(rng))


# --- programs and complaints -----------------------------------------------------------------------


def test_programs() -> None:
    codes = [p.code for p in dd.PROGRAMS]
    assert len(codes) == len(set(codes)) == 14
    assert set(codes) == {
        "PKH", "BPNT", "PBI-JK", "KIP", "RTLH", "KIS-DAERAH", "ADMINDUK", "REHSOS", "ATENSI", "BLT-DD",
        "LISTRIK-SUBSIDI", "NELAYAN", "PERTANIAN", "BEASISWA-DAERAH",
    }
    for program in dd.PROGRAMS:
        assert program.sector in dd.SECTORS
        assert 3 <= program.sla_days <= 30
        assert program.name and program.owner_agency
        assert len(program.code) <= 40
        assert dd.PROGRAM_BY_CODE[program.code] is program


def test_sectors_match_the_domain_vocabulary() -> None:
    from domain.enums import Sector

    assert set(dd.SECTORS) == {s.value for s in Sector}


def test_complaint_templates() -> None:
    assert set(dd.COMPLAINT_TEMPLATES) == set(dd.SECTORS)
    for sector, templates in dd.COMPLAINT_TEMPLATES.items():
        assert len(templates) >= 3, sector
        assert len(set(templates)) == len(templates)
        assert all(t.strip() == t and t.endswith(".") for t in templates)
    rng = random.Random(9)
    assert dd.complaint_description(rng, "FOOD") in dd.COMPLAINT_TEMPLATES["FOOD"]


# --- NIK and No. KK --------------------------------------------------------------------------------


def _assert_nik(nik: str, kecamatan_code: str, birth_date: datetime.date, female: bool) -> None:
    assert len(nik) == 16 and nik.isdigit(), nik
    assert nik[:6] == kecamatan_code.replace(".", "")
    day = int(nik[6:8])
    assert (day > 40) == female
    assert (day - 40 if female else day, int(nik[8:10]), int(nik[10:12])) == (
        birth_date.day, birth_date.month, birth_date.year % 100,
    )
    assert 1 <= int(nik[12:]) <= 9999


def test_make_nik_round_trip() -> None:
    rng = random.Random(11)
    start = datetime.date(1930, 1, 1)
    for _ in range(3000):
        kec = rng.choice(dd.KECAMATAN)
        birth = start + datetime.timedelta(days=rng.randint(0, 35000))
        female = rng.random() < 0.5
        nik = dd.make_nik(rng, kec.code, birth, female)
        _assert_nik(nik, kec.code, birth, female)
        parts = dd.decode_nik(nik)
        assert parts.kecamatan_code == kec.code
        assert (parts.day, parts.month, parts.year_2digit, parts.female) == (
            birth.day, birth.month, birth.year % 100, female,
        )


def test_make_nik_serial_and_errors() -> None:
    rng = random.Random(0)
    birth = datetime.date(1985, 2, 7)
    assert dd.make_nik(rng, "12.74.03", birth, True, serial=12) == "1274034702850012"
    assert dd.make_nik(rng, "12.74.03", birth, False, serial=9999) == "1274030702859999"
    with pytest.raises(ValueError):
        dd.make_nik(rng, "12.74.03", birth, False, serial=0)
    with pytest.raises(ValueError):
        dd.make_nik(rng, "12.74", birth, False)
    with pytest.raises(ValueError):
        dd.decode_nik("12720307028")


def test_make_kk() -> None:
    rng = random.Random(2)
    issued = datetime.date(2019, 11, 23)
    for kec in dd.KECAMATAN:
        kk = dd.make_kk(rng, kec.code, issued)
        assert len(kk) == 16 and kk.isdigit()
        assert kk[:6] == kec.code.replace(".", "")
        assert kk[6:12] == "231119"
        assert kk[12:] != "0000"


def test_household_niks(households: list[tuple[str, list[dd.DemoMember]]]) -> None:
    members = [(code, m) for code, family in households for m in family]
    assert len(members) >= 3000
    for code, member in members:
        _assert_nik(member.nik, code, member.birth_date, member.sex == "F")
    niks = [m.nik for _, m in members]
    assert len(set(niks)) == len(niks)


def test_household_niks_pass_the_domain_validator(households: list[tuple[str, list[dd.DemoMember]]]) -> None:
    from domain.enums import NikStatus, Sex
    from domain.households.nik import validate_nik

    for code, family in households[:200]:
        for m in family:
            sex = Sex.FEMALE if m.sex == "F" else Sex.MALE
            assert validate_nik(m.nik, region_code=code, birth_date=m.birth_date, sex=sex) is NikStatus.VALID


# --- households ------------------------------------------------------------------------------------


def test_household_structure(households: list[tuple[str, list[dd.DemoMember]]]) -> None:
    relations = {"HEAD", "SPOUSE", "CHILD", "PARENT", "OTHER_RELATIVE"}
    female_heads = 0
    for _, family in households:
        head = family[0]
        assert head.relation == "HEAD"
        assert [m.relation for m in family].count("HEAD") == 1
        assert [m.relation for m in family].count("SPOUSE") <= 1
        assert [m.relation for m in family].count("CHILD") <= 5
        assert [m.relation for m in family].count("PARENT") <= 1
        female_heads += head.sex == "F"
        assert dd.age_on(head.birth_date, TODAY) >= 18
        for m in family:
            assert m.relation in relations
            assert m.sex in ("M", "F")
            assert m.name and m.name.strip() == m.name
            assert m.birth_date <= TODAY
            assert m.education in dd.EDUCATION_LEVELS
            assert m.occupation in dd.OCCUPATIONS
            assert m.disability is None or m.disability in dd.DISABILITIES
            assert m.chronic_illness is None or m.chronic_illness in dd.CHRONIC_ILLNESSES
            assert set(m.programs) <= set(dd.PROGRAM_BY_CODE) - {"BLT-DD"}
            assert list(m.programs) == sorted(set(m.programs))
            if m.relation == "CHILD":
                assert m.birth_date > head.birth_date
            if m.relation == "PARENT":
                assert m.birth_date < head.birth_date
        spouses = [m for m in family if m.relation == "SPOUSE"]
        if spouses:
            assert head.sex == "M" and spouses[0].sex == "F"
    assert 0.05 < female_heads / len(households) < 0.3


def test_batak_children_carry_the_fathers_marga(households: list[tuple[str, list[dd.DemoMember]]]) -> None:
    checked = 0
    for _, family in households:
        head = family[0]
        marga = dd.marga_of(head.name)
        if marga is None or head.sex != "M":
            continue
        for m in family:
            if m.relation == "CHILD":
                assert dd.marga_of(m.name) == marga, (head.name, m.name)
                checked += 1
            if m.relation == "SPOUSE" and dd.marga_of(m.name) is not None:
                assert dd.marga_of(m.name) != marga  # marga exogamy
    assert checked > 100


def test_household_members_is_deterministic() -> None:
    assert _households(seed=42, count=20) == _households(seed=42, count=20)


def test_household_members_rejects_a_bad_kecamatan_code() -> None:
    with pytest.raises(ValueError):
        dd.household_members(random.Random(0), "1272", TODAY)


# --- poverty indicators ----------------------------------------------------------------------------


def test_poverty_indicators() -> None:
    keys = {
        "floor_area_m2_per_person", "floor_type", "wall_type", "toilet", "drinking_water", "lighting",
        "cooking_fuel", "meat_milk_weekly", "new_clothes_yearly", "meals_per_day", "can_pay_clinic",
        "head_income_source", "head_education", "savings_over_500k",
    }
    rng = random.Random(13)
    for _ in range(500):
        ind = dd.poverty_indicators(rng)
        assert set(ind) == keys
        area = ind["floor_area_m2_per_person"]
        assert isinstance(area, float) and 2.0 < area < 16.0
        assert ind["floor_type"] in dd.FLOOR_TYPES
        assert ind["wall_type"] in dd.WALL_TYPES
        assert ind["toilet"] in dd.TOILET_TYPES
        assert ind["drinking_water"] in dd.DRINKING_WATER_SOURCES
        assert ind["lighting"] in dd.LIGHTING_SOURCES
        assert ind["cooking_fuel"] in dd.COOKING_FUELS
        assert ind["head_income_source"] in dd.INCOME_SOURCES
        assert ind["head_education"] in dd.EDUCATION_LEVELS
        for flag in ("meat_milk_weekly", "new_clothes_yearly", "can_pay_clinic", "savings_over_500k"):
            assert isinstance(ind[flag], bool)
        assert ind["meals_per_day"] in (1, 2, 3)
        assert 0 <= dd.bps_criteria_met(ind) <= 14
