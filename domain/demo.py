"""Seeding the demo district (modelled on Kota Tanjungbalai) through the same services the API uses,
so every demo row passed the same rules and wrote the same case events as real intake."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import demo_data as dd
from domain.actor import Actor
from domain.complaints import service as complaints
from domain.complaints.models import Complaint
from domain.crypto import PersonalDataCipher
from domain.enums import Channel, ComplaintKind, DtksStatus, Priority, RegionLevel, Relation, Role, Sector, Sex
from domain.errors import DomainError
from domain.events import write_events
from domain.households import service as households
from domain.programs import Program
from domain.referrals import service as referrals
from domain.regions import Region
from domain.staff.models import Staff
from domain.staff.service import actor_of, create_staff, hash_password

DEMO_PASSWORD = "rujuk-demo"
SUPERVISOR_KECAMATAN = ((0, 1), (2, 3), (4, 5))
FACILITATORS = 70
TARGETS = (("NEW", 20), ("RETURNED", 5), ("VERIFIED", 14), ("IN_PROGRESS", 18), ("REFERRED", 15),
           ("RESOLVED", 22), ("REJECTED", 6))


@dataclass(slots=True)
class DemoSummary:
    households: int = 0
    complaints: int = 0
    referrals: int = 0
    logins: list[tuple[str, str, str]] = field(default_factory=list)


async def is_seeded(session: AsyncSession) -> bool:
    return await session.get(Region, dd.KABUPATEN[0]) is not None


def demo_logins() -> list[tuple[str, str, str]]:
    """(username, password, what the account is) for the accounts worth trying first."""
    sup = [f"supervisor{i + 1}" for i in range(len(SUPERVISOR_KECAMATAN))]
    rows = [("admin", DEMO_PASSWORD, "admin, national"), ("manajer", DEMO_PASSWORD, "manager, Kota Tanjungbalai")]
    for name, kecs in zip(sup, SUPERVISOR_KECAMATAN, strict=True):
        rows.append((name, DEMO_PASSWORD, "supervisor, " + " + ".join(dd.KECAMATAN[k].name for k in kecs)))
    rows.append(("fasilitator01", DEMO_PASSWORD, f"facilitator, {dd.KELURAHAN[0].name}"))
    return rows


async def _seed_reference(session: AsyncSession) -> None:
    session.add(Region(code=dd.PROVINCE[0], name=dd.PROVINCE[1], level=RegionLevel.PROVINCE.value))
    session.add(Region(code=dd.KABUPATEN[0], name=dd.KABUPATEN[1], level=RegionLevel.KABUPATEN.value,
                       parent_code=dd.PROVINCE[0]))
    for kec in dd.KECAMATAN:
        session.add(Region(code=kec.code, name=kec.name, level=RegionLevel.KECAMATAN.value,
                           parent_code=dd.KABUPATEN[0]))
        for kel in kec.kelurahan:
            session.add(Region(code=kel.code, name=kel.name, level=RegionLevel.DESA.value, parent_code=kec.code))
    for p in dd.PROGRAMS:
        session.add(Program(code=p.code, name=p.name, sector=p.sector, owner_agency=p.owner_agency,
                            sla_days=p.sla_days))
    await session.flush()


@dataclass(slots=True)
class DemoStaff:
    facilitators: dict[str, list[Staff]] = field(default_factory=dict)  # by kelurahan
    supervisors: dict[str, Staff] = field(default_factory=dict)  # by kecamatan


async def _seed_staff(session: AsyncSession, rng: random.Random) -> DemoStaff:
    pw = hash_password(DEMO_PASSWORD)
    out = DemoStaff()

    async def make(username: str, role: Role, region: str | None, extra: tuple[str, ...] = (),
                   supervisor: int | None = None, name: str | None = None) -> Staff:
        staff = await create_staff(session, username=username, password="", password_hash=pw,
                                   full_name=name or dd.full_name(rng, rng.choice(("M", "F"))), role=role,
                                   region_code=region, extra_region_codes=extra, supervisor_id=supervisor)
        return staff

    await make("admin", Role.ADMIN, None, name="Administrator SLRT")
    await make("manajer", Role.MANAGER, dd.KABUPATEN[0])
    for i, kecs in enumerate(SUPERVISOR_KECAMATAN):
        codes = tuple(dd.KECAMATAN[k].code for k in kecs)
        sup = await make(f"supervisor{i + 1}", Role.SUPERVISOR, codes[0], codes[1:])
        out.supervisors.update({code: sup for code in codes})
    for n, kec in enumerate(dd.KECAMATAN, start=1):
        await make(f"puskesos{n}", Role.PUSKESOS_OFFICER, kec.code, supervisor=out.supervisors[kec.code].id)
    kelurahan = list(dd.KELURAHAN)
    for n in range(FACILITATORS):
        kel = kelurahan[n % len(kelurahan)]
        staff = await make(f"fasilitator{n + 1:02d}", Role.FACILITATOR, kel.code,
                           supervisor=out.supervisors[dd.kecamatan_of(kel.code).code].id)
        out.facilitators.setdefault(kel.code, []).append(staff)
    return out


def _member(m: dd.DemoMember) -> households.MemberData:
    return households.MemberData(
        name=m.name, sex=Sex.MALE if m.sex == "M" else Sex.FEMALE, birth_date=m.birth_date,
        relation=Relation(m.relation), nik=m.nik, education=m.education, occupation=m.occupation,
        disability=m.disability, chronic_illness=m.chronic_illness, programs=list(m.programs))


async def _advance(session: AsyncSession, c: Complaint, target: str, *, worker: Actor, supervisor: Actor,
                   programs: dict[str, Program], rng: random.Random, summary: DemoSummary) -> None:
    """Walk a NEW complaint through the status machine to ``target`` the way people would."""
    v = c.version
    if target == "NEW":
        return
    if target == "RETURNED":
        await complaints.return_complaint(session, actor=supervisor, complaint_id=c.id, expected_version=v,
                                          reason="Data anggota keluarga belum lengkap, mohon dilengkapi.")
        return
    if target == "REJECTED":
        await complaints.reject_complaint(session, actor=supervisor, complaint_id=c.id, expected_version=v,
                                          reason="Keluhan tidak dapat ditindaklanjuti: di luar kewenangan SLRT.")
        return
    c = await complaints.verify_complaint(session, actor=supervisor, complaint_id=c.id, expected_version=v)
    if target == "VERIFIED":
        return
    c = await complaints.start_complaint(session, actor=worker, complaint_id=c.id, expected_version=c.version)
    if target == "IN_PROGRESS" or (target == "RESOLVED" and rng.random() < 0.4):
        if target == "RESOLVED":
            await complaints.resolve_complaint(session, actor=worker, complaint_id=c.id, expected_version=c.version,
                                               decision="Informasi program sudah disampaikan kepada keluarga.")
        return
    candidates = [p for p in programs.values() if p.sector == c.sector] or list(programs.values())
    program = rng.choice(candidates)
    r = await referrals.create_referral(session, actor=worker, data=referrals.ReferralData(
        complaint_id=c.id, program_id=program.id, consent_given=True))
    r = await referrals.send_referral(session, actor=supervisor, referral_id=r.id, expected_version=r.version)
    summary.referrals += 1
    if target == "REFERRED":
        if rng.random() < 0.5:
            await referrals.accept_referral(session, actor=supervisor, referral_id=r.id, expected_version=r.version)
        return
    r = await referrals.accept_referral(session, actor=supervisor, referral_id=r.id, expected_version=r.version)
    await referrals.complete_referral(session, actor=supervisor, referral_id=r.id, expected_version=r.version,
                                      outcome="Keluarga sudah didaftarkan dan menerima layanan.")
    c = await complaints.get_complaint(session, actor=supervisor, complaint_id=c.id)
    await complaints.resolve_complaint(session, actor=worker, complaint_id=c.id, expected_version=c.version,
                                       decision="Rujukan selesai; keluhan tertangani.")


async def seed_demo(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    cipher: PersonalDataCipher,
    households_count: int = 3000,
    seed: int = 1274,
    progress: Callable[[int, int], Awaitable[None] | None] | None = None,
    batch: int = 100,
) -> DemoSummary | None:
    """Seed the demo district once; returns ``None`` when it is already there."""
    rng = random.Random(seed)
    summary = DemoSummary(logins=demo_logins())
    async with sessionmaker() as session, session.begin():
        if await is_seeded(session):
            return None
        await _seed_reference(session)
        staff = await _seed_staff(session, rng)
    async with sessionmaker() as session:
        programs = {p.code: p for p in await session.scalars(select(Program))}
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    used_niks: set[str] = set()
    weights = [w for _, w in TARGETS]
    for start in range(0, households_count, batch):
        async with sessionmaker() as session, session.begin():
            for _ in range(start, min(start + batch, households_count)):
                kec, kel = dd.random_kelurahan(rng)
                worker = actor_of(rng.choice(staff.facilitators[kel.code]))
                supervisor = actor_of(staff.supervisors[kec.code])
                members = dd.household_members(rng, kec.code, today, used_niks=used_niks)
                data = households.HouseholdData(
                    region_code=kel.code, address=dd.address(rng), rt=dd.rt(rng), rw=dd.rw(rng),
                    dtks_status=rng.choices(list(DtksStatus), weights=(6, 3, 1))[0],
                    family_cards=[dd.make_kk(rng, kec.code, today - dt.timedelta(days=rng.randint(200, 6000)))],
                    members=[_member(m) for m in members], indicators=dict(dd.poverty_indicators(rng)))
                try:
                    household = (await households.register_household(session, actor=worker, cipher=cipher,
                                                                     data=data)).household
                except DomainError:
                    continue  # a rare generated duplicate: skip it, as a facilitator would
                summary.households += 1
                for _ in range(rng.choices((0, 1, 2), weights=(15, 55, 30))[0]):
                    sector = Sector(rng.choice(dd.SECTORS))
                    reported = now - dt.timedelta(days=rng.uniform(0, 45), minutes=rng.randint(0, 600))
                    filed = await complaints.file_complaint(session, actor=worker, data=complaints.ComplaintData(
                        household_id=household.id, kind=rng.choices(list(ComplaintKind), weights=(2, 1, 7))[0],
                        sector=sector, description=dd.complaint_description(rng, sector.value),
                        channel=rng.choices(list(Channel), weights=(6, 2, 1, 1))[0],
                        priority=rng.choices(list(Priority), weights=(2, 6, 2, 1))[0], reported_at=reported,
                    ), now=now)
                    await session.execute(update(Complaint).where(Complaint.id == filed.complaint.id)
                                          .values(created_at=reported, updated_at=reported))
                    target = rng.choices([t for t, _ in TARGETS], weights=weights)[0]
                    await _advance(session, filed.complaint, target, worker=worker, supervisor=supervisor,
                                   programs=programs, rng=rng, summary=summary)
                    summary.complaints += 1
            await write_events(session)
        if progress is not None:
            result = progress(min(start + batch, households_count), households_count)
            if result is not None:
                await result
    return summary
