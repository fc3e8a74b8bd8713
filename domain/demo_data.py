"""Demo district: a realistic, entirely fictional population modelled on Kota Tanjungbalai, North Sumatra.

Pure data and pure generator functions (stdlib only, no database). Every generator takes a
``random.Random`` so a seeded run is reproducible; nothing reads the clock, callers pass ``today``.

Regions
    The six kecamatan and 31 kelurahan of Kota Tanjungbalai with their real names and the kecamatan /
    kelurahan suffixes of the Kemendagri register (Kepmendagri 100.1.1-6117/2022): e.g. Datuk Bandar's
    kelurahan really are numbered 1003, 1004, 1005, 1006 and 1010. The kabupaten/kota part is
    ``_KAB_CODE`` = ``12.74``, Kota Tanjungbalai's code in the Kemendagri register (``12.72`` is Kota
    Pematangsiantar), so demo NIKs start with ``1274`` like real ones issued there.

People
    Names mix the coastal city's communities (Asahan Malay, Mandailing/Angkola and Toba Batak,
    Javanese, Chinese-Indonesian). Batak children carry their father's marga. NIKs and No. KK numbers
    are well-formed (region, date, serial) but invented.
"""

from __future__ import annotations

import datetime
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

_T = TypeVar("_T")

# --------------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------------

_PROV_CODE: Final = "12"
# Kota Tanjungbalai in the Kemendagri register; everything below is derived from this constant.
_KAB_CODE: Final = "12.74"


@dataclass(frozen=True, slots=True)
class Kelurahan:
    code: str  # "12.74.01.1001"
    name: str


@dataclass(frozen=True, slots=True)
class Kecamatan:
    code: str  # "12.74.01"
    name: str
    kelurahan: tuple[Kelurahan, ...]


PROVINCE: Final[tuple[str, str]] = (_PROV_CODE, "Sumatera Utara")
KABUPATEN: Final[tuple[str, str]] = (_KAB_CODE, "Kota Tanjungbalai")

# (kecamatan suffix, kecamatan name, ((kelurahan suffix, kelurahan name), ...)), in register order.
_REGISTER: Final[tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]] = (
    ("01", "Tanjungbalai Selatan", (
        ("1001", "Tanjungbalai Kota I"),
        ("1002", "Tanjungbalai Kota II"),
        ("1003", "Perwira"),
        ("1004", "Karya"),
        ("1005", "Pantai Burung"),
        ("1006", "Indra Sakti"),
    )),
    ("02", "Tanjungbalai Utara", (
        ("1001", "Tanjungbalai Kota III"),
        ("1002", "Tanjungbalai Kota IV"),
        ("1003", "Sejahtera"),
        ("1004", "Kuala Silo Bestari"),
        ("1005", "Matahalasan"),
    )),
    ("03", "Sei Tualang Raso", (
        ("1001", "Keramat Kubah"),
        ("1002", "Sumber Sari"),
        ("1003", "Muara Sentosa"),
        ("1004", "Pasar Baru"),
        ("1005", "Sei Raja"),
    )),
    ("04", "Teluk Nibung", (
        ("1001", "Sei Merbau"),
        ("1002", "Pematang Pasir"),
        ("1003", "Perjuangan"),
        ("1004", "Kapias Pulau Buaya"),
        ("1005", "Beting Kuala Kapias"),
    )),
    ("05", "Datuk Bandar", (
        ("1003", "Gading"),
        ("1004", "Sirantau"),
        ("1005", "Sijambi"),
        ("1006", "Pahang"),
        ("1010", "Pantai Johor"),
    )),
    ("06", "Datuk Bandar Timur", (
        ("1001", "Pulau Simardan"),
        ("1002", "Semula Jadi"),
        ("1003", "Selat Lancang"),
        ("1004", "Bunga Tanjung"),
        ("1005", "Selat Tanjung Medan"),
    )),
)

KECAMATAN: Final[list[Kecamatan]] = [
    Kecamatan(
        code=f"{_KAB_CODE}.{kec}",
        name=kec_name,
        kelurahan=tuple(Kelurahan(f"{_KAB_CODE}.{kec}.{kel}", kel_name) for kel, kel_name in kels),
    )
    for kec, kec_name, kels in _REGISTER
]

KELURAHAN: Final[tuple[Kelurahan, ...]] = tuple(kel for kec in KECAMATAN for kel in kec.kelurahan)
KECAMATAN_BY_CODE: Final[dict[str, Kecamatan]] = {kec.code: kec for kec in KECAMATAN}
KELURAHAN_BY_CODE: Final[dict[str, Kelurahan]] = {kel.code: kel for kel in KELURAHAN}

# Character of each kecamatan, used to weight occupations: the port and fishing quarters of Teluk Nibung
# and Sei Tualang Raso on the Asahan/Silau rivers, the old town centre, the semi-rural Datuk Bandar.
_COASTAL_KECAMATAN: Final = frozenset({f"{_KAB_CODE}.03", f"{_KAB_CODE}.04", f"{_KAB_CODE}.06"})
_PORT_KECAMATAN: Final = frozenset({f"{_KAB_CODE}.04"})
_RURAL_KECAMATAN: Final = frozenset({f"{_KAB_CODE}.05", f"{_KAB_CODE}.06"})


def kecamatan_of(kelurahan_code: str) -> Kecamatan:
    """The kecamatan holding a kelurahan code (``12.74.05.1006`` -> Datuk Bandar)."""
    return KECAMATAN_BY_CODE[kelurahan_code.rsplit(".", 1)[0]]


def random_kelurahan(rng: random.Random) -> tuple[Kecamatan, Kelurahan]:
    """A kelurahan drawn uniformly from the 31, with its kecamatan."""
    kel = rng.choice(KELURAHAN)
    return kecamatan_of(kel.code), kel


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------

Ethnicity = Literal["MELAYU", "BATAK", "JAWA", "TIONGHOA"]
# Rough shares among the city's poorer households.
ETHNICITY_WEIGHTS: Final[tuple[tuple[Ethnicity, float], ...]] = (
    ("MELAYU", 0.38),
    ("BATAK", 0.36),
    ("JAWA", 0.17),
    ("TIONGHOA", 0.09),
)

_NameStyle = Literal["MUSLIM", "JAWA", "KRISTEN", "TIONGHOA"]

# Malay, Javanese and Mandailing/Angkola families: mostly Muslim names.
_MUSLIM_MALE: Final[tuple[str, ...]] = (
    "Ahmad", "Muhammad Yusuf", "Abdul Rahman", "Abdul Hamid", "Rahmat", "Syahrial", "Zulkifli",
    "Amiruddin", "Syafruddin", "Hasan Basri", "Husin", "Ismail", "Ibrahim", "Idris", "Khairul Anwar",
    "Fadli", "Rizki", "Fauzi", "Iskandar", "Hamdani", "Samsul Bahri", "Azhar", "Mahmud", "Darwis",
    "Ridwan", "Irwansyah", "Budi Santoso", "Agus Salim", "Slamet", "Sugianto", "Suparman", "Joko",
    "Wahyudi", "Bambang", "Sutrisno", "Supriadi", "Sulaiman", "Jamaluddin", "Nasrun", "Arifin",
    "Taufik Hidayat", "Faisal", "Kurniawan", "Riduan", "Saiful", "Dedi", "Ilham", "Reza", "Aldi",
    "Dimas", "Farhan", "Habibi", "Azmi", "Syahputra", "Erwin", "Zainal Abidin", "Mukhlis",
    "Anwar", "Rusli", "Herman", "Syamsuddin", "Rizky Ramadhan", "Fikri", "Hafiz", "Raffi", "Arya",
)
_MUSLIM_FEMALE: Final[tuple[str, ...]] = (
    "Siti Aminah", "Nurhayati", "Fatimah", "Aisyah", "Khadijah", "Nurhalimah", "Rahmawati",
    "Sri Wahyuni", "Sri Rahayu", "Dewi Sartika", "Yusnita", "Rahmah", "Zubaidah", "Mariani", "Salmah",
    "Halimah", "Syarifah", "Nurlela", "Maimunah", "Juliana", "Yuliani", "Fitri Handayani",
    "Nurul Hidayah", "Putri", "Ayu Lestari", "Intan", "Nabila", "Zahra", "Aulia", "Suryani",
    "Erna", "Ratna Sari", "Hasanah", "Masitah", "Rukiah",
    "Nurbaiti", "Asmah", "Juwita", "Mardiah", "Ernawati", "Nuraini", "Sakdiah", "Fadhilah", "Annisa",
    "Khairunnisa", "Salsabila", "Rosmawati", "Yusniar", "Darmawati", "Sarinah", "Lailan",
    "Nur Asiah", "Murni", "Keisha", "Aqila", "Syifa", "Dinda",
)
# Javanese families (descendants of plantation workers) also use Javanese names.
_JAWA_MALE: Final[tuple[str, ...]] = (
    "Ngadiman", "Tukiman", "Poniman", "Sukardi", "Paimin", "Sugeng", "Suwarno", "Wagiman", "Sarijo",
    "Bayu Prasetyo", "Eko Prasetyo", "Purwanto",
)
_JAWA_FEMALE: Final[tuple[str, ...]] = (
    "Sumiati", "Sutinah", "Tumini", "Paini", "Wagini", "Sri Mulyani", "Ngatini", "Suharti", "Wartini",
    "Endang Susilowati", "Dwi Astuti", "Tri Wahyuni",
)
# Toba Batak families: mostly Christian names.
_KRISTEN_MALE: Final[tuple[str, ...]] = (
    "Maruli", "Hotman", "Sahat", "Lamhot", "Parlindungan", "Martua", "Tigor", "Binsar", "Poltak",
    "Bonar", "Johannes", "Robert", "Jhonson", "Daniel", "Samuel", "Ronald", "Hendrik", "Marihot",
    "Jonatan", "Yosua",
)
_KRISTEN_FEMALE: Final[tuple[str, ...]] = (
    "Tiurma", "Rosmauli", "Lasma", "Rotua", "Roslina", "Dameria", "Hotnida", "Romauli", "Tiomina",
    "Sondang", "Friska", "Debora", "Maria", "Ester", "Lenny", "Natalia", "Grace", "Yohana",
)
# Chinese-Indonesian families.
_TIONGHOA_MALE: Final[tuple[str, ...]] = (
    "Hendra", "Suwandi", "Rudy", "Andi", "Johan", "Wilson", "Kevin", "Steven", "Hartono", "Budiman",
    "Eddy", "Ricky", "Tony", "Jimmy", "Sunarto", "Ahwat",
)
_TIONGHOA_FEMALE: Final[tuple[str, ...]] = (
    "Susanti", "Lina", "Meilani", "Linda", "Yenni", "Lili", "Vivian", "Herlina", "Liliana", "Selvi",
    "Winda", "Jessica", "Cindy", "Mei Hwa",
)

MALE_GIVEN_NAMES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(_MUSLIM_MALE + _JAWA_MALE + _KRISTEN_MALE + _TIONGHOA_MALE)
)
FEMALE_GIVEN_NAMES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(_MUSLIM_FEMALE + _JAWA_FEMALE + _KRISTEN_FEMALE + _TIONGHOA_FEMALE)
)

# Mandailing / Angkola marga (predominantly Muslim) and Toba / Simalungun marga (predominantly Christian).
_MARGA_MANDAILING: Final[tuple[str, ...]] = (
    "Siregar", "Nasution", "Lubis", "Harahap", "Pane", "Hasibuan", "Pohan", "Daulay", "Rangkuti",
    "Ritonga", "Dalimunthe", "Matondang", "Batubara", "Tanjung", "Pulungan", "Rambe",
)
_MARGA_TOBA: Final[tuple[str, ...]] = (
    "Simanjuntak", "Sitorus", "Pasaribu", "Hutagalung", "Panjaitan", "Sinaga", "Simatupang",
    "Tambunan", "Manurung", "Sihombing", "Situmorang", "Napitupulu", "Hutapea", "Marpaung", "Silalahi",
    "Sirait", "Butarbutar", "Damanik", "Saragih", "Purba", "Siagian", "Nainggolan", "Pardede",
)
BATAK_MARGA: Final[tuple[str, ...]] = _MARGA_MANDAILING + _MARGA_TOBA

CHINESE_INDONESIAN_SURNAMES: Final[tuple[str, ...]] = (
    "Wijaya", "Gunawan", "Halim", "Salim", "Tanoto", "Santoso", "Kusuma", "Lim", "Tan", "Sutanto",
    "Setiawan", "Tjandra", "Wibowo", "Susanto", "Hartanto",
)

_MALE_SUFFIXES: Final = ("Syahputra", "Saputra", "Hidayat", "Effendi", "Siswanto", "Nasrullah")
_FEMALE_SUFFIXES: Final = ("Syahputri", "Lestari", "Rahayu", "Wulandari", "Handayani", "Safitri")

Sex = Literal["M", "F"]
_SEXES: Final[tuple[Sex, ...]] = ("M", "F")


def _weighted(rng: random.Random, options: Sequence[tuple[_T, float]]) -> _T:
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(values, weights=weights, k=1)[0]


def _style_for(ethnicity: Ethnicity, marga: str | None) -> _NameStyle:
    if ethnicity == "TIONGHOA":
        return "TIONGHOA"
    if ethnicity == "BATAK" and marga in _MARGA_TOBA:
        return "KRISTEN"
    return "JAWA" if ethnicity == "JAWA" else "MUSLIM"


def _given(rng: random.Random, sex: Sex, style: _NameStyle) -> str:
    pools: dict[_NameStyle, tuple[tuple[str, ...], tuple[str, ...]]] = {
        "MUSLIM": (_MUSLIM_MALE, _MUSLIM_FEMALE),
        "JAWA": (_MUSLIM_MALE + _JAWA_MALE * 2, _MUSLIM_FEMALE + _JAWA_FEMALE * 2),
        "KRISTEN": (_KRISTEN_MALE, _KRISTEN_FEMALE),
        "TIONGHOA": (_TIONGHOA_MALE, _TIONGHOA_FEMALE),
    }
    male, female = pools[style]
    return rng.choice(male if sex == "M" else female)


def _compose(rng: random.Random, sex: Sex, style: _NameStyle, family_name: str | None,
             *, batak: bool) -> str:
    given = _given(rng, sex, style)
    if batak and family_name is not None:
        # Women are often written "<name> Br. <marga>" (boru) on KK and KTP.
        if sex == "F" and rng.random() < 0.35:
            return f"{given} Br. {family_name}"
        return f"{given} {family_name}"
    if family_name is not None:
        return f"{given} {family_name}"
    if style in ("MUSLIM", "JAWA") and " " not in given:
        roll = rng.random()
        if sex == "M" and roll < 0.18 and not given.startswith(("Muhammad", "Ahmad", "Abdul")):
            return f"Muhammad {given}"
        if roll > 0.75:
            return f"{given} {rng.choice(_MALE_SUFFIXES if sex == 'M' else _FEMALE_SUFFIXES)}"
    return given


def _family_name(rng: random.Random, ethnicity: Ethnicity, *, avoid: str | None = None) -> str | None:
    if ethnicity == "BATAK":
        # A spouse or in-law usually comes from the same (Mandailing/Angkola or Toba) community.
        if avoid in _MARGA_MANDAILING or avoid in _MARGA_TOBA:
            pool = _MARGA_MANDAILING if avoid in _MARGA_MANDAILING else _MARGA_TOBA
        else:
            pool = _MARGA_MANDAILING if rng.random() < 0.6 else _MARGA_TOBA
        return rng.choice([m for m in pool if m != avoid])
    if ethnicity == "TIONGHOA":
        return rng.choice(CHINESE_INDONESIAN_SURNAMES)
    return None


def full_name(rng: random.Random, sex: Sex, ethnicity: Ethnicity | None = None) -> str:
    """A realistic full name for someone from the city (ethnicity drawn if not given)."""
    eth = ethnicity if ethnicity is not None else _weighted(rng, ETHNICITY_WEIGHTS)
    family = _family_name(rng, eth)
    return _compose(rng, sex, _style_for(eth, family), family, batak=eth == "BATAK")


def marga_of(name: str) -> str | None:
    """The Batak marga a full name ends with, if any."""
    last = name.rsplit(" ", 1)[-1]
    return last if last in BATAK_MARGA else None


# --------------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------------

STREETS: Final[tuple[str, ...]] = (
    "Jl. Jenderal Sudirman", "Jl. Imam Bonjol", "Jl. Asahan", "Jl. Teuku Umar", "Jl. Mesjid",
    "Jl. Ahmad Yani", "Jl. Diponegoro", "Jl. Sisingamangaraja", "Jl. Veteran", "Jl. Pahlawan",
    "Jl. H.O.S. Cokroaminoto", "Jl. Sriwijaya", "Jl. Anwar Idris", "Jl. Yos Sudarso", "Jl. M.T. Haryono",
    "Jl. Gatot Subroto", "Jl. Dr. Sutomo", "Jl. Letjen Suprapto", "Jl. Ir. H. Juanda", "Jl. Cut Nyak Dhien",
    "Jl. Kartini", "Jl. Pelabuhan", "Jl. Kapias", "Jl. Sei Raja", "Jl. Datuk Bandar", "Jl. Arteri",
    "Jl. Pendidikan", "Jl. Perintis Kemerdekaan", "Jl. Binjai", "Jl. Sentosa",
)
GANG_NAMES: Final[tuple[str, ...]] = (
    "Gg. Mesjid", "Gg. Melati", "Gg. Sepakat", "Gg. Bersama", "Gg. Damai", "Gg. Keluarga", "Gg. Rukun",
    "Gg. Nelayan", "Gg. Perintis", "Gg. Mushola", "Gg. Bilal", "Gg. Amal", "Gg. Sederhana",
    "Gg. Kenanga", "Gg. Mawar", "Gg. Pinang", "Gg. Kelapa", "Gg. Bakti", "Gg. Setia", "Gg. Karya",
)
_ROMAN: Final = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")


def rt(rng: random.Random) -> str:
    """An RT number, zero-padded: "001".."015"."""
    return f"{rng.randint(1, 15):03d}"


def rw(rng: random.Random) -> str:
    """An RW number, zero-padded: "001".."015". (Tanjungbalai itself counts *lingkungan*, see address.)"""
    return f"{rng.randint(1, 15):03d}"


def address(rng: random.Random) -> str:
    """A street address line: ``Jl. Imam Bonjol Gg. Melati No. 27, Lingkungan IV``."""
    street = rng.choice(STREETS)
    number = rng.randint(1, 160)
    if rng.random() < 0.6:
        street = f"{street} {rng.choice(GANG_NAMES)}"
        number = rng.randint(1, 45)
    suffix = rng.choice(("", "", "", "", "A", "B"))
    return f"{street} No. {number}{suffix}, Lingkungan {rng.choice(_ROMAN[:rng.randint(4, 12)])}"


def phone_number(rng: random.Random) -> str:
    """An Indonesian mobile number (Telkomsel / Indosat / XL prefixes): ``081312345678``."""
    prefix = rng.choice(("0812", "0813", "0821", "0822", "0852", "0853", "0857", "0858", "0877", "0878"))
    return prefix + "".join(str(rng.randint(0, 9)) for _ in range(rng.choice((7, 8))))


# --------------------------------------------------------------------------------------------------
# Programs and complaints
# --------------------------------------------------------------------------------------------------

SectorName = Literal[
    "HEALTH", "EDUCATION", "PKH", "FOOD", "ENERGY", "AGRICULTURE", "FISHERIES", "HOUSING",
    "CIVIL_REGISTRATION", "SOCIAL_REHABILITATION", "OTHER",
]
SECTORS: Final[tuple[SectorName, ...]] = (
    "HEALTH", "EDUCATION", "PKH", "FOOD", "ENERGY", "AGRICULTURE", "FISHERIES", "HOUSING",
    "CIVIL_REGISTRATION", "SOCIAL_REHABILITATION", "OTHER",
)


@dataclass(frozen=True, slots=True)
class Program:
    code: str
    name: str
    sector: SectorName
    owner_agency: str
    sla_days: int


PROGRAMS: Final[tuple[Program, ...]] = (
    Program("PKH", "Program Keluarga Harapan", "PKH", "Kementerian Sosial", 14),
    Program("BPNT", "Bantuan Pangan Non Tunai (Program Sembako)", "FOOD", "Kementerian Sosial", 14),
    Program("PBI-JK", "Penerima Bantuan Iuran Jaminan Kesehatan (KIS PBI APBN)", "HEALTH",
            "BPJS Kesehatan", 7),
    Program("KIS-DAERAH", "Jaminan Kesehatan Daerah (PBI APBD Kota Tanjungbalai)", "HEALTH",
            "Dinas Kesehatan Kota Tanjungbalai", 7),
    Program("KIP", "Program Indonesia Pintar (Kartu Indonesia Pintar)", "EDUCATION",
            "Dinas Pendidikan Kota Tanjungbalai", 21),
    Program("BEASISWA-DAERAH", "Beasiswa Pemerintah Kota Tanjungbalai bagi Siswa dan Mahasiswa Kurang Mampu",
            "EDUCATION", "Dinas Pendidikan Kota Tanjungbalai", 30),
    Program("RTLH", "Rehabilitasi Rumah Tidak Layak Huni (Bedah Rumah)", "HOUSING",
            "Dinas Perumahan dan Kawasan Permukiman Kota Tanjungbalai", 30),
    Program("ADMINDUK", "Layanan Administrasi Kependudukan (KTP-el, KK, Akta Kelahiran/Kematian)",
            "CIVIL_REGISTRATION", "Dinas Kependudukan dan Pencatatan Sipil Kota Tanjungbalai", 7),
    Program("REHSOS", "Rehabilitasi Sosial Dasar (Panti dan Luar Panti)", "SOCIAL_REHABILITATION",
            "Dinas Sosial Kota Tanjungbalai", 14),
    Program("ATENSI", "Asistensi Rehabilitasi Sosial (ATENSI) bagi Lansia, Penyandang Disabilitas dan Anak",
            "SOCIAL_REHABILITATION", "Kementerian Sosial", 14),
    # Dana Desa money reaches desa only; every unit in Kota Tanjungbalai is a kelurahan, so the demo
    # lists the program (complaints ask about it) but never enrols anyone in it.
    Program("BLT-DD", "Bantuan Langsung Tunai Dana Desa", "OTHER",
            "Kementerian Desa, Pembangunan Daerah Tertinggal, dan Transmigrasi", 14),
    Program("LISTRIK-SUBSIDI", "Subsidi Listrik Rumah Tangga Daya 450 VA dan 900 VA", "ENERGY",
            "PT PLN (Persero)", 14),
    Program("NELAYAN", "Bantuan Nelayan Kecil (Kartu KUSUKA, Asuransi Nelayan, Alat Tangkap)", "FISHERIES",
            "Dinas Perikanan Kota Tanjungbalai", 21),
    Program("PERTANIAN", "Bantuan Sarana Produksi Pertanian (Kartu Tani, Pupuk Bersubsidi, Benih)",
            "AGRICULTURE", "Dinas Pertanian Kota Tanjungbalai", 21),
)
PROGRAM_BY_CODE: Final[dict[str, Program]] = {p.code: p for p in PROGRAMS}

COMPLAINT_TEMPLATES: Final[dict[SectorName, tuple[str, ...]]] = {
    "HEALTH": (
        "Ibu menderita hipertensi, belum memiliki KIS/PBI-JK dan tidak sanggup berobat rutin ke puskesmas.",
        "Kartu KIS PBI suami dinonaktifkan, ditolak saat berobat ke RSUD Dr. Tengku Mansyur.",
        "Bayi yang lahir tiga bulan lalu belum didaftarkan sebagai peserta PBI-JK.",
        "Bapak penderita TBC paru perlu kontrol rutin, kepesertaan BPJS mandiri menunggak iuran.",
        "Nenek stroke dan terbaring di rumah, keluarga tidak mampu membayar iuran BPJS kelas III.",
    ),
    "EDUCATION": (
        "Anak kedua tidak menerima KIP padahal keluarga terdaftar DTKS.",
        "Dana PIP anak kelas 8 belum cair sejak semester lalu, sekolah meminta surat keterangan kelurahan.",
        "Anak putus sekolah setelah lulus SD karena harus membantu ayah melaut.",
        "Anak lulus SMA diterima kuliah tetapi tidak mampu membayar UKT, memohon beasiswa daerah.",
    ),
    "PKH": (
        "Bantuan PKH tidak masuk ke rekening KKS sejak tahap kedua tahun ini.",
        "Keluarga dikeluarkan dari PKH setelah pemutakhiran data, padahal masih ada anak sekolah dan lansia.",
        "Kartu KKS hilang saat banjir rob, bantuan PKH tidak bisa dicairkan.",
        "Pengurus PKH masih tercatat atas nama istri yang sudah meninggal dunia.",
    ),
    "FOOD": (
        "Keluarga tidak lagi menerima BPNT sejak tiga bulan.",
        "Saldo bantuan sembako di KKS kosong saat akan ditukarkan di e-warong.",
        "Lansia tinggal sendiri, tidak terdaftar sebagai penerima bantuan pangan beras 10 kg.",
    ),
    "ENERGY": (
        "Subsidi listrik 450 VA dicabut karena data keluarga tidak padan dengan DTKS.",
        "Token listrik bersubsidi tidak bisa dibeli, ID pelanggan masih atas nama pemilik rumah lama.",
        "Rumah belum teraliri listrik PLN, masih menumpang sambungan dari tetangga.",
        "Keluarga kesulitan membeli LPG 3 kg karena NIK tidak terdaftar di pangkalan.",
    ),
    "AGRICULTURE": (
        "Petani penggarap tidak mendapat alokasi pupuk bersubsidi karena tidak terdaftar di e-RDKK.",
        "Tanaman padi gagal panen akibat banjir rob, memohon bantuan benih.",
        "Kartu Tani belum diterima walaupun sudah terdaftar di kelompok tani.",
    ),
    "FISHERIES": (
        "Nelayan kecil belum memiliki kartu KUSUKA sehingga tidak bisa membeli solar bersubsidi.",
        "Sampan dan jaring rusak diterjang angin kencang, memohon bantuan alat tangkap.",
        "Klaim asuransi nelayan belum dibayar setelah suami meninggal saat melaut.",
    ),
    "HOUSING": (
        "Rumah panggung papan sudah lapuk dan hampir roboh, mengusulkan bantuan bedah rumah (RTLH).",
        "Atap rumah bocor dan lantai tanah tergenang setiap air pasang.",
        "Sudah diusulkan RTLH dua tahun lalu tetapi belum ada verifikasi lapangan.",
    ),
    "CIVIL_REGISTRATION": (
        "Anak belum memiliki akta kelahiran sehingga tidak bisa didaftarkan ke sekolah.",
        "NIK kepala keluarga tidak padan dengan data Dukcapil, bantuan tidak bisa disalurkan.",
        "KK masih mencantumkan suami yang sudah meninggal, perlu akta kematian dan pembaruan KK.",
        "Lansia belum memiliki KTP-el karena tidak mampu datang ke kantor Disdukcapil.",
    ),
    "SOCIAL_REHABILITATION": (
        "Anak penyandang disabilitas fisik membutuhkan kursi roda dan terapi.",
        "Lansia terlantar tinggal sendiri tanpa keluarga yang merawat.",
        "Remaja korban penyalahgunaan narkoba memerlukan rujukan rehabilitasi.",
        "Anggota keluarga dengan gangguan jiwa dipasung, perlu rujukan ke rumah sakit jiwa.",
    ),
    "OTHER": (
        "Rumah terdampak banjir rob, memohon bantuan logistik darurat.",
        "Keluarga korban kebakaran di permukiman padat membutuhkan bantuan sandang dan hunian sementara.",
        "Menanyakan cara mendaftarkan keluarga ke DTKS melalui kelurahan.",
        "Menanyakan mengapa keluarga tidak menerima BLT padahal tetangga menerima.",
    ),
}


def complaint_description(rng: random.Random, sector: SectorName) -> str:
    """A complaint description in Bahasa Indonesia for the sector."""
    return rng.choice(COMPLAINT_TEMPLATES[sector])


# --------------------------------------------------------------------------------------------------
# NIK and No. KK
# --------------------------------------------------------------------------------------------------

_KEC_CODE_RE: Final = re.compile(r"^(\d{2})\.(\d{2})\.(\d{2})$")


def _region_digits(kecamatan_code: str) -> str:
    match = _KEC_CODE_RE.match(kecamatan_code)
    if match is None:
        raise ValueError(f"not a kecamatan code (PP.KK.CC): {kecamatan_code!r}")
    return "".join(match.groups())


def _serial(rng: random.Random, serial: int | None) -> int:
    if serial is None:
        return rng.randint(1, 9999)
    if not 1 <= serial <= 9999:
        raise ValueError(f"serial must be 1..9999, got {serial}")
    return serial


def make_nik(
    rng: random.Random,
    kecamatan_code: str,
    birth_date: datetime.date,
    female: bool,
    serial: int | None = None,
) -> str:
    """A well-formed 16-digit NIK: region (6) + DDMMYY with day + 40 for women + serial (0001-9999)."""
    day = birth_date.day + (40 if female else 0)
    return (
        f"{_region_digits(kecamatan_code)}{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}"
        f"{_serial(rng, serial):04d}"
    )


def make_kk(rng: random.Random, kecamatan_code: str, issued: datetime.date) -> str:
    """A well-formed 16-digit No. KK: region (6) + issue date DDMMYY + serial (0001-9999)."""
    return (
        f"{_region_digits(kecamatan_code)}{issued.day:02d}{issued.month:02d}{issued.year % 100:02d}"
        f"{rng.randint(1, 9999):04d}"
    )


@dataclass(frozen=True, slots=True)
class NikParts:
    kecamatan_code: str  # "12.74.01"
    day: int
    month: int
    year_2digit: int
    female: bool
    serial: int


def decode_nik(nik: str) -> NikParts:
    """Split a NIK into its parts (the century of the birth year is not recorded)."""
    if len(nik) != 16 or not nik.isdigit():
        raise ValueError("a NIK has exactly 16 digits")
    day = int(nik[6:8])
    return NikParts(
        kecamatan_code=f"{nik[0:2]}.{nik[2:4]}.{nik[4:6]}",
        day=day - 40 if day > 40 else day,
        month=int(nik[8:10]),
        year_2digit=int(nik[10:12]),
        female=day > 40,
        serial=int(nik[12:16]),
    )


# --------------------------------------------------------------------------------------------------
# Households
# --------------------------------------------------------------------------------------------------

RelationName = Literal["HEAD", "SPOUSE", "CHILD", "PARENT", "OTHER_RELATIVE"]
Education = Literal["NONE", "SD", "SMP", "SMA", "D3", "S1"]
EDUCATION_LEVELS: Final[tuple[Education, ...]] = ("NONE", "SD", "SMP", "SMA", "D3", "S1")

OCCUPATIONS: Final[tuple[str, ...]] = (
    "nelayan", "buruh pelabuhan", "pedagang kecil", "tukang becak", "ibu rumah tangga", "pelajar",
    "tidak bekerja", "petani", "buruh harian lepas",
)
DISABILITIES: Final[tuple[str, ...]] = (
    "disabilitas fisik", "disabilitas netra", "disabilitas rungu wicara", "disabilitas intelektual",
    "disabilitas mental",
)
CHRONIC_ILLNESSES: Final[tuple[str, ...]] = (
    "hipertensi", "diabetes melitus", "TBC paru", "penyakit jantung", "stroke", "asma",
    "gagal ginjal kronis", "PPOK",
)


@dataclass(frozen=True, slots=True)
class DemoMember:
    name: str
    sex: Sex
    birth_date: datetime.date
    relation: RelationName
    education: Education
    occupation: str
    disability: str | None
    chronic_illness: str | None
    programs: tuple[str, ...]  # program codes from PROGRAMS
    nik: str


@dataclass(slots=True)
class _Draft:
    name: str
    sex: Sex
    birth_date: datetime.date
    relation: RelationName
    education: Education = "NONE"
    occupation: str = "tidak bekerja"
    disability: str | None = None
    chronic_illness: str | None = None
    programs: set[str] | None = None


def age_on(birth_date: datetime.date, today: datetime.date) -> int:
    """Completed years of age on ``today``."""
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def _birth_date_for_age(rng: random.Random, today: datetime.date, age: int) -> datetime.date:
    """A birth date at which someone is exactly ``age`` on ``today``."""
    latest = _years_before(today, age)
    earliest = _years_before(today, age + 1) + datetime.timedelta(days=1)
    return earliest + datetime.timedelta(days=rng.randint(0, (latest - earliest).days))


def _years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _adult_education(rng: random.Random, age: int) -> Education:
    if age >= 60:
        options: tuple[tuple[Education, float], ...] = (("NONE", 30), ("SD", 50), ("SMP", 12), ("SMA", 8))
    elif age >= 40:
        options = (("NONE", 10), ("SD", 40), ("SMP", 25), ("SMA", 22), ("D3", 1), ("S1", 2))
    else:
        options = (("NONE", 3), ("SD", 22), ("SMP", 30), ("SMA", 38), ("D3", 3), ("S1", 4))
    return _weighted(rng, options)


def _head_occupation(rng: random.Random, sex: Sex, age: int, kecamatan_code: str) -> str:
    if age >= 68 and rng.random() < 0.6:
        return "tidak bekerja"
    if sex == "F":
        return _weighted(rng, (("pedagang kecil", 35), ("buruh harian lepas", 30), ("tidak bekerja", 15),
                               ("ibu rumah tangga", 15), ("petani", 5)))
    coastal = kecamatan_code in _COASTAL_KECAMATAN
    port = kecamatan_code in _PORT_KECAMATAN
    rural = kecamatan_code in _RURAL_KECAMATAN
    return _weighted(rng, (
        ("nelayan", 34 if coastal else 12),
        ("buruh pelabuhan", 22 if port else 8),
        ("pedagang kecil", 10 if coastal else 18),
        ("tukang becak", 8 if rural else 16),
        ("buruh harian lepas", 22),
        ("petani", 14 if rural else 2),
        ("tidak bekerja", 4),
    ))


def _child_schooling(rng: random.Random, age: int, sex: Sex) -> tuple[Education, str]:
    """Current level (for pupils) or highest level reached, and occupation, of a child living at home."""
    if age < 7:
        return "NONE", "tidak bekerja"
    if age <= 12:
        return "SD", "pelajar"
    if age <= 15:
        if rng.random() < 0.08:  # left school after SD
            return "SD", "tidak bekerja" if sex == "F" else rng.choice(("tidak bekerja", "nelayan"))
        return "SMP", "pelajar"
    if age <= 18:
        if rng.random() < 0.2:  # left school after SMP
            job = rng.choice(("buruh harian lepas", "tidak bekerja") if sex == "F"
                             else ("nelayan", "buruh harian lepas", "tukang becak", "buruh pelabuhan"))
            return "SMP", job
        return "SMA", "pelajar"
    if age <= 22 and rng.random() < 0.12:  # at college or polytechnic
        return "SMA", "pelajar"
    education: Education = _weighted(rng, (("SD", 6), ("SMP", 24), ("SMA", 56), ("D3", 6), ("S1", 8)))
    if sex == "F":
        job = _weighted(rng, (("tidak bekerja", 35), ("pedagang kecil", 30), ("buruh harian lepas", 35)))
    else:
        job = _weighted(rng, (("nelayan", 25), ("buruh pelabuhan", 15), ("buruh harian lepas", 30),
                              ("tukang becak", 12), ("pedagang kecil", 10), ("tidak bekerja", 8)))
    return education, job


def _health(rng: random.Random, draft: _Draft, today: datetime.date) -> None:
    age = age_on(draft.birth_date, today)
    p_disability = 0.08 if age >= 60 else 0.025
    if rng.random() < p_disability:
        draft.disability = rng.choice(DISABILITIES)
    p_chronic = 0.01 if age < 15 else 0.04 if age < 40 else 0.18 if age < 60 else 0.4
    if rng.random() < p_chronic:
        if age < 15:
            draft.chronic_illness = rng.choice(("asma", "TBC paru"))
        else:
            draft.chronic_illness = rng.choice(CHRONIC_ILLNESSES)


def _add(draft: _Draft, code: str) -> None:
    if draft.programs is None:
        draft.programs = set()
    draft.programs.add(code)


def _assign_programs(rng: random.Random, drafts: list[_Draft], today: datetime.date) -> None:
    """Enrol the family in programs with the coverage gaps that generate real complaints."""
    tier = _weighted(rng, ((1, 30), (2, 30), (3, 25), (4, 15)))  # welfare decile band, 1 = poorest
    registered = rng.random() < {1: 0.85, 2: 0.75, 3: 0.55, 4: 0.3}[tier]  # in DTKS
    head = drafts[0]
    # The PKH/BPNT account holder (pengurus) is the wife, or the head when there is none.
    carer = next((d for d in drafts if d.relation in ("HEAD", "SPOUSE") and d.sex == "F"), head)
    ages = [age_on(d.birth_date, today) for d in drafts]
    pkh_component = any(a <= 18 or a >= 60 for a in ages) or any(d.disability for d in drafts)

    has_pkh = registered and pkh_component and rng.random() < {1: 0.7, 2: 0.55, 3: 0.35, 4: 0.15}[tier]
    if has_pkh:
        _add(carer, "PKH")
    if registered and rng.random() < {1: 0.8, 2: 0.7, 3: 0.5, 4: 0.25}[tier]:
        _add(carer, "BPNT")
    if registered and rng.random() < 0.55:
        _add(head, "LISTRIK-SUBSIDI")
    if registered and rng.random() < 0.06:
        _add(head, "RTLH")

    pbi = registered and rng.random() < {1: 0.9, 2: 0.85, 3: 0.7, 4: 0.5}[tier]
    jamkesda = not pbi and rng.random() < 0.3
    for draft, age in zip(drafts, ages, strict=True):
        if pbi and rng.random() < 0.93:  # a newborn or a newcomer is often still missing
            _add(draft, "PBI-JK")
        elif jamkesda:
            _add(draft, "KIS-DAERAH")
        if draft.occupation == "pelajar":
            p_kip = 0.65 if has_pkh else 0.35 if registered else 0.05
            if 6 <= age <= 21 and rng.random() < p_kip:
                _add(draft, "KIP")
            if 16 <= age <= 22 and rng.random() < 0.08:
                _add(draft, "BEASISWA-DAERAH")
        if draft.occupation == "nelayan" and age >= 18 and rng.random() < 0.45:
            _add(draft, "NELAYAN")
        if draft.occupation == "petani" and rng.random() < 0.5:
            _add(draft, "PERTANIAN")
        if registered and (draft.disability or age >= 60) and rng.random() < 0.15:
            _add(draft, "ATENSI")
        if draft.disability in ("disabilitas mental", "disabilitas intelektual") and rng.random() < 0.2:
            _add(draft, "REHSOS")


def household_members(
    rng: random.Random,
    kecamatan_code: str,
    today: datetime.date,
    *,
    used_niks: set[str] | None = None,
) -> list[DemoMember]:
    """A plausible poor family living in the kecamatan, head first.

    A married couple (or a widowed or divorced woman heading the family, or a widower) with up to five
    children still at home and sometimes an elderly parent of the head. Batak children carry their
    father's marga: the head's marga when the head is a man, the late or absent husband's when a woman
    heads the family. NIKs are unique within the family and, if ``used_niks`` is passed, against (and
    added to) that set.
    """
    _region_digits(kecamatan_code)
    ethnicity = _weighted(rng, ETHNICITY_WEIGHTS)
    female_head = rng.random() < 0.16
    drafts: list[_Draft] = []

    head_family = _family_name(rng, ethnicity)
    head_style = _style_for(ethnicity, head_family)
    batak = ethnicity == "BATAK"
    if female_head:
        head_age = min(80, max(26, round(rng.triangular(26, 80, 52))))
    else:
        head_age = min(75, max(22, round(rng.triangular(22, 75, 40))))
    head_sex: Sex = "F" if female_head else "M"
    head = _Draft(
        name=_compose(rng, head_sex, head_style, head_family, batak=batak),
        sex=head_sex,
        birth_date=_birth_date_for_age(rng, today, head_age),
        relation="HEAD",
        education=_adult_education(rng, head_age),
        occupation=_head_occupation(rng, head_sex, head_age, kecamatan_code),
    )
    drafts.append(head)

    # Mother of the children and the father's family name / naming style.
    mother_birth: datetime.date
    if female_head:
        mother_birth = head.birth_date
        father_ethnicity = ethnicity if rng.random() < 0.8 else _weighted(rng, ETHNICITY_WEIGHTS)
        father_family = _family_name(rng, father_ethnicity, avoid=head_family)
        child_ethnicity = father_ethnicity
    else:
        child_ethnicity = ethnicity
        father_family = head_family
        if rng.random() < 0.92:
            wife_age = max(18, head_age - rng.randint(-3, 10))
            wife_ethnicity = ethnicity if rng.random() < 0.8 else _weighted(rng, ETHNICITY_WEIGHTS)
            # Batak marriages are exogamous: the wife keeps her own, different, marga.
            wife_family = _family_name(rng, wife_ethnicity, avoid=head_family)
            wife = _Draft(
                name=_compose(rng, "F", _style_for(wife_ethnicity, wife_family),
                              wife_family if wife_ethnicity != "TIONGHOA" else None,
                              batak=wife_ethnicity == "BATAK"),
                sex="F",
                birth_date=_birth_date_for_age(rng, today, wife_age),
                relation="SPOUSE",
                education=_adult_education(rng, wife_age),
                occupation=_weighted(rng, (("ibu rumah tangga", 55), ("pedagang kecil", 20),
                                           ("buruh harian lepas", 20), ("petani", 5))),
            )
            drafts.append(wife)
            mother_birth = wife.birth_date
        else:
            mother_birth = _years_before(head.birth_date, -rng.randint(2, 6))
    child_style = _style_for(child_ethnicity, father_family)
    child_batak = child_ethnicity == "BATAK"
    # Chinese-Indonesian family names are not always passed on.
    child_family = father_family if child_batak or rng.random() < 0.7 else None

    wanted = _weighted(rng, ((0, 8), (1, 17), (2, 25), (3, 23), (4, 15), (5, 12)))
    birth = _years_before(mother_birth, -rng.randint(18, 28)) + datetime.timedelta(days=rng.randint(0, 364))
    children = 0
    while children < wanted and birth <= today and age_on(mother_birth, birth) <= 44:
        age = age_on(birth, today)
        # Older sons and daughters have mostly married and moved out.
        if age <= 24 or rng.random() < 0.3:
            sex = rng.choice(_SEXES)
            education, occupation = _child_schooling(rng, age, sex)
            drafts.append(_Draft(
                name=_compose(rng, sex, child_style, child_family, batak=child_batak),
                sex=sex,
                birth_date=birth,
                relation="CHILD",
                education=education,
                occupation=occupation,
            ))
            children += 1
        birth += datetime.timedelta(days=rng.randint(480, 1700))

    if rng.random() < 0.12 and head_age <= 62:
        parent_age = min(95, head_age + rng.randint(20, 35))
        parent_sex: Sex = "F" if rng.random() < 0.7 else "M"
        if parent_sex == "M":
            # The head's father shares the head's marga or family name.
            parent_name = _compose(rng, "M", head_style, head_family, batak=batak)
        else:
            mother_family = _family_name(rng, ethnicity, avoid=head_family)
            parent_name = _compose(rng, "F", _style_for(ethnicity, mother_family),
                                   mother_family if batak else None, batak=batak)
        drafts.append(_Draft(
            name=parent_name,
            sex=parent_sex,
            birth_date=_birth_date_for_age(rng, today, parent_age),
            relation="PARENT",
            education=_adult_education(rng, parent_age),
            occupation="tidak bekerja" if rng.random() < 0.8 else "pedagang kecil",
        ))
    elif rng.random() < 0.04:
        # A nephew or niece staying with the family to go to school in town.
        sex = rng.choice(_SEXES)
        age = rng.randint(10, 20)
        education, occupation = _child_schooling(rng, age, sex)
        drafts.append(_Draft(
            name=full_name(rng, sex, ethnicity),
            sex=sex,
            birth_date=_birth_date_for_age(rng, today, age),
            relation="OTHER_RELATIVE",
            education=education,
            occupation=occupation,
        ))

    for draft in drafts:
        _health(rng, draft, today)
    _assign_programs(rng, drafts, today)

    taken: set[str] = used_niks if used_niks is not None else set()
    family_niks: set[str] = set()
    members: list[DemoMember] = []
    for draft in drafts:
        nik = make_nik(rng, kecamatan_code, draft.birth_date, draft.sex == "F")
        while nik in taken or nik in family_niks:
            nik = make_nik(rng, kecamatan_code, draft.birth_date, draft.sex == "F")
        family_niks.add(nik)
        taken.add(nik)
        members.append(DemoMember(
            name=draft.name,
            sex=draft.sex,
            birth_date=draft.birth_date,
            relation=draft.relation,
            education=draft.education,
            occupation=draft.occupation,
            disability=draft.disability,
            chronic_illness=draft.chronic_illness,
            programs=tuple(sorted(draft.programs or ())),
            nik=nik,
        ))
    return members


# --------------------------------------------------------------------------------------------------
# Poverty indicators (the 14 BPS criteria for a poor household)
# --------------------------------------------------------------------------------------------------

FLOOR_TYPES: Final[tuple[str, ...]] = ("tanah", "bambu", "papan/kayu kualitas rendah", "semen", "keramik")
WALL_TYPES: Final[tuple[str, ...]] = (
    "bambu/rumbia", "papan/kayu kualitas rendah", "tembok tanpa plester", "tembok diplester",
)
TOILET_TYPES: Final[tuple[str, ...]] = ("tidak ada", "jamban di atas sungai/laut", "bersama/umum", "sendiri")
DRINKING_WATER_SOURCES: Final[tuple[str, ...]] = (
    "sungai/air hujan", "sumur tidak terlindung", "air isi ulang", "sumur bor", "PDAM",
)
LIGHTING_SOURCES: Final[tuple[str, ...]] = (
    "bukan listrik", "listrik menumpang tetangga", "listrik PLN 450 VA", "listrik PLN 900 VA",
)
COOKING_FUELS: Final[tuple[str, ...]] = ("kayu bakar", "minyak tanah", "LPG 3 kg")
INCOME_SOURCES: Final[tuple[str, ...]] = (
    "nelayan", "buruh pelabuhan", "buruh harian lepas", "tukang becak", "pedagang kecil", "petani",
    "tidak ada penghasilan tetap",
)


def _graded(rng: random.Random, options: Sequence[str], deprivation: float) -> str:
    """Pick from options ordered worst to best, leaning to the worst as deprivation (0..1) grows."""
    n = len(options)
    weights = [(1 + deprivation * 3) ** (n - 1 - i) * (1 + (1 - deprivation) * 3) ** i for i in range(n)]
    return rng.choices(list(options), weights=weights, k=1)[0]


def poverty_indicators(rng: random.Random) -> dict[str, object]:
    """The 14 BPS poverty criteria for one household, drawn with a shared degree of deprivation."""
    deprivation = rng.betavariate(2.2, 1.8)

    def yes(probability: float) -> bool:
        return rng.random() < probability

    return {
        "floor_area_m2_per_person": round(rng.uniform(3.0, 9.0) + (1 - deprivation) * 6.0, 1),
        "floor_type": _graded(rng, FLOOR_TYPES, deprivation),
        "wall_type": _graded(rng, WALL_TYPES, deprivation),
        "toilet": _graded(rng, TOILET_TYPES, deprivation),
        "drinking_water": _graded(rng, DRINKING_WATER_SOURCES, deprivation),
        "lighting": _graded(rng, LIGHTING_SOURCES, deprivation),
        "cooking_fuel": _graded(rng, COOKING_FUELS, deprivation * 0.6),
        "meat_milk_weekly": yes(0.7 - 0.6 * deprivation),
        "new_clothes_yearly": yes(0.8 - 0.6 * deprivation),
        "meals_per_day": 3 if rng.random() > deprivation * 0.7 else rng.choice((1, 2, 2)),
        "can_pay_clinic": yes(0.75 - 0.65 * deprivation),
        "head_income_source": rng.choice(INCOME_SOURCES),
        "head_education": _weighted(rng, (("NONE", 5 + 15 * deprivation), ("SD", 30), ("SMP", 25),
                                          ("SMA", 25 - 15 * deprivation), ("D3", 1), ("S1", 1))),
        "savings_over_500k": yes(0.35 - 0.3 * deprivation),
    }


def bps_criteria_met(indicators: dict[str, object]) -> int:
    """How many of the 14 BPS criteria the indicators meet (9 or more: a poor household)."""
    area = indicators["floor_area_m2_per_person"]
    meals = indicators["meals_per_day"]
    checks = (
        isinstance(area, (int, float)) and area < 8,
        indicators["floor_type"] in ("tanah", "bambu", "papan/kayu kualitas rendah"),
        indicators["wall_type"] in ("bambu/rumbia", "papan/kayu kualitas rendah", "tembok tanpa plester"),
        indicators["toilet"] != "sendiri",
        indicators["drinking_water"] in ("sungai/air hujan", "sumur tidak terlindung"),
        indicators["lighting"] != "listrik PLN 900 VA",
        indicators["cooking_fuel"] != "LPG 3 kg",
        indicators["meat_milk_weekly"] is False,
        indicators["new_clothes_yearly"] is False,
        isinstance(meals, int) and meals <= 2,
        indicators["can_pay_clinic"] is False,
        indicators["head_income_source"] in INCOME_SOURCES,  # all low-wage or irregular work
        indicators["head_education"] in ("NONE", "SD"),
        indicators["savings_over_500k"] is False,
    )
    return sum(checks)
