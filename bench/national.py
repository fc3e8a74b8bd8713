"""The national frame of the benchmark dataset: sizes by scale, the region tree (real province codes,
kabupaten/kota, kecamatan, desa/kelurahan), the program catalog, the staff who work there, and the chunks of
households :mod:`bench.synth` generates. Drawn from a seeded ``random.Random``: a scale and a seed always give
the same country."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain import demo_data as dd

BENCH_PASSWORD = "rujuk-bench-password"
CHUNK_HOUSEHOLDS = 2000
START = dt.datetime(2016, 1, 1, tzinfo=dt.UTC)

# (code, name, approximate centre latitude, longitude): the 38 provinces of the Kemendagri register
PROVINCES: tuple[tuple[str, str, float, float], ...] = (
    ("11", "Aceh", 4.7, 96.7), ("12", "Sumatera Utara", 2.1, 99.5), ("13", "Sumatera Barat", -0.7, 100.8),
    ("14", "Riau", 0.3, 101.7), ("15", "Jambi", -1.6, 103.6), ("16", "Sumatera Selatan", -3.3, 104.2),
    ("17", "Bengkulu", -3.8, 102.3), ("18", "Lampung", -4.6, 105.4),
    ("19", "Kepulauan Bangka Belitung", -2.7, 106.4), ("21", "Kepulauan Riau", 0.9, 104.5),
    ("31", "DKI Jakarta", -6.2, 106.8), ("32", "Jawa Barat", -6.9, 107.6), ("33", "Jawa Tengah", -7.2, 110.1),
    ("34", "DI Yogyakarta", -7.8, 110.4), ("35", "Jawa Timur", -7.5, 112.2), ("36", "Banten", -6.4, 106.1),
    ("51", "Bali", -8.4, 115.2), ("52", "Nusa Tenggara Barat", -8.6, 117.4),
    ("53", "Nusa Tenggara Timur", -8.7, 121.1), ("61", "Kalimantan Barat", -0.3, 111.5),
    ("62", "Kalimantan Tengah", -1.7, 113.4), ("63", "Kalimantan Selatan", -3.1, 115.3),
    ("64", "Kalimantan Timur", 0.5, 116.4), ("65", "Kalimantan Utara", 3.1, 116.0),
    ("71", "Sulawesi Utara", 0.6, 123.9), ("72", "Sulawesi Tengah", -1.4, 121.4),
    ("73", "Sulawesi Selatan", -3.7, 120.0), ("74", "Sulawesi Tenggara", -4.1, 122.2),
    ("75", "Gorontalo", 0.7, 122.4), ("76", "Sulawesi Barat", -2.8, 119.2), ("81", "Maluku", -3.2, 130.1),
    ("82", "Maluku Utara", 1.6, 127.8), ("91", "Papua Barat", -1.3, 133.2),
    ("92", "Papua Barat Daya", -1.0, 131.5), ("94", "Papua", -2.5, 140.0), ("95", "Papua Selatan", -7.0, 139.5),
    ("96", "Papua Tengah", -3.5, 136.5), ("97", "Papua Pegunungan", -4.0, 138.9),
)

# (code, name, sector, owner agency, SLA days): a national catalog, one or more programs per sector
PROGRAMS: tuple[tuple[str, str, str, str, int], ...] = (
    ("PKH", "Program Keluarga Harapan", "PKH", "Kementerian Sosial", 14),
    ("BPNT", "Bantuan Pangan Non Tunai (Program Sembako)", "FOOD", "Kementerian Sosial", 14),
    ("PBI-JK", "Penerima Bantuan Iuran Jaminan Kesehatan", "HEALTH", "BPJS Kesehatan", 7),
    ("JAMKESDA", "Jaminan Kesehatan Daerah", "HEALTH", "Dinas Kesehatan Kabupaten/Kota", 7),
    ("KIP", "Program Indonesia Pintar", "EDUCATION", "Kementerian Pendidikan Dasar dan Menengah", 21),
    ("RTLH", "Rehabilitasi Rumah Tidak Layak Huni", "HOUSING", "Kementerian Perumahan dan Kawasan Permukiman", 30),
    ("ADMINDUK", "Layanan Administrasi Kependudukan", "CIVIL_REGISTRATION", "Ditjen Dukcapil", 7),
    ("ATENSI", "Asistensi Rehabilitasi Sosial", "SOCIAL_REHABILITATION", "Kementerian Sosial", 14),
    ("LISTRIK-SUBSIDI", "Subsidi Listrik Daya 450 VA dan 900 VA", "ENERGY", "PT PLN (Persero)", 14),
    ("NELAYAN", "Bantuan Nelayan Kecil", "FISHERIES", "Kementerian Kelautan dan Perikanan", 21),
    ("PERTANIAN", "Bantuan Sarana Produksi Pertanian", "AGRICULTURE", "Kementerian Pertanian", 21),
    ("BLT-DD", "Bantuan Langsung Tunai Dana Desa", "OTHER", "Kementerian Desa dan Pembangunan Daerah Tertinggal", 14),
)

STAFF_COLUMNS = ("id", "username", "password_hash", "full_name", "role", "region_code", "extra_region_codes",
                 "supervisor_id", "active", "created_at")
REGION_COLUMNS = ("code", "name", "level", "parent_code")
PROGRAM_COLUMNS = ("id", "code", "name", "sector", "owner_agency", "sla_days", "active")

Row = tuple[Any, ...]

_HEADS = ("Suka", "Karya", "Mekar", "Sari", "Tanjung", "Sei", "Pasir", "Batu", "Bukit", "Air", "Padang",
          "Teluk", "Lubuk", "Muara", "Pulau", "Sido", "Banjar", "Rantau", "Pematang", "Bandar", "Simpang", "Jati",
          "Tegal", "Labuhan", "Gunung", "Bina", "Tirta", "Kampung", "Wono", "Ranca")
_TAILS = ("maju", "jaya", "makmur", "sari", "baru", "indah", "mulya", "rejo", "asri", "harapan", "raya", "damai",
          "sentosa", "agung", "mekar", "tengah", "timur", "barat", "lestari", "subur", "rahayu", "kencana",
          "permai", "bahari", "tani")


def place_name(rng: random.Random) -> str:
    head, tail = rng.choice(_HEADS), rng.choice(_TAILS)
    return head + tail if rng.random() < 0.5 else f"{head} {tail.capitalize()}"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big a dataset of a given scale is: 1.0 is 1M households in 514 kabupaten/kota."""

    scale: float
    households: int
    kabupaten: int

    @classmethod
    def of(cls, scale: float) -> Sizes:
        if not 0 < scale <= 1:
            raise ValueError("the scale is in (0, 1]")
        return cls(scale=scale, households=max(50, round(1_000_000 * scale)),
                   kabupaten=min(514, max(2, round(514 * scale))))


@dataclass(frozen=True, slots=True)
class DesaPlan:
    """One desa/kelurahan, how many households it gets and who works there."""

    code: str
    kecamatan: str
    households: int
    lat: float
    lon: float
    facilitator_id: int
    officer_id: int
    supervisor_id: int


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    index: int
    seed: int
    desa: tuple[DesaPlan, ...]

    @property
    def households(self) -> int:
        return sum(d.households for d in self.desa)


@dataclass(slots=True)
class Reference:
    """Regions, programs and staff (loaded first) and the chunks of households to generate."""

    regions: list[Row] = field(default_factory=list)
    programs: list[Row] = field(default_factory=list)
    staff: list[Row] = field(default_factory=list)
    chunks: list[ChunkPlan] = field(default_factory=list)


def _desa_weights(rng: random.Random, n: int) -> list[float]:
    return [rng.lognormvariate(0, 0.6) for _ in range(n)]


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` into integer shares proportional to ``weights`` (largest remainders)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    shares = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def plan(sizes: Sizes, *, seed: int, password_hash: str, now: dt.datetime) -> Reference:
    """The region tree, programs, staff and chunk plans for ``sizes``."""
    rng = random.Random(seed)
    ref = Reference()
    ref.programs = [(i, code, name, sector, agency, days, True)
                    for i, (code, name, sector, agency, days) in enumerate(PROGRAMS, start=1)]
    provinces = sorted(rng.sample(PROVINCES, min(len(PROVINCES), max(1, round(sizes.kabupaten / 13.5)))))
    staff_id = 0

    def add_staff(username: str, role: str, region: str | None, extra: Sequence[str] = (),
                  supervisor: int | None = None) -> int:
        nonlocal staff_id
        staff_id += 1
        name = dd.full_name(rng, rng.choice(("M", "F")))
        ref.staff.append((staff_id, username, password_hash, name, role, region, list(extra), supervisor, True,
                          START + dt.timedelta(days=rng.randint(0, 365))))
        return staff_id

    add_staff("bench-admin", "ADMIN", None)
    desa_plans: list[tuple[str, str, float, float, int, int, int]] = []  # code, kec, lat, lon, fac, off, sup
    weights: list[float] = []
    per_province: dict[str, int] = {}
    for k in range(sizes.kabupaten):
        prov_code, prov_name, lat0, lon0 = provinces[k % len(provinces)]
        if prov_code not in per_province:
            ref.regions.append((prov_code, prov_name, "PROVINCE", None))
        per_province[prov_code] = per_province.get(prov_code, 0) + 1
        kota = rng.random() < 0.18
        kab = f"{prov_code}.{(70 if kota else 0) + per_province[prov_code]:02d}"
        ref.regions.append((kab, ("Kota " if kota else "Kabupaten ") + place_name(rng), "KABUPATEN", prov_code))
        lat = min(5.5, max(-10.5, lat0 + rng.uniform(-1.5, 1.5)))
        lon = min(141.5, max(94.5, lon0 + rng.uniform(-1.5, 1.5)))
        manager = add_staff(f"man.{kab}", "MANAGER", kab)
        kecamatan = [f"{kab}.{c:02d}" for c in range(1, rng.randint(10, 18) + 1)]
        for group in range(0, len(kecamatan), 5):
            covered = kecamatan[group:group + 5]
            supervisor = add_staff(f"sup.{kab}.{group // 5 + 1}", "SUPERVISOR", covered[0], covered[1:], manager)
            for kec in covered:
                ref.regions.append((kec, place_name(rng), "KECAMATAN", kab))
                officer = add_staff(f"pus.{kec}", "PUSKESOS_OFFICER", kec, (), supervisor)
                desa = [f"{kec}.{(1000 if kota else 2000) + d:04d}" for d in range(1, rng.randint(6, 17) + 1)]
                for d in desa:
                    ref.regions.append((d, ("Kelurahan " if kota else "Desa ") + place_name(rng), "DESA", kec))
                # a facilitator covers about three neighbouring villages
                for f in range(0, len(desa), 3):
                    covers = desa[f:f + 3]
                    fac = add_staff(f"fas.{kec}.{f // 3 + 1}", "FACILITATOR", covers[0], covers[1:], supervisor)
                    for d in covers:
                        desa_plans.append((d, kec, lat, lon, fac, officer, supervisor))
                weights += _desa_weights(rng, len(desa))
    shares = _allocate(sizes.households, weights)
    chunk: list[DesaPlan] = []
    in_chunk = 0
    for i, ((code, kec, lat, lon, fac, officer, sup), n) in enumerate(zip(desa_plans, shares, strict=True)):
        chunk.append(DesaPlan(code, kec, n, lat, lon, fac, officer, sup))
        in_chunk += n
        last_of_kecamatan = i + 1 == len(desa_plans) or desa_plans[i + 1][1] != kec
        if last_of_kecamatan and in_chunk >= CHUNK_HOUSEHOLDS or i + 1 == len(desa_plans):
            ref.chunks.append(ChunkPlan(index=len(ref.chunks), seed=rng.getrandbits(63), desa=tuple(chunk)))
            chunk, in_chunk = [], 0
    return ref
