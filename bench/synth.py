"""Pure generators of the benchmark dataset's rows: for one chunk of villages planned by :mod:`bench.national`,
households with their members, family cards, complaints, assignments, referrals and case events, in COPY
column order.

Everything is drawn from seeded ``random.Random`` instances, so a scale and a seed always give the same
people, places and cases (ciphertexts excepted: AES-GCM nonces are random, as in the app). People come from
the demo district's generator (:mod:`domain.demo_data`); NIK and No. KK are sealed exactly as the app
seals them (:class:`domain.crypto.PersonalDataCipher`).

A chunk holds whole kecamatan, so NIK and No. KK uniqueness (both start with the kecamatan's digits) is
guaranteed inside one worker process without coordination. Row ids come from :class:`IdRanges`, shared by
the worker processes.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.national import PROGRAMS, START, ChunkPlan, DesaPlan, Row
from domain import demo_data as dd
from domain.crypto import KK, NIK, PersonalDataCipher
from domain.enums import SECTOR_SLA_DAYS, Sector

# complaint statuses of a two-year history at full rollout: most cases are closed, every status occurs
STATUS_WEIGHTS = (("NEW", 8), ("RETURNED", 3), ("VERIFIED", 7), ("IN_PROGRESS", 10), ("REFERRED", 12),
                  ("RESOLVED", 52), ("REJECTED", 8))
COMPLAINTS_PER_HOUSEHOLD = ((0, 25), (1, 20), (2, 20), (3, 15), (4, 10), (5, 6), (6, 4))  # mean ~2

HOUSEHOLD_COLUMNS = ("id", "region_code", "address", "rt", "rw", "latitude", "longitude", "dtks_status",
                     "indicators", "registered_by_id", "version", "created_at", "updated_at")
FAMILY_CARD_COLUMNS = ("id", "household_id", "number_hash", "number_sealed", "number_masked", "created_at")
MEMBER_COLUMNS = ("id", "household_id", "family_card_id", "nik_status", "nik_hash", "nik_sealed", "nik_masked",
                  "name", "sex", "birth_date", "relation", "education", "occupation", "disability",
                  "chronic_illness", "programs", "nik_from_other_region", "version", "created_at", "updated_at")
COMPLAINT_COLUMNS = ("id", "household_id", "member_id", "region_code", "kind", "sector", "program_id",
                     "description", "channel", "priority", "status", "assignee_id", "filed_by_id",
                     "sla_started_at", "sla_due_at", "decision", "status_reason", "closed_at", "reported_at",
                     "version", "created_at", "updated_at")
ASSIGNMENT_COLUMNS = ("id", "complaint_id", "from_staff_id", "to_staff_id", "by_staff_id", "reason", "at")
REFERRAL_COLUMNS = ("id", "complaint_id", "program_id", "region_code", "receiving_agency", "note", "consent_given",
                    "consent_override_reason", "status", "rejection_reason", "revocation_reason", "outcome",
                    "created_by_id", "sent_at", "responded_at", "completed_at", "version", "created_at",
                    "updated_at")
#: case events are staged without ids and numbered in time order when they are moved into case_events
EVENT_COLUMNS = ("occurred_at", "kind", "region_code", "household_id", "complaint_id", "referral_id", "actor_id",
                 "data")

class IdRanges(Protocol):
    def reserve(self, table: str, count: int) -> int:
        """The first of ``count`` consecutive new ids of ``table``."""
        ...


@dataclass(slots=True)
class Rows:
    """One chunk's rows, per table, in COPY column order."""

    households: list[Row] = field(default_factory=list)
    family_cards: list[Row] = field(default_factory=list)
    members: list[Row] = field(default_factory=list)
    complaints: list[Row] = field(default_factory=list)
    assignments: list[Row] = field(default_factory=list)
    referrals: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)


ID_TABLES = ("households", "family_cards", "members", "complaints", "assignments", "referrals")
CLOSED = frozenset({"RESOLVED", "REJECTED"})
_PROGRAMS_BY_SECTOR: dict[str, list[tuple[int, str, int]]] = {}
for _i, (_code, _name, _sector, _agency, _days) in enumerate(PROGRAMS, start=1):
    _PROGRAMS_BY_SECTOR.setdefault(_sector, []).append((_i, _agency, _days))


@dataclass(slots=True)
class _Referral:
    program_id: int
    agency: str
    created_at: dt.datetime
    status: str = "DRAFT"
    version: int = 1
    updated_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    responded_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    consent: bool = True


@dataclass(slots=True)
class _Complaint:
    sector: dd.SectorName
    status: str
    program: tuple[int, str, int] | None
    started: dt.datetime
    created: dt.datetime
    reported: dt.datetime | None
    due: dt.datetime
    end: dt.datetime  # closing time of a closed complaint, else when it last changed
    steps: list[str]


def _steps(rng: random.Random, status: str) -> list[str]:
    """The transitions that bring a NEW complaint to ``status``, with its referrals' (``R_*``)."""
    if status == "NEW":
        return []
    if status == "RETURNED":
        return ["RETURN"]
    if status == "REJECTED":
        return ["REJECT"] if rng.random() < 0.6 else ["VERIFY", "REJECT"]
    steps = ["VERIFY"]
    if status == "VERIFIED":
        return steps
    steps.append("START")
    if status == "IN_PROGRESS":
        if rng.random() < 0.2:
            steps += ["R_CREATE", "R_REVOKE"] if rng.random() < 0.25 else ["R_CREATE"]
        return steps
    if status == "RESOLVED" and rng.random() < 0.4:
        return steps + ["RESOLVE"]
    if rng.random() < 0.1:  # a first referral the agency turned down, then another program
        steps += ["R_CREATE", "R_SEND", "REFERRED", "R_REJECT", "R_CREATE", "R_SEND"]
    else:
        steps += ["R_CREATE", "R_SEND", "REFERRED"]
    if status == "REFERRED":
        return steps + (["R_ACCEPT"] if rng.random() < 0.5 else [])
    return steps + ["R_ACCEPT", "R_COMPLETE", "RESOLVE"]


def _complaint(rng: random.Random, now: dt.datetime) -> _Complaint:
    sector = rng.choice(dd.SECTORS)
    status = rng.choices([s for s, _ in STATUS_WEIGHTS], weights=[w for _, w in STATUS_WEIGHTS])[0]
    programs = _PROGRAMS_BY_SECTOR.get(sector, [])
    program = rng.choice(programs) if programs and rng.random() < 0.5 else None
    days = program[2] if program else SECTOR_SLA_DAYS[Sector(sector)]
    window = dt.timedelta(days=days)
    if status in CLOSED:
        started = now - dt.timedelta(days=rng.uniform(max(1.0, days * 0.1), 730))
    else:  # open cases in every SLA state: on track, at risk (under 25% left), breached
        state = rng.choices(("on_track", "at_risk", "breached"), weights=(5, 2, 3))[0]
        elapsed = {"on_track": rng.uniform(0.02, 0.74), "at_risk": rng.uniform(0.76, 0.99),
                   "breached": min(365 / days, 1.02 + rng.expovariate(1 / 1.5))}[state]
        started = now - window * elapsed
    reported = started if rng.random() < 0.25 else None  # collected offline, filed later
    created = started
    if reported is not None:
        created = started + min(dt.timedelta(hours=rng.uniform(0.5, 72)), (now - started) / 2)
    if status in CLOSED:
        end = min(now - dt.timedelta(minutes=1), started + window * rng.uniform(0.1, 1.6))
        end = max(end, created + dt.timedelta(minutes=5))
    else:
        end = created + (now - created) * rng.uniform(0.3, 0.95)
    return _Complaint(sector=sector, status=status, program=program, started=started, created=created,
                      reported=reported, due=started + window, end=end, steps=_steps(rng, status))


_RETURN_REASONS = ("Data anggota keluarga belum lengkap, mohon dilengkapi.",
                   "Foto KK tidak terbaca, mohon diunggah ulang.", "Uraian keluhan belum jelas.")
_REJECT_REASONS = ("Keluhan tidak dapat ditindaklanjuti: di luar kewenangan SLRT.",
                   "Keluarga sudah menerima layanan yang diminta.", "Keluhan ganda dengan laporan sebelumnya.")
_RESOLVE_DECISIONS = ("Informasi program sudah disampaikan kepada keluarga.", "Rujukan selesai; keluhan tertangani.",
                      "Keluarga sudah didaftarkan dan menerima layanan.")
_OUTCOMES = ("Keluarga sudah didaftarkan dan menerima layanan.", "Kepesertaan diaktifkan kembali.",
             "Bantuan disalurkan bulan ini.")
_REFERRAL_REJECTIONS = ("Kuota program tahun ini sudah penuh.", "Keluarga tidak memenuhi kriteria program.")


class ChunkWriter:
    """Generates one chunk: households first (to know how many ids to take), then the rows."""

    def __init__(self, chunk: ChunkPlan, *, now: dt.datetime, cipher: PersonalDataCipher, ids: IdRanges) -> None:
        self.chunk = chunk
        self.now = now
        self.cipher = cipher
        self.ids = ids
        self.rng = random.Random(chunk.seed)
        self.rows = Rows()

    def write(self) -> Rows:
        rng, now, today = self.rng, self.now, self.now.date()
        drafts: list[tuple[DesaPlan, list[dd.DemoMember], list[str], list[_Complaint]]] = []
        niks: dict[str, set[str]] = {}
        cards: dict[str, set[str]] = {}
        for desa in self.chunk.desa:
            used_niks = niks.setdefault(desa.kecamatan, set())
            used_cards = cards.setdefault(desa.kecamatan, set())
            for _ in range(desa.households):
                members = dd.household_members(rng, desa.kecamatan, today, used_niks=used_niks)
                kks = []
                for _ in range(2 if rng.random() < 0.1 else 1):
                    kk = dd.make_kk(rng, desa.kecamatan, today - dt.timedelta(days=rng.randint(200, 6000)))
                    while kk in used_cards:
                        kk = dd.make_kk(rng, desa.kecamatan, today - dt.timedelta(days=rng.randint(200, 6000)))
                    used_cards.add(kk)
                    kks.append(kk)
                n = rng.choices([c for c, _ in COMPLAINTS_PER_HOUSEHOLD], [w for _, w in COMPLAINTS_PER_HOUSEHOLD])[0]
                drafts.append((desa, members, kks, sorted((_complaint(rng, now) for _ in range(n)),
                                                          key=lambda c: c.created)))
        next_id = {t: self.ids.reserve(t, n) for t, n in self._counts(drafts).items()}
        for desa, members, kks, complaints in drafts:
            self._household(next_id, desa, members, kks, complaints)
        return self.rows

    @staticmethod
    def _counts(drafts: Sequence[tuple[DesaPlan, list[dd.DemoMember], list[str], list[_Complaint]]]) -> dict[str, int]:
        counts = dict.fromkeys(ID_TABLES, 0)
        for _, members, kks, complaints in drafts:
            counts["households"] += 1
            counts["members"] += len(members)
            counts["family_cards"] += len(kks)
            counts["complaints"] += len(complaints)
            counts["assignments"] += len(complaints)
            counts["referrals"] += sum(c.steps.count("R_CREATE") for c in complaints)
        return counts

    @staticmethod
    def _take(next_id: dict[str, int], table: str) -> int:
        value = next_id[table]
        next_id[table] = value + 1
        return value

    def _event(self, at: dt.datetime, kind: str, region: str, household: int, complaint: int | None,
               referral: int | None, actor: int | None, data: dict[str, Any]) -> None:
        self.rows.events.append((at, kind, region, household, complaint, referral, actor,
                                 json.dumps(data, separators=(",", ":"))))

    def _household(self, next_id: dict[str, int], desa: DesaPlan, members: list[dd.DemoMember], kks: list[str],
                   complaints: list[_Complaint]) -> None:
        rng, rows = self.rng, self.rows
        hid = self._take(next_id, "households")
        if complaints:
            created = max(START, complaints[0].started - dt.timedelta(days=rng.uniform(1, 400)))
        else:
            created = START + (self.now - START - dt.timedelta(days=1)) * rng.random()
        gps = rng.random() < 0.7
        rows.households.append((
            hid, desa.code, dd.address(rng), dd.rt(rng), dd.rw(rng),
            round(min(5.9, max(-10.9, desa.lat + rng.uniform(-0.3, 0.3))), 6) if gps else None,
            round(min(141.9, max(94.1, desa.lon + rng.uniform(-0.3, 0.3))), 6) if gps else None,
            rng.choices(("REGISTERED", "NOT_REGISTERED", "PROPOSED"), weights=(6, 3, 1))[0],
            json.dumps(dd.poverty_indicators(rng), separators=(",", ":")), desa.facilitator_id, 1, created, created))
        card_ids = []
        for kk in kks:
            card_id = self._take(next_id, "family_cards")
            sealed = self.cipher.seal(kk, kind=KK)
            rows.family_cards.append((card_id, hid, sealed.digest, sealed.ciphertext, sealed.masked, created))
            card_ids.append(card_id)
        member_ids = []
        for m in members:
            mid = self._take(next_id, "members")
            member_ids.append(mid)
            card = card_ids[-1] if m.relation == "PARENT" else card_ids[0]
            if rng.random() < 0.02:  # the registry's placeholder for a person without a NIK
                status, digest, ciphertext, masked = "PLACEHOLDER", None, None, None
            else:
                sealed = self.cipher.seal(m.nik, kind=NIK)
                status, digest, ciphertext, masked = "VALID", sealed.digest, sealed.ciphertext, sealed.masked
            rows.members.append((mid, hid, card, status, digest, ciphertext, masked, m.name,
                                 "MALE" if m.sex == "M" else "FEMALE", m.birth_date, m.relation, m.education,
                                 m.occupation, m.disability, m.chronic_illness, list(m.programs), False, 1,
                                 created, created))
        self._event(created, "HOUSEHOLD_REGISTERED", desa.code, hid, None, None, desa.facilitator_id,
                    {"members": len(members), "dtksStatus": rows.households[-1][7]})
        for c in complaints:
            self._complaint(next_id, desa, hid, member_ids, c)

    def _complaint(self, next_id: dict[str, int], desa: DesaPlan, hid: int, member_ids: list[int],
                   c: _Complaint) -> None:
        rng, rows = self.rng, self.rows
        cid = self._take(next_id, "complaints")
        walk_in = rng.random() < 0.15
        worker = desa.officer_id if walk_in else desa.facilitator_id
        channel = "PUSKESOS_WALK_IN" if walk_in else rng.choices(
            ("FACILITATOR_VISIT", "DISTRICT_FRONT_OFFICE", "HOTLINE"), weights=(7, 1, 1))[0]
        priority = rng.choices(("LOW", "NORMAL", "HIGH", "URGENT"), weights=(2, 6, 2, 1))[0]
        rows.assignments.append((self._take(next_id, "assignments"), cid, None, worker, worker, "filed", c.created))
        self._event(c.created, "COMPLAINT_FILED", desa.code, hid, cid, None, worker,
                    {"status": "NEW", "sector": c.sector, "priority": priority, "assigneeId": worker, "version": 1})
        status, version = "NEW", 1
        decision = reason = None
        times = sorted(c.created + (c.end - c.created) * rng.random() for _ in c.steps)
        if c.status in CLOSED and times:
            times[-1] = c.end
        referrals: list[tuple[int, _Referral]] = []
        for step, at in zip(c.steps, times, strict=True):
            if step.startswith("R_"):
                self._referral_step(next_id, step, at, desa, hid, cid, worker, c, referrals)
                continue
            before = status
            extra: dict[str, Any] = {}
            actor = desa.supervisor_id
            if step == "RETURN":
                status, reason = "RETURNED", rng.choice(_RETURN_REASONS)
            elif step == "REJECT":
                status, decision = "REJECTED", rng.choice(_REJECT_REASONS)
            elif step == "VERIFY":
                status = "VERIFIED"
            elif step == "START":
                status, actor = "IN_PROGRESS", worker
            elif step == "REFERRED":
                status, extra = "REFERRED", {"referralId": referrals[-1][0]}
            elif step == "RESOLVE":
                status, decision, actor = "RESOLVED", rng.choice(_RESOLVE_DECISIONS), worker
            version += 1
            kind = "COMPLAINT_" + ("REFERRED" if step == "REFERRED" else {
                "RETURN": "RETURNED", "REJECT": "REJECTED", "VERIFY": "VERIFIED", "START": "STARTED",
                "RESOLVE": "RESOLVED"}[step])
            self._event(at, kind, desa.code, hid, cid, None, actor,
                        {"from": before, "status": status, "assigneeId": worker, "version": version, **extra})
        assert status == c.status, (status, c.status, c.steps)
        updated = times[-1] if times else c.created
        rows.complaints.append((
            cid, hid, rng.choice(member_ids) if rng.random() < 0.4 else None, desa.code, rng.choices(
                ("QUESTION", "SUGGESTION", "COMPLAINT"), weights=(2, 1, 7))[0], c.sector,
            c.program[0] if c.program else None, dd.complaint_description(rng, c.sector), channel, priority, status,
            worker, worker, c.started, c.due, decision, reason, c.end if status in CLOSED else None, c.reported,
            version, c.created, updated))
        for rid, r in referrals:
            rows.referrals.append((
                rid, cid, r.program_id, desa.code, r.agency, None, r.consent,
                None if r.consent else "Kepala keluarga dirawat di rumah sakit; persetujuan lisan dari istri.",
                r.status, rng.choice(_REFERRAL_REJECTIONS) if r.status == "REJECTED" else None,
                "Program lain lebih sesuai." if r.status == "REVOKED" else None,
                rng.choice(_OUTCOMES) if r.status == "COMPLETED" else None, worker, r.sent_at, r.responded_at,
                r.completed_at, r.version, r.created_at, r.updated_at or r.created_at))

    def _referral_step(self, next_id: dict[str, int], step: str, at: dt.datetime, desa: DesaPlan, hid: int,
                       cid: int, worker: int, c: _Complaint, referrals: list[tuple[int, _Referral]]) -> None:
        if step == "R_CREATE":
            program = c.program or self.rng.choice(_PROGRAMS_BY_SECTOR.get(c.sector) or _PROGRAMS_BY_SECTOR["OTHER"])
            referral = _Referral(program_id=program[0], agency=program[1], created_at=at,
                                 consent=self.rng.random() < 0.95)
            rid = self._take(next_id, "referrals")
            referrals.append((rid, referral))
            self._event(at, "REFERRAL_CREATED", desa.code, hid, cid, rid, worker,
                        {"status": "DRAFT", "programId": program[0], "version": 1})
            return
        rid, r = referrals[-1]
        before = r.status
        r.status = {"R_SEND": "SENT", "R_ACCEPT": "ACCEPTED", "R_REJECT": "REJECTED", "R_REVOKE": "REVOKED",
                    "R_COMPLETE": "COMPLETED"}[step]
        r.version += 1
        r.updated_at = at
        if step == "R_SEND":
            r.sent_at = at
        elif step in {"R_ACCEPT", "R_REJECT"}:
            r.responded_at = at
        elif step == "R_COMPLETE":
            r.completed_at = at
        self._event(at, "REFERRAL_" + r.status, desa.code, hid, cid, rid, desa.supervisor_id,
                    {"from": before, "status": r.status, "version": r.version})
