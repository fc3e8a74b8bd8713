"""The authorization matrix, generated: every role x every operation x an object in and out of the role's area.

The expected outcome of every cell is computed from ``domain.actor.PERMISSIONS`` (which role may do what) and
the region subtrees of each role (own village, a village of the neighbouring kecamatan, a village of another
kabupaten), never written by hand per cell:

* anonymous                                  -> UNAUTHENTICATED (``me``: null)
* the role lacks the operation               -> FORBIDDEN (NOT_FOUND also accepted for an object out of area)
* the object lies outside the role's area    -> hidden (null / absent) for reads, NOT_FOUND for mutations
* the result carries personal data and the role may not see it (partner key without the grant)
                                             -> masked: nik null, nikMasked shown, name as initials, address null
* otherwise                                  -> allowed (and a write really changed something)

A denied mutation must leave every table as it was. Queries and mutations run through the real schema with a
real Context (``client``); subscriptions run end to end over a real uvicorn process and a graphql-transport-ws
socket per role. The last test prints the whole grid (run pytest with ``-s`` to see it; it is also shown
without ``-s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.actor import PERMISSIONS, Actor, Op
from domain.enums import RegionLevel, Role
from domain.regions import Region
from domain.staff.api_keys import authenticate_key
from domain.staff.models import Staff
from domain.staff.tokens import TokenSigner
from schema import build_schema
from schema.relay import to_global_id
from server import db
from server.settings import DEV_SECRET_KEY
from tests import conftest
from tests.conftest import PASSWORD, PASSWORD_HASH, Client, World, nik
from tests.support.servers import GraphQLWS, ServerProcess, graphql, login

# --- the model: roles, their areas, the three object locations ---------------------------------------------------

#: where the test objects lie, relative to the province: the facilitator's own village, a village of the
#: neighbouring kecamatan (same kabupaten), a village of another kabupaten
SCOPES: dict[str, str] = {"own": ".74.01.1001", "sibling": ".74.02.1001", "foreign": ".71.01.1001"}
SCOPE_SHORT = {"own": "own", "sibling": "sib", "foreign": "far"}


@dataclass(frozen=True)
class RoleModel:
    key: str
    label: str
    role: Role | None
    #: region subtrees, relative to the province (``None``: the whole country)
    regions: tuple[str, ...] | None
    grant: bool = False


MODELS: list[RoleModel] = [
    RoleModel("facilitator", "facilitator", Role.FACILITATOR, (".74.01.1001",)),
    RoleModel("officer", "officer", Role.PUSKESOS_OFFICER, (".74.01",)),
    RoleModel("supervisor", "supervisor", Role.SUPERVISOR, (".74.01",)),
    RoleModel("manager", "manager", Role.MANAGER, (".74",)),
    RoleModel("partner", "partner", Role.PARTNER, (".74",)),
    RoleModel("partner_pd", "partner+PD", Role.PARTNER, (".74",), grant=True),
    RoleModel("admin", "admin", Role.ADMIN, None),
    RoleModel("anonymous", "anonymous", None, None),
]
MODEL = {m.key: m for m in MODELS}
#: the account behind each role in ``world`` (the partner's two keys are made by the ``cast`` fixture)
WORLD_STAFF = {"facilitator": "fac_a1", "officer": "officer_a", "supervisor": "sup_a", "manager": "manager",
               "partner": "partner", "partner_pd": "partner", "admin": "admin"}
#: per location: the facilitator holding cases there, and a colleague to reassign them to
HOLDERS = {"own": ("fac_a1", "fac_a1b"), "sibling": ("fac_b1", "fac_b1b"), "foreign": ("fac_x1", "fac_x1b")}


def may(m: RoleModel, op: Op) -> bool:
    return m.role is not None and m.role in PERMISSIONS[op]


def covers(m: RoleModel, province: str, code: str) -> bool:
    if m.regions is None:
        return True
    return any(code == province + r or code.startswith(province + r + ".") for r in m.regions)


def sees_personal_data(m: RoleModel) -> bool:
    return may(m, Op.READ_PERSONAL_DATA) or m.grant


# --- operation specs and the expected outcome --------------------------------------------------------------------

ALLOWED, MASKED, HIDDEN = "✓", "M", "✗"


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str  # query | mutation | subscription
    #: the PERMISSIONS row that gates it; ``None``: any authenticated actor
    op: Op | None
    scoped: bool = True
    #: the result carries personal data (masked for roles without the right or grant)
    personal: bool = False
    #: gated by the right to see personal data (role or key grant) rather than by ``op``
    personal_gate: bool = False
    public: bool = False
    anonymous: str = "UNAUTHENTICATED"
    #: what an object outside the area gives: hidden for reads, an error code otherwise
    out_of_scope: str = HIDDEN
    #: a mutation that changes something when allowed
    writes: bool = True


def expected(spec: Spec, m: RoleModel, scope: str, province: str = "12") -> frozenset[str]:
    if spec.public:
        return frozenset({ALLOWED})
    if m.role is None:
        return frozenset({spec.anonymous})
    permitted = sees_personal_data(m) if spec.personal_gate else (spec.op is None or may(m, spec.op))
    in_scope = not spec.scoped or covers(m, province, province + SCOPES[scope])
    if not permitted:
        return frozenset({"FORBIDDEN"} if in_scope else {"FORBIDDEN", spec.out_of_scope})
    if not in_scope:
        return frozenset({spec.out_of_scope})
    if spec.personal and not sees_personal_data(m):
        return frozenset({MASKED})
    return frozenset({ALLOWED})


@dataclass
class Cell:
    got: str
    expected: frozenset[str]
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.got in self.expected and not self.note


#: (kind, operation) -> role -> scope -> cell; filled by the tests, printed by the last one
RESULTS: dict[tuple[str, str], dict[str, dict[str, Cell]]] = {}


def record(spec: Spec, role: str, scope: str, cell: Cell) -> None:
    RESULTS.setdefault((spec.kind, spec.name), {}).setdefault(role, {})[scope] = cell


def mismatches(spec: Spec) -> list[str]:
    out = []
    for role, row in RESULTS.get((spec.kind, spec.name), {}).items():
        for scope, cell in row.items():
            if not cell.ok:
                out.append(f"{spec.name} as {role} on the {scope} object: expected {sorted(cell.expected)}, "
                           f"got {cell.got!r} {cell.note}".rstrip())
    return out


# --- the cast: far regions, more facilitators, the partner's API keys, object makers ----------------------------

FAR = [("12.71", RegionLevel.KABUPATEN, "12"), ("12.71.01", RegionLevel.KECAMATAN, "12.71"),
       ("12.71.01.1001", RegionLevel.DESA, "12.71.01")]
NAMES = ["Ahmad Siregar", "Siti Nasution", "Rahmat Lubis", "Dewi Harahap", "Budi Simanjuntak", "Nur Hasibuan",
         "Yusuf Batubara", "Intan Pohan", "Hendra Tanjung", "Rina Daulay"]
_serials = itertools.count(1)


@dataclass
class Household:
    id: str
    region: str
    member: str
    card: str
    name: str
    nik: str
    kk: str
    address: str


@dataclass
class Case:
    """A household with a complaint (and, for reads, a referral) in one location."""

    household: Household
    complaint: str
    version: int
    event: str
    referral: str | None = None
    referral_version: int = 0


REGISTER = """mutation($i: RegisterHouseholdInput!) { registerHousehold(input: $i) {
  household { id members { id } familyCards { id } } errors { code field message } } }"""
FILE = """mutation($i: FileComplaintInput!) { fileComplaint(input: $i) {
  complaint { id version } errors { code field message } } }"""
COMPLAINT_STEP = """mutation($i: %s!) { %s(input: $i) { complaint { id version status } errors { code field } } }"""
REFERRAL_STEP = """mutation($i: %s!) { %s(input: $i) { referral { id version status } errors { code field } } }"""
CREATE_KEY = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { apiKey { id } secret errors { code } } }"""


def household_input(region: str, n: int) -> tuple[dict[str, Any], dict[str, str]]:
    kec = region[:8]
    born = dt.date(1960, 1, 1) + dt.timedelta(days=n)
    number = nik(kec, born, female=False, serial=n)
    kk = kec.replace(".", "") + f"{n:010d}"
    name = NAMES[n % len(NAMES)]
    address = f"Jl. Melati Gg. {n} No. {n % 97 + 1}"
    data = {"regionCode": region, "address": address, "rt": "003", "rw": "001", "latitude": 2.97,
            "longitude": 99.8, "familyCards": [kk],
            "members": [{"name": name, "sex": "MALE", "birthDate": born.isoformat(), "relation": "HEAD",
                         "nik": number}]}
    return data, {"nik": number, "kk": kk, "name": name, "address": address}


class Maker:
    """Builds objects as the admin, through the API."""

    def __init__(self, client: Client, admin: Actor, staff: dict[str, int], program: str) -> None:
        self.client = client
        self.admin = admin
        self.staff = staff
        self.program = program

    async def ok(self, query: str, variables: dict[str, Any], name: str) -> dict[str, Any]:
        out = await self.client.ok(query, variables, actor=self.admin)
        payload: dict[str, Any] = out[name]
        assert not payload.get("errors"), (name, payload)
        return payload

    async def household(self, region: str) -> Household:
        n = next(_serials)
        data, facts = household_input(region, n)
        h = (await self.ok(REGISTER, {"i": data}, "registerHousehold"))["household"]
        return Household(id=h["id"], region=region, member=h["members"][0]["id"], card=h["familyCards"][0]["id"],
                         **facts)

    async def step(self, mutation: str, input_type: str, variables: dict[str, Any]) -> dict[str, Any]:
        template = REFERRAL_STEP if "Referral" in mutation else COMPLAINT_STEP
        payload = await self.ok(template % (input_type, mutation), {"i": variables}, mutation)
        return payload["referral" if "Referral" in mutation else "complaint"]  # type: ignore[no-any-return]

    async def case(self, region: str, *, status: str = "NEW", assignee: int | None = None,
                   referral: str | None = None) -> Case:
        """A household and a complaint in ``status`` (NEW, VERIFIED, RETURNED, RESOLVED), optionally with a
        referral in ``referral`` (DRAFT, SENT, ACCEPTED)."""
        h = await self.household(region)
        filed = (await self.ok(FILE, {"i": {"householdId": h.id, "memberId": h.member, "sector": "HEALTH",
                                             "programId": self.program, "description": "Ibu sakit, belum punya KIS",
                                             "assigneeId": to_global_id("Staff", assignee) if assignee else None}},
                               "fileComplaint"))["complaint"]
        # events are written when the operation commits, so the timeline is read afterwards
        timeline = (await self.client.ok("query($id: ID!) { node(id: $id) { ... on Complaint { timeline { id kind } "
                                         "} } }", {"id": filed["id"]}, actor=self.admin))["node"]["timeline"]
        case = Case(household=h, complaint=filed["id"], version=filed["version"],
                    event=next(e["id"] for e in timeline if e["kind"] == "COMPLAINT_FILED"))
        if status in {"VERIFIED", "RESOLVED"} or referral:
            case.version = (await self.step("verifyComplaint", "ComplaintTransitionInput",
                                            {"id": case.complaint, "expectedVersion": case.version}))["version"]
        if status == "RETURNED":
            case.version = (await self.step("returnComplaint", "ComplaintTransitionInput",
                                            {"id": case.complaint, "expectedVersion": case.version,
                                             "reason": "NIK kepala keluarga perlu dicek"}))["version"]
        if status == "RESOLVED":
            case.version = (await self.step("resolveComplaint", "ResolveComplaintInput",
                                            {"id": case.complaint, "expectedVersion": case.version,
                                             "decision": "Sudah didaftarkan PBI-JK"}))["version"]
        if referral:
            r = await self.step("createReferral", "CreateReferralInput",
                                {"complaintId": case.complaint, "programId": self.program, "consentGiven": True})
            case.referral, case.referral_version = r["id"], r["version"]
            for step, wanted in (("sendReferral", "SENT"), ("acceptReferral", "ACCEPTED")):
                if referral in {"DRAFT"} or (referral == "SENT" and wanted == "ACCEPTED"):
                    break
                r = await self.step(step, "ReferralTransitionInput",
                                    {"id": case.referral, "expectedVersion": case.referral_version})
                case.referral_version = r["version"]
        return case

    async def api_key(self, partner: int, *, personal_data: bool = False) -> tuple[str, str]:
        payload = await self.ok(CREATE_KEY, {"i": {"partnerId": to_global_id("Staff", partner),
                                                   "name": f"sync {uuid.uuid4().hex[:6]}",
                                                   "personalData": personal_data}}, "createApiKey")
        return payload["apiKey"]["id"], payload["secret"]


@dataclass
class Cast:
    actors: dict[str, Actor | None]
    staff: dict[str, int]
    maker: Maker


@pytest.fixture
async def cast(client: Client, world: World, session: AsyncSession) -> Cast:
    for code, level, parent in FAR:
        session.add(Region(code=code, name=f"Wilayah {code}", level=level.value, parent_code=parent))
        await session.flush()
    extra = {"fac_b1b": "12.74.02.1001", "fac_x1": "12.71.01.1001", "fac_x1b": "12.71.01.1001"}
    rows = {}
    for username, region in extra.items():
        rows[username] = Staff(username=username, password_hash=PASSWORD_HASH, full_name=username.title(),
                               role=Role.FACILITATOR.value, region_code=region)
        session.add(rows[username])
    await session.commit()
    staff = {name: s.id for name, s in world.staff.items()} | {name: s.id for name, s in rows.items()}
    maker = Maker(client, world.actor("admin"), staff, to_global_id("Program", world.programs["PBI-JK"].id))
    actors: dict[str, Actor | None] = {key: world.actor(name) for key, name in WORLD_STAFF.items()}
    actors["anonymous"] = None
    for key, grant in (("partner", False), ("partner_pd", True)):
        _, secret = await maker.api_key(staff["partner"], personal_data=grant)
        actors[key] = await authenticate_key(session, credential=secret)
    for key, actor in actors.items():  # the runtime actors are what the model says
        m = MODEL[key]
        assert (actor.role if actor else None) == m.role, key
        assert (actor.regions if actor else None) == (None if m.regions is None else
                                                      tuple("12" + r for r in m.regions)), key
        assert (actor.personal_data_grant if actor else False) == m.grant, key
    return Cast(actors=actors, staff=staff, maker=maker)


def holder(cast: Cast, key: str, scope: str) -> int:
    """Who should hold a case in ``scope`` for the actor ``key`` to act on it: the actor itself when it is an
    assignable role covering the place (the assignee rule is not what the matrix tests), else the local
    facilitator."""
    m = MODEL[key]
    if m.role in {Role.FACILITATOR, Role.PUSKESOS_OFFICER} and covers(m, "12", "12" + SCOPES[scope]):
        return cast.staff[WORLD_STAFF[key]]
    return cast.staff[HOLDERS[scope][0]]


# --- reads ---------------------------------------------------------------------------------------------------------

HH = "id address latitude longitude members { id name nik nikMasked }"
MB = "id name nik nikMasked"


def _masked_nik_ok(masked: str | None, number: str) -> bool:
    return (masked is not None and len(masked) == 16 and masked[:4] == number[:4] and masked[-2:] == number[-2:]
            and not any(ch.isdigit() for ch in masked[4:14]))


def _initials_ok(shown: str, name: str) -> bool:
    parts = [p for p in name.split() if p]
    return bool(shown) and shown != name and shown[0] == name[0] and not any(len(p) > 1 and p in shown
                                                                             for p in parts)


def personal_state(h: Household, households: list[dict[str, Any]], members: list[dict[str, Any]]) -> str:
    """ALLOWED when every household and member shows its personal data in full, MASKED when all are masked the
    documented way, else a description of what leaked or broke."""
    states: set[str] = set()
    members = list(members)
    for hh in households:
        if hh["address"] == h.address and hh["latitude"] is not None and hh["longitude"] is not None:
            states.add(ALLOWED)
        elif hh["address"] is None and hh["latitude"] is None and hh["longitude"] is None:
            states.add(MASKED)
        else:
            states.add(f"household shown half-masked: {hh}")
        members += hh["members"]
    for mb in members:
        if mb["name"] == h.name and mb["nik"] == h.nik and _masked_nik_ok(mb["nikMasked"], h.nik):
            states.add(ALLOWED)
        elif mb["nik"] is None and _initials_ok(mb["name"], h.name) and _masked_nik_ok(mb["nikMasked"], h.nik):
            states.add(MASKED)
        else:
            states.add(f"member shown wrongly: {mb}")
    if len(states) != 1:
        return "inconsistent: " + "; ".join(sorted(states))
    return states.pop()


@dataclass
class Read:
    spec: Spec
    query: str
    #: variables from the case in this location
    variables: Callable[[Case, Cast], dict[str, Any]]
    #: from the data: None (hidden), True (shown), or (households, members) carrying personal data
    pick: Callable[[dict[str, Any], Case, Cast], Any]


def _node(data: dict[str, Any]) -> dict[str, Any] | None:
    node: dict[str, Any] | None = data.get("node")
    return node if node else None


def _edges(conn: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["node"] for e in conn["edges"]]


def _find(items: list[dict[str, Any]], key: str, value: str) -> dict[str, Any] | None:
    return next((i for i in items if i.get(key) == value), None)


def q(name: str, op: Op | None, **flags: Any) -> Spec:
    return Spec(name=name, kind="query", op=op, **flags)


READS: list[Read] = [
    Read(q("node(Household)", Op.READ, personal=True),
         "query($id: ID!) { node(id: $id) { ... on Household { " + HH + " } } }",
         lambda c, x: {"id": c.household.id},
         lambda d, c, x: ([n], []) if (n := _node(d)) else None),
    Read(q("node(Member)", Op.READ, personal=True),
         "query($id: ID!) { node(id: $id) { ... on Member { " + MB + " } } }",
         lambda c, x: {"id": c.household.member},
         lambda d, c, x: ([], [n]) if (n := _node(d)) else None),
    Read(q("node(FamilyCard)", Op.READ),
         "query($id: ID!) { node(id: $id) { ... on FamilyCard { id numberMasked } } }",
         lambda c, x: {"id": c.household.card},
         lambda d, c, x: (True if n["numberMasked"] != c.household.kk else "full No. KK shown")
         if (n := _node(d)) else None),
    Read(q("node(Complaint)", Op.READ), "query($id: ID!) { node(id: $id) { ... on Complaint { id status } } }",
         lambda c, x: {"id": c.complaint}, lambda d, c, x: True if _node(d) else None),
    Read(q("node(Referral)", Op.READ), "query($id: ID!) { node(id: $id) { ... on Referral { id status } } }",
         lambda c, x: {"id": c.referral}, lambda d, c, x: True if _node(d) else None),
    Read(q("node(CaseEvent)", Op.READ), "query($id: ID!) { node(id: $id) { ... on CaseEvent { id kind data } } }",
         lambda c, x: {"id": c.event}, lambda d, c, x: True if _node(d) else None),
    Read(q("node(Staff)", Op.READ), "query($id: ID!) { node(id: $id) { ... on Staff { id username } } }",
         lambda c, x: {"id": to_global_id("Staff", x.staff[HOLDERS[_scope_of(c)][0]])},
         lambda d, c, x: True if _node(d) else None),
    Read(q("node(Region)", Op.READ), "query($id: ID!) { node(id: $id) { ... on Region { id code } } }",
         lambda c, x: {"id": to_global_id("Region", c.household.region)},
         lambda d, c, x: True if _node(d) else None),
    Read(q("node(Program)", Op.READ, scoped=False),
         "query($id: ID!) { node(id: $id) { ... on Program { id code } } }",
         lambda c, x: {"id": x.maker.program}, lambda d, c, x: True if _node(d) else None),
    Read(q("households", Op.READ, personal=True),
         "{ households(first: 1000) { edges { node { " + HH + " } } } }", lambda c, x: {},
         lambda d, c, x: ([n], []) if (n := _find(_edges(d["households"]), "id", c.household.id)) else None),
    Read(q("households(filter.regionCode)", Op.READ, personal=True),
         "query($r: String) { households(filter: {regionCode: $r}) { totalCount edges { node { " + HH + " } } } }",
         lambda c, x: {"r": c.household.region},
         lambda d, c, x: ([n], []) if (n := _find(_edges(d["households"]), "id", c.household.id))
         else _uncounted(d["households"])),
    Read(q("complaints(filter.householdId)", Op.READ),
         "query($h: ID) { complaints(filter: {householdId: $h}) { totalCount edges { node { id } } } }",
         lambda c, x: {"h": c.household.id},
         lambda d, c, x: True if _find(_edges(d["complaints"]), "id", c.complaint) else _uncounted(d["complaints"])),
    Read(q("households(filter.nik)", Op.READ_PERSONAL_DATA, personal=True, personal_gate=True),
         "query($n: String) { households(filter: {nik: $n}) { edges { node { " + HH + " } } } }",
         lambda c, x: {"n": c.household.nik},
         lambda d, c, x: ([n], []) if (n := _find(_edges(d["households"]), "id", c.household.id)) else None),
    Read(q("complaints", Op.READ), "{ complaints(first: 1000) { totalCount edges { node { id } } } }",
         lambda c, x: {}, lambda d, c, x: True if _find(_edges(d["complaints"]), "id", c.complaint) else None),
    Read(q("referrals", Op.READ), "{ referrals(first: 1000) { totalCount edges { node { id } } } }",
         lambda c, x: {}, lambda d, c, x: True if _find(_edges(d["referrals"]), "id", c.referral) else None),
    Read(q("changes -> event.household", Op.READ, personal=True),
         "{ changes(first: 200) { events { id household { " + HH + " } } } }", lambda c, x: {},
         lambda d, c, x: ([e["household"]], []) if (e := _find(d["changes"]["events"], "id", c.event)) else None),
    Read(q("complaint.household", Op.READ, personal=True),
         "query($id: ID!) { node(id: $id) { ... on Complaint { household { " + HH + " } } } }",
         lambda c, x: {"id": c.complaint},
         lambda d, c, x: ([n["household"]], []) if (n := _node(d)) and n["household"] else None),
    Read(q("complaint.member", Op.READ, personal=True),
         "query($id: ID!) { node(id: $id) { ... on Complaint { member { " + MB + " } } } }",
         lambda c, x: {"id": c.complaint},
         lambda d, c, x: ([], [n["member"]]) if (n := _node(d)) and n["member"] else None),
    Read(q("household.complaints", Op.READ),
         "query($id: ID!) { node(id: $id) { ... on Household { complaints { id } } } }",
         lambda c, x: {"id": c.household.id},
         lambda d, c, x: True if (n := _node(d)) and _find(n["complaints"], "id", c.complaint) else None),
    Read(q("complaint.referrals", Op.READ),
         "query($id: ID!) { node(id: $id) { ... on Complaint { referrals { id } } } }",
         lambda c, x: {"id": c.complaint},
         lambda d, c, x: True if (n := _node(d)) and _find(n["referrals"], "id", c.referral) else None),
    Read(q("complaint.timeline", Op.READ),
         "query($id: ID!) { node(id: $id) { ... on Complaint { timeline { id } } } }",
         lambda c, x: {"id": c.complaint},
         lambda d, c, x: True if (n := _node(d)) and _find(n["timeline"], "id", c.event) else None),
    Read(q("referral.complaint", Op.READ, personal=True),
         "query($id: ID!) { node(id: $id) { ... on Referral { complaint { id household { " + HH + " } } } } }",
         lambda c, x: {"id": c.referral},
         lambda d, c, x: ([n["complaint"]["household"]], []) if (n := _node(d)) and n["complaint"] else None),
    Read(q("complaints -> household.members", Op.READ, personal=True),
         "{ complaints(first: 1000) { edges { node { id household { " + HH + " } } } } }", lambda c, x: {},
         lambda d, c, x: ([n["household"]], []) if (n := _find(_edges(d["complaints"]), "id", c.complaint))
         else None),
    Read(q("staff(regionCode)", Op.READ), "query($r: String) { staff(regionCode: $r) { id } }",
         lambda c, x: {"r": c.household.region},
         lambda d, c, x: True if _find(d["staff"], "id", to_global_id("Staff", x.staff[HOLDERS[_scope_of(c)][0]]))
         else None),
    Read(q("regions(parentCode)", Op.READ), "query($p: String) { regions(parentCode: $p) { code } }",
         lambda c, x: {"p": c.household.region[:8]},
         lambda d, c, x: True if _find(d["regions"], "code", c.household.region) else None),
    Read(q("workload(regionCode)", Op.VIEW_WORKLOAD, out_of_scope="NOT_FOUND"),
         "query($r: String) { workload(regionCode: $r) { staff { id } open } }",
         lambda c, x: {"r": c.household.region},
         lambda d, c, x: True if any(e["staff"]["id"] == to_global_id("Staff", x.staff[HOLDERS[_scope_of(c)][0]])
                                     for e in d["workload"]) else None),
    Read(q("programs", Op.READ, scoped=False), "{ programs { code } }", lambda c, x: {},
         lambda d, c, x: True if _find(d["programs"], "code", "PBI-JK") else None),
    Read(q("latestCursor", None, scoped=False), "{ latestCursor }", lambda c, x: {},
         lambda d, c, x: True if d["latestCursor"] else None),
    Read(q("me", None, scoped=False, anonymous=HIDDEN), "{ me { id role } }", lambda c, x: {},
         lambda d, c, x: True if d["me"] else None),
    Read(q("apiKeys", Op.MANAGE_STAFF, scoped=False), "{ apiKeys { id personalData } }", lambda c, x: {},
         lambda d, c, x: True if len(d["apiKeys"]) >= 2 else None),
    Read(q("auditLog", Op.MANAGE_STAFF, scoped=False), "{ auditLog(first: 5) { entries { id action } } }",
         lambda c, x: {}, lambda d, c, x: True if d["auditLog"]["entries"] else None),
]


def _uncounted(connection: dict[str, Any]) -> str | None:
    """Hidden, unless ``totalCount`` still counts what the page hides."""
    count = connection["totalCount"]
    return None if count == 0 else f"hidden from the page but counted in totalCount ({count})"


def _scope_of(case: Case) -> str:
    return next(s for s, suffix in SCOPES.items() if case.household.region == "12" + suffix)


def _error_code(out: dict[str, Any]) -> str | None:
    if not out["errors"]:
        return None
    return str((out["errors"][0].get("extensions") or {}).get("code") or out["errors"][0]["message"])


async def read_cell(client: Client, read: Read, actor: Actor | None, case: Case, cast: Cast) -> str:
    out = await client.execute(read.query, read.variables(case, cast), actor=actor)
    if (code := _error_code(out)) is not None:
        return code
    picked = read.pick(out["data"], case, cast)
    if picked is None:
        return HIDDEN
    if picked is True:
        return ALLOWED
    if isinstance(picked, str):
        return picked
    households, members = picked
    return personal_state(case.household, households, members)


@pytest.mark.parametrize("role", [m.key for m in MODELS])
async def test_query_matrix(role: str, client: Client, cast: Cast) -> None:
    """Every read path for one role, on a case (household, member, family card, complaint, referral, events) in
    each location."""
    m = MODEL[role]
    cases = {scope: await cast.maker.case("12" + suffix, status="VERIFIED", referral="SENT",
                                          assignee=cast.staff[HOLDERS[scope][0]])
             for scope, suffix in SCOPES.items()}
    for read in READS:
        for scope in SCOPES if read.spec.scoped else ["own"]:
            got = await read_cell(client, read, cast.actors[m.key], cases[scope], cast)
            cell = Cell(got=got, expected=expected(read.spec, m, scope))
            for where in [scope] if read.spec.scoped else list(SCOPES):
                record(read.spec, m.key, where, cell)
    problems = [p for read in READS for p in mismatches(read.spec) if f" as {role} " in p]
    assert not problems, "\n".join(problems)


# --- mutations -----------------------------------------------------------------------------------------------------

SNAPSHOT = text("""
select (select count(*) from households), (select count(*) from members), (select count(*) from family_cards),
       (select count(*) from complaints), (select count(*) from referrals), (select count(*) from assignments),
       (select count(*) from case_events), (select count(*) from staff), (select count(*) from api_keys),
       (select count(*) from api_keys where revoked_at is null),
       (select coalesce(sum(version), 0) from households), (select coalesce(sum(version), 0) from complaints),
       (select coalesce(sum(version), 0) from referrals)
""")


async def snapshot(session: AsyncSession) -> tuple[Any, ...]:
    return tuple((await session.execute(SNAPSHOT)).one())


@dataclass
class Prepared:
    query: str
    variables: dict[str, Any]


@dataclass
class Write:
    spec: Spec
    #: builds the document and variables for one cell (as the admin, through the API)
    prepare: Callable[[Cast, str, str], Awaitable[Prepared]]
    #: the payload's object field whose presence means success
    result: str


def m_(name: str, op: Op | None, **flags: Any) -> Spec:
    return Spec(name=name, kind="mutation", op=op, out_of_scope="NOT_FOUND", **flags)


def _doc(mutation: str, input_type: str, result: str) -> str:
    return f"mutation($i: {input_type}!) {{ {mutation}(input: $i) {{ {result} {{ id }} errors {{ code }} }} }}"


def complaint_write(mutation: str, op: Op, input_type: str, status: str,
                    extra: Callable[[Cast, str, Case], dict[str, Any]] | None = None) -> Write:
    async def prepare(cast: Cast, key: str, scope: str) -> Prepared:
        case = await cast.maker.case("12" + SCOPES[scope], status=status, assignee=holder(cast, key, scope))
        variables = {"id": case.complaint, "expectedVersion": case.version} | (extra(cast, scope, case)
                                                                               if extra else {})
        return Prepared(_doc(mutation, input_type, "complaint"), {"i": variables})

    return Write(m_(mutation, op), prepare, "complaint")


def referral_write(mutation: str, op: Op, status: str, input_type: str = "ReferralTransitionInput",
                   extra: dict[str, Any] | None = None) -> Write:
    async def prepare(cast: Cast, key: str, scope: str) -> Prepared:
        case = await cast.maker.case("12" + SCOPES[scope], referral=status, assignee=holder(cast, key, scope))
        variables = {"id": case.referral, "expectedVersion": case.referral_version} | (extra or {})
        return Prepared(_doc(mutation, input_type, "referral"), {"i": variables})

    return Write(m_(mutation, op), prepare, "referral")


async def _register(cast: Cast, key: str, scope: str) -> Prepared:
    data, _ = household_input("12" + SCOPES[scope], next(_serials))
    return Prepared(_doc("registerHousehold", "RegisterHouseholdInput", "household"), {"i": data})


async def _intake_batch(cast: Cast, key: str, scope: str) -> Prepared:
    data, _ = household_input("12" + SCOPES[scope], next(_serials))
    query = """mutation($i: SubmitIntakeBatchInput!) { submitIntakeBatch(input: $i) {
      results { status household { id } errors { code } } errors { code } } }"""
    return Prepared(query, {"i": {"items": [{"idempotencyKey": uuid.uuid4().hex, "household": data}]}})


async def _update(cast: Cast, key: str, scope: str) -> Prepared:
    h = await cast.maker.household("12" + SCOPES[scope])
    return Prepared(_doc("updateHousehold", "UpdateHouseholdInput", "household"),
                    {"i": {"id": h.id, "expectedVersion": 1, "address": "Jl. Asahan No. 9", "dtksStatus": "PROPOSED"}})


async def _add_member(cast: Cast, key: str, scope: str) -> Prepared:
    h = await cast.maker.household("12" + SCOPES[scope])
    return Prepared(_doc("addMember", "AddMemberInput", "member"),
                    {"i": {"householdId": h.id, "member": {"name": "Putri Anak", "sex": "FEMALE",
                                                           "birthDate": "2015-05-05", "relation": "CHILD"}}})


async def _file(cast: Cast, key: str, scope: str) -> Prepared:
    h = await cast.maker.household("12" + SCOPES[scope])
    return Prepared(_doc("fileComplaint", "FileComplaintInput", "complaint"),
                    {"i": {"householdId": h.id, "sector": "FOOD", "description": "Belum menerima BPNT"}})


def _reassign_to(cast: Cast, scope: str, case: Case) -> dict[str, Any]:
    return {"assigneeId": to_global_id("Staff", cast.staff[HOLDERS[scope][1]]), "reason": "cuti"}


async def _bulk(cast: Cast, key: str, scope: str) -> Prepared:
    case = await cast.maker.case("12" + SCOPES[scope], assignee=cast.staff[HOLDERS[scope][0]])
    return Prepared(_doc("bulkReassignComplaints", "BulkReassignComplaintsInput", "complaints"),
                    {"i": {"complaints": [{"id": case.complaint, "expectedVersion": case.version}],
                           "assigneeId": to_global_id("Staff", cast.staff[HOLDERS[scope][1]]), "reason": "cuti"}})


async def _create_referral(cast: Cast, key: str, scope: str) -> Prepared:
    case = await cast.maker.case("12" + SCOPES[scope], status="VERIFIED", assignee=holder(cast, key, scope))
    return Prepared(_doc("createReferral", "CreateReferralInput", "referral"),
                    {"i": {"complaintId": case.complaint, "programId": cast.maker.program, "consentGiven": True}})


async def _create_user(cast: Cast, key: str, scope: str) -> Prepared:
    return Prepared(_doc("createUser", "CreateUserInput", "staff"),
                    {"i": {"username": f"fac-{uuid.uuid4().hex[:10]}", "password": "kata-sandi-panjang",
                           "fullName": "Fasilitator Baru", "role": "FACILITATOR",
                           "regionCode": "12" + SCOPES[scope]}})


async def _create_key(cast: Cast, key: str, scope: str) -> Prepared:
    return Prepared(_doc("createApiKey", "CreateApiKeyInput", "apiKey"),
                    {"i": {"partnerId": to_global_id("Staff", cast.staff["partner"]), "name": "BPJS nightly",
                           "personalData": True}})


async def _revoke_key(cast: Cast, key: str, scope: str) -> Prepared:
    key_id, _ = await cast.maker.api_key(cast.staff["partner"])
    return Prepared("mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { id } errors { code } } }",
                    {"id": key_id})


async def _login(cast: Cast, key: str, scope: str) -> Prepared:
    return Prepared("mutation($u: String!, $p: String!) { login(username: $u, password: $p) { staff { id } "
                    "errors { code } } }", {"u": "fac_a1", "p": PASSWORD})


async def _refresh(cast: Cast, key: str, scope: str) -> Prepared:
    out = await cast.maker.client.ok("mutation($u: String!, $p: String!) { login(username: $u, password: $p) { "
                                     "refreshToken } }", {"u": "sup_a", "p": PASSWORD})
    return Prepared("mutation($t: String!) { refreshToken(refreshToken: $t) { staff { id } errors { code } } }",
                    {"t": out["login"]["refreshToken"]})


WRITES: list[Write] = [
    Write(m_("login", None, public=True, writes=False, scoped=False), _login, "staff"),
    Write(m_("refreshToken", None, public=True, writes=False, scoped=False), _refresh, "staff"),
    Write(m_("registerHousehold", Op.REGISTER_HOUSEHOLD), _register, "household"),
    Write(m_("submitIntakeBatch", Op.REGISTER_HOUSEHOLD), _intake_batch, "results"),
    Write(m_("updateHousehold", Op.UPDATE_HOUSEHOLD), _update, "household"),
    Write(m_("addMember", Op.UPDATE_HOUSEHOLD), _add_member, "member"),
    Write(m_("fileComplaint", Op.FILE_COMPLAINT), _file, "complaint"),
    complaint_write("verifyComplaint", Op.VERIFY_COMPLAINT, "ComplaintTransitionInput", "NEW"),
    complaint_write("returnComplaint", Op.RETURN_COMPLAINT, "ComplaintTransitionInput", "NEW",
                    lambda x, s, c: {"reason": "alamat kurang lengkap"}),
    complaint_write("resubmitComplaint", Op.RESUBMIT_COMPLAINT, "ResubmitComplaintInput", "RETURNED",
                    lambda x, s, c: {"description": "Alamat sudah dilengkapi"}),
    complaint_write("rejectComplaint", Op.REJECT_COMPLAINT, "ComplaintTransitionInput", "NEW",
                    lambda x, s, c: {"reason": "bukan kewenangan dinas sosial"}),
    complaint_write("startComplaint", Op.START_COMPLAINT, "ComplaintTransitionInput", "VERIFIED"),
    complaint_write("resolveComplaint", Op.RESOLVE_COMPLAINT, "ResolveComplaintInput", "VERIFIED",
                    lambda x, s, c: {"decision": "Sudah ditangani"}),
    complaint_write("reopenComplaint", Op.REOPEN_COMPLAINT, "ComplaintTransitionInput", "RESOLVED",
                    lambda x, s, c: {"reason": "keluarga mengadu lagi"}),
    complaint_write("reassignComplaint", Op.REASSIGN_COMPLAINT, "ReassignComplaintInput", "NEW", _reassign_to),
    Write(m_("bulkReassignComplaints", Op.BULK_REASSIGN), _bulk, "complaints"),
    Write(m_("createReferral", Op.PROPOSE_REFERRAL), _create_referral, "referral"),
    referral_write("sendReferral", Op.SEND_REFERRAL, "DRAFT"),
    referral_write("acceptReferral", Op.RECORD_REFERRAL_RESPONSE, "SENT"),
    referral_write("rejectReferral", Op.RECORD_REFERRAL_RESPONSE, "SENT", extra={"reason": "kuota penuh"}),
    referral_write("completeReferral", Op.RECORD_REFERRAL_RESPONSE, "ACCEPTED", "CompleteReferralInput",
                   extra={"outcome": "Terdaftar PBI-JK"}),
    # created by the admin, so only a role that may revoke someone else's referral may (the sender always may)
    referral_write("revokeReferral", Op.REVOKE_REFERRAL, "DRAFT", extra={"reason": "salah program"}),
    Write(m_("createUser", Op.MANAGE_STAFF, scoped=False), _create_user, "staff"),
    Write(m_("createApiKey", Op.MANAGE_STAFF, scoped=False), _create_key, "apiKey"),
    Write(m_("revokeApiKey", Op.MANAGE_STAFF, scoped=False), _revoke_key, "apiKey"),
]


def write_outcome(write: Write, out: dict[str, Any]) -> str:
    if (code := _error_code(out)) is not None:
        return code
    payload = out["data"][write.spec.name]
    if payload.get("errors"):
        return str(payload["errors"][0]["code"])
    if write.spec.name == "submitIntakeBatch":
        result = payload["results"][0]
        if result["status"] == "CREATED" and result["household"]:
            return ALLOWED
        return str(result["errors"][0]["code"]) if result["errors"] else result["status"]
    return ALLOWED if payload.get(write.result) else "no result and no error"


@pytest.mark.parametrize("write", WRITES, ids=[w.spec.name for w in WRITES])
async def test_mutation_matrix(write: Write, client: Client, cast: Cast, session: AsyncSession) -> None:
    cache: dict[tuple[str, int | None], Prepared] = {}
    for m in MODELS:
        for scope in SCOPES if write.spec.scoped else ["own"]:
            key = (scope, holder(cast, m.key, scope) if m.role else None)
            prepared = cache.get(key) or await write.prepare(cast, m.key, scope)
            cache[key] = prepared
            before = await snapshot(session)
            out = await client.execute(prepared.query, prepared.variables, actor=cast.actors[m.key])
            after = await snapshot(session)
            got = write_outcome(write, out)
            note = ""
            if got == ALLOWED and write.spec.writes and after == before:
                note = "(allowed but nothing was written)"
            if got != ALLOWED and after != before:
                note = f"(DENIED BUT WROTE: {before} -> {after})"
            if after != before:
                cache.pop(key)
            cell = Cell(got=got, expected=expected(write.spec, m, scope), note=note)
            for where in [scope] if write.spec.scoped else list(SCOPES):
                record(write.spec, m.key, where, cell)
    problems = mismatches(write.spec)
    assert not problems, "\n".join(problems)


def test_every_operation_of_the_schema_is_in_the_matrix() -> None:
    """A new root field fails here until the matrix covers it."""
    schema = build_schema()._schema
    covered_queries = {r.spec.name.split("(")[0].split(" ")[0] for r in READS}
    assert set(schema.query_type.fields) - covered_queries - {"node"} == set()
    assert set(schema.mutation_type.fields) == {w.spec.name for w in WRITES}
    assert set(schema.subscription_type.fields) == {s.name.split(" ")[1] for s in SUBSCRIPTIONS}


# --- focused rules on top of the table -----------------------------------------------------------------------------


async def test_assignable_roles_act_only_on_cases_they_hold(client: Client, cast: Cast,
                                                            session: AsyncSession) -> None:
    """The services add a rule PERMISSIONS cannot express: a facilitator or officer may start, resolve, refer
    and resubmit only the cases it holds (a supervisor may act on any case in its area)."""
    colleague = cast.staff["fac_a1b"]
    for actor_key in ("facilitator", "officer"):
        for name, status in (("startComplaint", "VERIFIED"), ("resolveComplaint", "VERIFIED"),
                             ("resubmitComplaint", "RETURNED")):
            case = await cast.maker.case("12" + SCOPES["own"], status=status, assignee=colleague)
            extra = {"decision": "x"} if name == "resolveComplaint" else {}
            input_type = {"startComplaint": "ComplaintTransitionInput", "resolveComplaint": "ResolveComplaintInput",
                          "resubmitComplaint": "ResubmitComplaintInput"}[name]
            before = await snapshot(session)
            out = await client.ok(_doc(name, input_type, "complaint"),
                                  {"i": {"id": case.complaint, "expectedVersion": case.version} | extra},
                                  actor=cast.actors[actor_key])
            assert [e["code"] for e in out[name]["errors"]] == ["FORBIDDEN"], (actor_key, name, out)
            assert await snapshot(session) == before
        case = await cast.maker.case("12" + SCOPES["own"], status="VERIFIED", assignee=colleague)
        out = await client.ok(_doc("createReferral", "CreateReferralInput", "referral"),
                              {"i": {"complaintId": case.complaint, "programId": cast.maker.program,
                                     "consentGiven": True}}, actor=cast.actors[actor_key])
        assert [e["code"] for e in out["createReferral"]["errors"]] == ["FORBIDDEN"], (actor_key, out)


async def test_program_limited_key_sees_no_event_of_other_programs(client: Client, cast: Cast,
                                                                   session: AsyncSession) -> None:
    """A partner key limited to KIP sees the households of its area but no complaint about another program,
    whichever way it asks: the complaint list, node(id:), the household's complaints, the change feed, or the
    complaint's events fetched by id."""
    key_id, secret = await cast.maker.api_key(cast.staff["partner"])
    await session.execute(text("update api_keys set program_codes = '{KIP}' where prefix = :p"),
                          {"p": secret.split("_")[1]})
    await session.commit()
    partner = await authenticate_key(session, credential=secret)
    assert partner.programs == frozenset({"KIP"})
    case = await cast.maker.case("12" + SCOPES["own"], status="VERIFIED", referral="SENT",
                                 assignee=cast.staff["fac_a1"])
    out = await client.ok("query($h: ID!, $c: ID!, $e: ID!, $r: ID!) {"
                          " h: node(id: $h) { ... on Household { id complaints { id } } }"
                          " c: node(id: $c) { id } e: node(id: $e) { id } r: node(id: $r) { id }"
                          " complaints { edges { node { id } } } referrals { edges { node { id } } }"
                          " changes(first: 1000) { events { id complaintId } } }",
                          {"h": case.household.id, "c": case.complaint, "e": case.event, "r": case.referral},
                          actor=partner)
    assert out["h"] is not None and out["h"]["complaints"] == []
    assert out["c"] is None and out["r"] is None
    assert out["complaints"]["edges"] == [] and out["referrals"]["edges"] == []
    assert [e for e in out["changes"]["events"] if e["complaintId"] == case.complaint] == []
    assert out["e"] is None, "node(id:) returns a CaseEvent of a complaint the key may not see"


async def test_key_limited_to_a_kecamatan_sees_nothing_beyond_it(client: Client, cast: Cast,
                                                                 session: AsyncSession) -> None:
    _, secret = await cast.maker.api_key(cast.staff["partner"])
    await session.execute(text("update api_keys set region_codes = '{12.74.01}' where prefix = :p"),
                          {"p": secret.split("_")[1]})
    await session.commit()
    partner = await authenticate_key(session, credential=secret)
    inside = await cast.maker.case("12" + SCOPES["own"], assignee=cast.staff["fac_a1"])
    outside = await cast.maker.case("12" + SCOPES["sibling"], assignee=cast.staff["fac_b1"])
    out = await client.ok("query($a: ID!, $b: ID!) { a: node(id: $a) { id } b: node(id: $b) { id }"
                          " households { edges { node { id } } } }",
                          {"a": inside.household.id, "b": outside.household.id}, actor=partner)
    assert out["a"] is not None and out["b"] is None
    assert [e["node"]["id"] for e in out["households"]["edges"]] == [inside.household.id]


async def test_unmasked_reads_are_audited_and_masked_ones_are_not(client: Client, cast: Cast,
                                                                  session: AsyncSession) -> None:
    case = await cast.maker.case("12" + SCOPES["own"], assignee=cast.staff["fac_a1"])
    query = "query($id: ID!) { node(id: $id) { ... on Member { nik } } }"

    async def reads() -> int:
        return int((await session.execute(text(
            "select count(*) from audit_log where action = 'READ_PERSONAL_DATA'"))).scalar_one())

    start = await reads()
    await client.ok(query, {"id": case.household.member}, actor=cast.actors["partner"])
    assert await reads() == start
    for key in ("facilitator", "partner_pd"):
        out = await client.ok(query, {"id": case.household.member}, actor=cast.actors[key])
        assert out["node"]["nik"] == case.household.nik
    assert await reads() == start + 2


# --- subscriptions, end to end over a real server ------------------------------------------------------------------


def s_(name: str, op: Op | None, **flags: Any) -> Spec:
    return Spec(name=name, kind="subscription", op=op, **flags)


SUBSCRIPTIONS = [s_("sub caseEvents", Op.READ, personal=True), s_("sub intake", Op.READ),
                 s_("sub myAssignments", Op.READ),
                 s_("sub workloadChanged", Op.VIEW_WORKLOAD, out_of_scope="NOT_FOUND")]
CASE_EVENTS = """subscription { caseEvents { cursor kind regionCode householdId complaintId
  household { id address latitude longitude members { id name nik nikMasked } } } }"""
INTAKE = "subscription { intake { cursor kind regionCode householdId complaintId } }"
MY = "subscription { myAssignments { cursor kind regionCode complaintId } }"
WORKLOAD = "subscription($r: String) { workloadChanged(regionCode: $r) { regionCode entries { staff { id } } } }"
#: live accounts: role key -> (username suffix, role, region suffix)
LIVE_STAFF = {"facilitator": ("fac", Role.FACILITATOR, ".74.01.1001"),
              "officer": ("officer", Role.PUSKESOS_OFFICER, ".74.01"),
              "supervisor": ("sup", Role.SUPERVISOR, ".74.01"), "manager": ("manager", Role.MANAGER, ".74"),
              "partner": ("partner", Role.PARTNER, ".74"), "admin": ("admin", Role.ADMIN, None),
              "fac_b": ("fac-b", Role.FACILITATOR, ".74.02.1001"), "fac_x": ("fac-x", Role.FACILITATOR, ".71.01.1001")}
LIVE_HOLDER = {"own": "facilitator", "sibling": "fac_b", "foreign": "fac_x"}


@dataclass
class Socket:
    role: str
    ws: GraphQLWS | None
    refused: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None


@dataclass
class Scenario:
    province: str
    sockets: dict[str, Socket]
    households: dict[str, dict[str, Any]]  # scope -> {"id", "complaint", "nik", "name", "address"}
    staff: dict[str, int]


@pytest.fixture(scope="module")
def sub_server(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(live_database_url, Path(tmp_path_factory.mktemp("matrix-server")))
    server.start()
    yield server
    server.stop()
    assert "Traceback" not in server.output(), server.output()


async def _seed(engine: AsyncEngine) -> tuple[str, dict[str, Staff]]:
    p = str(next(conftest._provinces))
    maker = db.make_sessionmaker(engine)
    async with maker() as session, session.begin():
        for code, level, parent in [
            (p, RegionLevel.PROVINCE, None), (f"{p}.74", RegionLevel.KABUPATEN, p),
            (f"{p}.74.01", RegionLevel.KECAMATAN, f"{p}.74"), (f"{p}.74.02", RegionLevel.KECAMATAN, f"{p}.74"),
            (f"{p}.74.01.1001", RegionLevel.DESA, f"{p}.74.01"), (f"{p}.74.02.1001", RegionLevel.DESA, f"{p}.74.02"),
            (f"{p}.71", RegionLevel.KABUPATEN, p), (f"{p}.71.01", RegionLevel.KECAMATAN, f"{p}.71"),
            (f"{p}.71.01.1001", RegionLevel.DESA, f"{p}.71.01"),
        ]:
            session.add(Region(code=code, name=f"Wilayah {code}", level=level.value, parent_code=parent))
            await session.flush()
        staff = {}
        for key, (suffix, role, region) in LIVE_STAFF.items():
            staff[key] = Staff(username=f"m{p}-{suffix}", password_hash=PASSWORD_HASH, full_name=f"Staf {suffix}",
                               role=role.value, region_code=p + region if region else None)
            session.add(staff[key])
    return p, staff


async def _reader(sock: Socket) -> None:
    assert sock.ws is not None
    with contextlib.suppress(Exception):
        while True:
            message = await sock.ws.receive(3600)
            if message["type"] == "ping":
                await sock.ws.send({"type": "pong"})
                continue
            sock.messages.append(message)


async def _quiet(sockets: list[Socket], quiet: float = 0.8, limit: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    last = -1
    while loop.time() < deadline:
        total = sum(len(s.messages) for s in sockets)
        if total == last:
            return
        last = total
        await asyncio.sleep(quiet)


@pytest.fixture(scope="module")
async def scenario(sub_server: ServerProcess, live_engine: AsyncEngine) -> AsyncIterator[Scenario]:
    province, staff = await _seed(live_engine)
    base = sub_server.http
    # the facilitator logs in for real; the others get tokens signed like the test server signs them
    signer = TokenSigner(DEV_SECRET_KEY, access_ttl=600, refresh_ttl=3600)
    tokens = {key: signer.issue(staff[key].id, "access") for key in ("officer", "supervisor", "manager", "admin")}
    tokens["facilitator"] = await login(base, staff["facilitator"].username, PASSWORD)
    for key, grant in (("partner", False), ("partner_pd", True)):
        body = await graphql(base, CREATE_KEY, {"i": {"partnerId": to_global_id("Staff", staff["partner"].id),
                                                      "name": f"live {key}", "personalData": grant}},
                             tokens["admin"])
        tokens[key] = body["data"]["createApiKey"]["secret"]
    sockets: dict[str, Socket] = {}
    for m in MODELS:
        if m.role is None:
            ws = await GraphQLWS.open(sub_server.ws, init=False)
            await ws.send({"type": "connection_init", "payload": {}})
            with contextlib.suppress(Exception):
                await ws.receive(5)
            sockets[m.key] = Socket(m.key, None, refused=ws.conn.close_code)
            continue
        sock = Socket(m.key, await GraphQLWS.open(sub_server.ws, tokens[m.key]))
        sock.reader = asyncio.create_task(_reader(sock))
        assert sock.ws is not None
        await sock.ws.subscribe("ce", CASE_EVENTS)
        await sock.ws.subscribe("in", INTAKE)
        await sock.ws.subscribe("my", MY)
        for scope, suffix in SCOPES.items():
            await sock.ws.subscribe(f"wl-{scope}", WORKLOAD, {"r": province + suffix})
        sockets[m.key] = sock
    await asyncio.sleep(0.5)
    made: dict[str, dict[str, Any]] = {}
    for scope, suffix in SCOPES.items():
        data, facts = household_input(province + suffix, next(_serials))
        body = await graphql(base, REGISTER, {"i": data}, tokens["admin"])
        assert body["data"]["registerHousehold"]["errors"] == [], body
        hid = body["data"]["registerHousehold"]["household"]["id"]
        body = await graphql(base, FILE, {"i": {"householdId": hid, "sector": "FOOD", "description": "Belum BPNT",
                                                "assigneeId": to_global_id("Staff", staff[LIVE_HOLDER[scope]].id)}},
                             tokens["admin"])
        assert body["data"]["fileComplaint"]["errors"] == [], body
        made[scope] = facts | {"id": hid, "complaint": body["data"]["fileComplaint"]["complaint"]["id"]}
    live = [s for s in sockets.values() if s.ws is not None]
    await _quiet(live)
    for s in live:
        assert s.reader is not None and s.ws is not None
        s.reader.cancel()
        with contextlib.suppress(BaseException):
            await s.reader
        await s.ws.close()
    yield Scenario(province=province, sockets=sockets, households=made,
                   staff={k: v.id for k, v in staff.items()})


def _sub_cells(sc: Scenario, m: RoleModel) -> dict[str, dict[str, Cell]]:
    sock = sc.sockets[m.key]
    out: dict[str, dict[str, Cell]] = {spec.name: {} for spec in SUBSCRIPTIONS}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for message in sock.messages:
        by_id.setdefault(message.get("id", ""), []).append(message)

    def payloads(op_id: str, field_name: str) -> list[dict[str, Any]]:
        return [msg["payload"]["data"][field_name] for msg in by_id.get(op_id, [])
                if msg["type"] == "next" and not msg["payload"].get("errors")]

    def error(op_id: str) -> str | None:
        for msg in by_id.get(op_id, []):
            errors = msg["payload"] if msg["type"] == "error" else msg["payload"].get("errors") \
                if msg["type"] == "next" else None
            if errors:
                return str((errors[0].get("extensions") or {}).get("code") or errors[0].get("message"))
        return None

    ce, intake, mine = payloads("ce", "caseEvents"), payloads("in", "intake"), payloads("my", "myAssignments")
    for spec in SUBSCRIPTIONS:
        for scope in SCOPES:
            exp = expected(spec, m, scope, sc.province)
            if spec.name == "sub myAssignments" and ALLOWED in exp and LIVE_HOLDER[scope] != m.key:
                exp = frozenset({HIDDEN})  # only the holder of the case hears of it
            made = sc.households[scope]
            note = ""
            if sock.ws is None:
                got = "UNAUTHENTICATED" if sock.refused == 4403 else f"close {sock.refused}"
            elif spec.name == "sub workloadChanged":
                got = error(f"wl-{scope}") or (ALLOWED if payloads(f"wl-{scope}", "workloadChanged") else HIDDEN)
            else:
                stream, op_id = {"sub caseEvents": (ce, "ce"), "sub intake": (intake, "in"),
                                 "sub myAssignments": (mine, "my")}[spec.name]
                mine_here = [e for e in stream if e.get("householdId") == made["id"]
                             or e.get("complaintId") == made["complaint"]]
                got = error(op_id) or (ALLOWED if mine_here else HIDDEN)
                if got == ALLOWED and spec.personal:
                    registered = [e["household"] for e in mine_here if e["kind"] == "HOUSEHOLD_REGISTERED"]
                    facts = Household(id=made["id"], region="", member="", card="", name=made["name"],
                                      nik=made["nik"], kk=made["kk"], address=made["address"])
                    got = personal_state(facts, registered, []) if registered else "no household event"
                strays = [e for e in stream if not covers(m, sc.province, e["regionCode"])]
                if strays:
                    note = f"(OUT-OF-SCOPE EVENTS DELIVERED: {[e['regionCode'] for e in strays]})"
            out[spec.name][scope] = Cell(got=got, expected=exp, note=note)
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("role", [m.key for m in MODELS])
async def test_subscription_matrix_over_a_real_server(scenario: Scenario, role: str) -> None:
    """Each role subscribes to caseEvents, intake, myAssignments and workloadChanged (one per location) on a
    real socket; a household and a complaint are then written in each location. Out-of-area events must never
    arrive, personal data arrives masked for a key without the grant, workload is refused to roles without it."""
    m = MODEL[role]
    cells = _sub_cells(scenario, m)
    for spec in SUBSCRIPTIONS:
        for scope, cell in cells[spec.name].items():
            record(spec, role, scope, cell)
    problems = [p for spec in SUBSCRIPTIONS for p in mismatches(spec) if f" as {role} " in p]
    assert not problems, "\n".join(problems)


# --- the printed grid ----------------------------------------------------------------------------------------------


def render() -> str:
    groups = [(m.key, m.label) for m in MODELS]
    width = 30
    cols = [max(len(label), 12) for _, label in groups]
    lines = ["", "AUTHORIZATION MATRIX  (per role: own village / village of the neighbouring kecamatan / village of "
             "another kabupaten)",
             "  ✓ allowed   M allowed, personal data masked   ✗ denied or hidden   ! differs from PERMISSIONS + scope",
             ""]
    header = " " * width + "|" + "|".join(label.center(w) for (_, label), w in zip(groups, cols, strict=True))
    sub = " " * width + "|" + "|".join("own sib far ".ljust(w) for w in cols)
    lines += [header, sub, "-" * len(header)]
    for kind in ("query", "mutation", "subscription"):
        lines.append(f"[{kind}]")
        for (k, name), row in RESULTS.items():
            if k != kind:
                continue
            cells = []
            for (key, _), w in zip(groups, cols, strict=True):
                slots = ""
                for scope in SCOPES:
                    cell = row.get(key, {}).get(scope)
                    if cell is None:
                        slots += " ·  "
                        continue
                    symbol = cell.got if cell.got in {ALLOWED, MASKED} else HIDDEN
                    slots += f" {symbol}{' ' if cell.ok else '!'} "
                cells.append(slots.ljust(w))
            lines.append(name[:width - 1].ljust(width) + "|" + "|".join(cells))
    bad = [(n, r, s, c) for (_, n), row in RESULTS.items() for r, scopes in row.items()
           for s, c in scopes.items() if not c.ok]
    total = sum(len(s) for row in RESULTS.values() for s in row.values())
    lines += ["", f"{total} cells, {len(bad)} differ from PERMISSIONS + region scope"]
    lines += [f"  ! {n} as {r} on the {s} object: expected {'/'.join(sorted(c.expected))}, got {c.got} {c.note}"
              .rstrip() for n, r, s, c in bad]
    return "\n".join(lines) + "\n"


def test_zz_print_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    if not RESULTS:
        pytest.skip("no matrix cells ran")
    with capsys.disabled():
        sys.stdout.write(render())
