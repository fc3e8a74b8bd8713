"""The read side: me, node, households (with nested members, complaints, referrals and personal-data masking),
regions, programs, staff, changes, totalCount, authentication, and that errors never leak internals or NIKs."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.actor import Actor
from domain.events import AuditEntry, CaseEvent
from schema.relay import pk_of, to_global_id
from tests.conftest import DESA_A1, DESA_A2, DESA_B1, KEC_A, KEC_B, Client, World, nik

# --- seed data ----------------------------------------------------------------------------------------------

HEAD_BIRTH = dt.date(1980, 3, 12)
WIFE_BIRTH = dt.date(1984, 7, 2)
B_BIRTH = dt.date(1975, 11, 30)
A2_BIRTH = dt.date(1990, 1, 5)
NIK_HEAD = nik(KEC_A, HEAD_BIRTH, female=False, serial=1)
NIK_WIFE = nik(KEC_A, WIFE_BIRTH, female=True, serial=2)
NIK_A2 = nik(KEC_A, A2_BIRTH, female=True, serial=3)
NIK_B = nik(KEC_B, B_BIRTH, female=False, serial=4)
ALL_NIKS = (NIK_HEAD, NIK_WIFE, NIK_A2, NIK_B)

REGISTER = """
mutation($input: RegisterHouseholdInput!) {
  registerHousehold(input: $input) { household { id members { id } } errors { field code } }
}"""

FILE = """
mutation($input: FileComplaintInput!) { fileComplaint(input: $input) { complaint { id } errors { code } } }"""

VERIFY = """
mutation($input: ComplaintTransitionInput!) { verifyComplaint(input: $input) { complaint { id } errors { code } } }"""

CREATE_REFERRAL = """
mutation($input: CreateReferralInput!) { createReferral(input: $input) { referral { id } errors { code } } }"""

SEND_REFERRAL = """
mutation($input: ReferralTransitionInput!) { sendReferral(input: $input) { referral { id } errors { code } } }"""


def household_input(region: str, kk: str, members: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"regionCode": region, "address": "Jl. Sudirman Gg. Melati No. 12", "rt": "003", "rw": "001",
            "dtksStatus": "REGISTERED", "familyCards": [kk], "members": members} | extra


def member(name: str, sex: str, birth: dt.date, relation: str, number: str) -> dict[str, Any]:
    return {"name": name, "sex": sex, "birthDate": birth.isoformat(), "relation": relation, "nik": number}


@dataclass
class Seed:
    household_a: str
    household_a2: str
    household_b: str
    head_a: str
    wife_a: str
    member_b: str
    complaint_a: str
    complaint_a2: str
    complaint_b: str
    referral_a: str
    referral_b: str


FORBIDDEN_TEXT = ("Traceback", "SELECT", "INSERT", "UPDATE ", "asyncpg", "sqlalchemy", "psycopg", 'File "')


def assert_clean_errors(out: dict[str, Any]) -> None:
    """No error of a response may carry a stack trace, SQL, a driver name or a NIK."""
    for error in out["errors"]:
        text = json.dumps(error)
        for word in FORBIDDEN_TEXT:
            assert word not in text, error
        for number in ALL_NIKS:
            assert number not in text, error
        assert not re.search(r"\d{16}", text), error


async def execute(client: Client, query: str, variables: dict[str, Any] | None = None, *,
                  actor: Actor | None) -> dict[str, Any]:
    out = await client.execute(query, variables, actor=actor)
    assert_clean_errors(out)
    return out


async def ok(client: Client, query: str, variables: dict[str, Any] | None = None, *,
             actor: Actor | None) -> dict[str, Any]:
    out = await execute(client, query, variables, actor=actor)
    assert not out["errors"], out["errors"]
    data: dict[str, Any] = out["data"]
    return data


def error_codes(out: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in out["errors"]]


async def _mutate(client: Client, doc: str, name: str, data: dict[str, Any], actor: Actor) -> dict[str, Any]:
    payload: dict[str, Any] = (await ok(client, doc, {"input": data}, actor=actor))[name]
    assert payload["errors"] == [], payload
    return payload


@pytest.fixture
async def seed(client: Client, world: World) -> Seed:
    """Kecamatan A: a household in desa 1001 with a verified complaint and a sent referral, a household in desa
    1002 with a new complaint; kecamatan B: a household with a verified complaint and a draft referral."""
    fac_a1, fac_a2, fac_b1 = world.actor("fac_a1"), world.actor("fac_a2"), world.actor("fac_b1")
    sup_a, sup_b = world.actor("sup_a"), world.actor("sup_b")
    a = (await _mutate(client, REGISTER, "registerHousehold", household_input(
        DESA_A1, "1274011203150007",
        [member("Ahmad Siregar", "MALE", HEAD_BIRTH, "HEAD", NIK_HEAD),
         member("Siti Nasution", "FEMALE", WIFE_BIRTH, "SPOUSE", NIK_WIFE)],
        latitude=2.9667, longitude=99.8), fac_a1))["household"]
    a2 = (await _mutate(client, REGISTER, "registerHousehold", household_input(
        DESA_A2, "1274010501900003", [member("Rina Tanjung", "FEMALE", A2_BIRTH, "HEAD", NIK_A2)]),
        fac_a2))["household"]
    b = (await _mutate(client, REGISTER, "registerHousehold", household_input(
        DESA_B1, "1274023011750004", [member("Bonar Simatupang", "MALE", B_BIRTH, "HEAD", NIK_B)]),
        fac_b1))["household"]
    pbi = to_global_id("Program", world.programs["PBI-JK"].id)

    async def case(household: dict[str, Any], fac: Actor, sup: Actor | None) -> str:
        cid: str = (await _mutate(client, FILE, "fileComplaint", {
            "householdId": household["id"], "memberId": household["members"][0]["id"], "sector": "HEALTH",
            "description": "Belum punya KIS", "programId": pbi}, fac))["complaint"]["id"]
        if sup is not None:
            await _mutate(client, VERIFY, "verifyComplaint", {"id": cid, "expectedVersion": 1}, sup)
        return cid

    complaint_a = await case(a, fac_a1, sup_a)
    complaint_a2 = await case(a2, fac_a2, None)
    complaint_b = await case(b, fac_b1, sup_b)
    referral_a = (await _mutate(client, CREATE_REFERRAL, "createReferral", {
        "complaintId": complaint_a, "programId": pbi, "consentGiven": True}, fac_a1))["referral"]["id"]
    await _mutate(client, SEND_REFERRAL, "sendReferral", {"id": referral_a, "expectedVersion": 1}, sup_a)
    referral_b = (await _mutate(client, CREATE_REFERRAL, "createReferral", {
        "complaintId": complaint_b, "programId": pbi, "consentGiven": True}, fac_b1))["referral"]["id"]
    return Seed(household_a=a["id"], household_a2=a2["id"], household_b=b["id"], head_a=a["members"][0]["id"],
                wife_a=a["members"][1]["id"], member_b=b["members"][0]["id"], complaint_a=complaint_a,
                complaint_a2=complaint_a2, complaint_b=complaint_b, referral_a=referral_a, referral_b=referral_b)


async def audit_rows(session: AsyncSession, action: str) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    return list(await session.scalars(stmt.execution_options(populate_existing=True)))


# --- me -------------------------------------------------------------------------------------------------------

ME = "{ me { id username fullName role regionCode regionCodes active region { code name level } } }"


async def test_me(client: Client, world: World) -> None:
    data = await ok(client, ME, actor=world.actor("fac_a1"))
    assert data["me"] == {
        "id": to_global_id("Staff", world.staff["fac_a1"].id), "username": "fac_a1", "fullName": "Fac A1",
        "role": "FACILITATOR", "regionCode": DESA_A1, "regionCodes": [DESA_A1], "active": True,
        "region": {"code": DESA_A1, "name": "Indra Sakti", "level": "DESA"},
    }
    admin = await ok(client, ME, actor=world.actor("admin"))
    assert admin["me"]["role"] == "ADMIN" and admin["me"]["regionCode"] is None and admin["me"]["region"] is None
    assert (await ok(client, ME, actor=None)) == {"me": None}


# --- node -------------------------------------------------------------------------------------------------------

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Household { regionCode }
    ... on Complaint { complaintStatus: status regionCode }
    ... on Referral { referralStatus: status }
    ... on Member { relation nikMasked }
    ... on FamilyCard { numberMasked }
    ... on Program { code }
    ... on Region { code level }
    ... on Staff { username }
  }
}"""

FAMILY_CARDS = "query($id: ID!) { node(id: $id) { ... on Household { familyCards { id } } } }"
REGION_IDS = "{ regions(parentCode: \"12.74.01\") { id code } }"
PROGRAM_IDS = "{ programs { id code } }"


async def node(client: Client, gid: str, actor: Actor | None) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (await ok(client, NODE, {"id": gid}, actor=actor))["node"]
    return found


async def test_node_fetches_every_type(client: Client, world: World, seed: Seed) -> None:
    fac = world.actor("fac_a1")
    card = (await ok(client, FAMILY_CARDS, {"id": seed.household_a}, actor=fac))["node"]["familyCards"][0]["id"]
    regions = {r["code"]: r["id"] for r in (await ok(client, REGION_IDS, actor=world.actor("sup_a")))["regions"]}
    programs = {p["code"]: p["id"] for p in (await ok(client, PROGRAM_IDS, actor=fac))["programs"]}
    expected = {
        seed.household_a: {"__typename": "Household", "regionCode": DESA_A1},
        seed.complaint_a: {"__typename": "Complaint", "complaintStatus": "REFERRED", "regionCode": DESA_A1},
        seed.referral_a: {"__typename": "Referral", "referralStatus": "SENT"},
        seed.head_a: {"__typename": "Member", "relation": "HEAD", "nikMasked": "1274**********01"},
        card: {"__typename": "FamilyCard", "numberMasked": "1274**********07"},
        programs["KIP"]: {"__typename": "Program", "code": "KIP"},
        regions[DESA_A1]: {"__typename": "Region", "code": DESA_A1, "level": "DESA"},
        to_global_id("Staff", world.staff["fac_a1b"].id): {"__typename": "Staff", "username": "fac_a1b"},
    }
    for gid, fields in expected.items():
        assert await node(client, gid, fac) == {"id": gid} | fields, gid
    # supervisors and managers reach the same objects; a region above one's area is visible on the way down
    for who in ("sup_a", "manager", "admin"):
        assert (await node(client, seed.referral_a, world.actor(who)) or {}).get("referralStatus") == "SENT", who
    kabupaten = to_global_id("Region", "12.74")
    assert (await node(client, kabupaten, fac) or {}).get("code") == "12.74"


@pytest.mark.parametrize("who", ["sup_b", "fac_b1"])
async def test_node_outside_the_area_is_null(client: Client, world: World, seed: Seed, who: str) -> None:
    actor = world.actor(who)
    card = (await ok(client, FAMILY_CARDS, {"id": seed.household_a}, actor=world.actor("fac_a1")))["node"]
    outside = [seed.household_a, seed.household_a2, seed.complaint_a, seed.complaint_a2, seed.referral_a,
               seed.head_a, seed.wife_a, card["familyCards"][0]["id"], to_global_id("Region", KEC_A),
               to_global_id("Region", DESA_A1), to_global_id("Staff", world.staff["fac_a1"].id),
               to_global_id("Staff", world.staff["sup_a"].id), to_global_id("Staff", world.staff["officer_a"].id)]
    for gid in outside:
        assert await node(client, gid, actor) is None, gid
    # the same actor does see what lies in its own kecamatan, and the shared catalog
    inside = [seed.household_b, seed.complaint_b, seed.referral_b, seed.member_b, to_global_id("Region", DESA_B1),
              to_global_id("Staff", world.staff["fac_b1"].id),
              to_global_id("Program", world.programs["PKH"].id)]
    for gid in inside:
        assert (await node(client, gid, actor) or {}).get("id") == gid, gid


async def test_facilitator_sees_only_own_village(client: Client, world: World, seed: Seed) -> None:
    fac = world.actor("fac_a1")
    for gid in (seed.household_a2, seed.complaint_a2, to_global_id("Region", DESA_A2),
                to_global_id("Staff", world.staff["fac_a2"].id)):
        assert await node(client, gid, fac) is None, gid


async def test_node_staff_agrees_with_the_staff_list(client: Client, world: World) -> None:
    """``node`` is null outside your area, like ``staff`` lists only your area: a staff member at the
    kabupaten (the manager, the partner's key) is outside a kecamatan supervisor's or a facilitator's area."""
    for who in ("sup_a", "sup_b", "fac_a1", "fac_b1", "manager"):
        actor = world.actor(who)
        listed = await staff_names(client, actor)
        reachable = {name for name, s in world.staff.items()
                     if await node(client, to_global_id("Staff", s.id), actor) is not None}
        assert reachable == listed, who


async def test_node_resolves_case_event_ids(client: Client, world: World, seed: Seed) -> None:
    """CaseEvent implements Node: the ids `changes` and `timeline` hand out are fetchable with node(id:)."""
    events = (await ok(client, CHANGES, {"first": 50}, actor=world.actor("manager")))["changes"]["events"]
    query = "query($id: ID!) { node(id: $id) { __typename id ... on CaseEvent { kind regionCode } } }"
    for event in events:
        found = (await ok(client, query, {"id": event["id"]}, actor=world.actor("sup_b")))["node"]
        if event["regionCode"].startswith(KEC_B):
            assert found == {"__typename": "CaseEvent", "id": event["id"], "kind": event["kind"],
                             "regionCode": event["regionCode"]}, event
        else:
            assert found is None, event


@pytest.mark.parametrize("gid", [
    "garbage", "", "!!!", "=", "x" * 1000, to_global_id("Household", "abc"), to_global_id("Household", 0),
    to_global_id("Household", -1), to_global_id("Household", 2**63), to_global_id("Household", 987654),
    to_global_id("Nope", 1), to_global_id("Region", "xx"), to_global_id("Region", "99"),
    to_global_id("Staff", 987654), to_global_id("Complaint", "1 OR 1=1"), to_global_id("", 1),
    base64.urlsafe_b64encode(b"\xff\xfe:1").decode(), to_global_id("Household", "\u00b2"),
    to_global_id("Member", "\u00b9\u00b2"),
])
async def test_garbage_id_is_null(client: Client, world: World, seed: Seed, gid: str) -> None:
    assert await node(client, gid, world.actor("admin")) is None


async def test_node_without_credentials_is_unauthenticated(client: Client, world: World, seed: Seed) -> None:
    out = await execute(client, NODE, {"id": seed.household_a}, actor=None)
    assert error_codes(out) == ["UNAUTHENTICATED"]
    assert out["data"] == {"node": None}


# --- households and personal data -------------------------------------------------------------------------------

HOUSEHOLDS = """
query($filter: HouseholdFilter, $first: Int, $after: String) {
  households(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node {
      id regionCode address latitude longitude rt
      members { id name nik nikMasked relation }
      complaints { id status member { name } referrals { id status program { code } complaint { id } } }
    } }
  }
}"""


async def households(client: Client, actor: Actor, **variables: Any) -> dict[str, Any]:
    page: dict[str, Any] = (await ok(client, HOUSEHOLDS, variables, actor=actor))["households"]
    return page


async def test_facilitator_sees_full_personal_data_and_the_read_is_audited(
        client: Client, world: World, session: AsyncSession, seed: Seed) -> None:
    assert await audit_rows(session, "READ_PERSONAL_DATA") == []
    page = await households(client, world.actor("fac_a1"))
    assert page["totalCount"] == 1
    [edge] = page["edges"]
    h = edge["node"]
    assert h["id"] == seed.household_a and h["address"] == "Jl. Sudirman Gg. Melati No. 12"
    assert (h["latitude"], h["longitude"]) == (2.9667, 99.8)
    assert [(m["name"], m["nik"], m["nikMasked"]) for m in h["members"]] == [
        ("Ahmad Siregar", NIK_HEAD, "1274**********01"), ("Siti Nasution", NIK_WIFE, "1274**********02")]
    assert h["complaints"] == [{"id": seed.complaint_a, "status": "REFERRED", "member": {"name": "Ahmad Siregar"},
                                "referrals": [{"id": seed.referral_a, "status": "SENT", "program": {"code": "PBI-JK"},
                                               "complaint": {"id": seed.complaint_a}}]}]
    [entry] = await audit_rows(session, "READ_PERSONAL_DATA")
    assert entry.actor_id == world.staff["fac_a1"].id and entry.entity_type == "Member"
    members = entry.detail["members"]
    assert len(members) == 2 and set(members) == {pk_of(seed.head_a, "Member"), pk_of(seed.wife_a, "Member")}
    # the audit records who and which members, never the numbers themselves
    assert not any(number in json.dumps(entry.detail) for number in ALL_NIKS)


MEMBER_NIK = "query($id: ID!) { node(id: $id) { ... on Member { name nik } } }"


async def test_nik_read_through_node_is_audited(client: Client, world: World, session: AsyncSession,
                                                seed: Seed) -> None:
    found = (await ok(client, MEMBER_NIK, {"id": seed.wife_a}, actor=world.actor("sup_a")))["node"]
    assert found == {"name": "Siti Nasution", "nik": NIK_WIFE}
    [entry] = await audit_rows(session, "READ_PERSONAL_DATA")
    assert entry.actor_id == world.staff["sup_a"].id and entry.detail["members"] == [pk_of(seed.wife_a, "Member")]
    masked = (await ok(client, MEMBER_NIK, {"id": seed.wife_a}, actor=world.actor("partner")))["node"]
    assert masked == {"name": "S. N.", "nik": None}
    assert len(await audit_rows(session, "READ_PERSONAL_DATA")) == 1


async def test_nik_shown_in_a_partly_failed_response_is_still_audited(client: Client, world: World,
                                                                      session: AsyncSession, seed: Seed) -> None:
    """Whatever else fails in the operation, a NIK that leaves the server in the response has been read and must
    be audited (the unit of work rolls back on any error, and the audit row with it)."""
    query = """query($member: ID!, $other: ID!) {
      shown: node(id: $member) { ... on Member { nik } }
      other: node(id: $other) { id }
    }"""
    out = await execute(client, query, {"member": seed.head_a, "other": to_global_id("Household", "\u00b2")},
                        actor=world.actor("fac_a1"))
    assert out["data"]["shown"] == {"nik": NIK_HEAD}  # the number left the server...
    entries = await audit_rows(session, "READ_PERSONAL_DATA")
    assert [e.detail["members"] for e in entries] == [[pk_of(seed.head_a, "Member")]], (
        "a NIK was sent in the response but its read was not audited", out["errors"])


async def test_reading_without_nik_writes_no_personal_data_audit(client: Client, world: World,
                                                                 session: AsyncSession, seed: Seed) -> None:
    out = await ok(client, "{ households { edges { node { address members { name nikMasked } } } } }",
                   actor=world.actor("sup_a"))
    assert len(out["households"]["edges"]) == 2
    assert await audit_rows(session, "READ_PERSONAL_DATA") == []


async def test_partner_sees_masked_personal_data(client: Client, world: World, session: AsyncSession,
                                                 seed: Seed) -> None:
    page = await households(client, world.actor("partner"))
    assert page["totalCount"] == 3  # the whole kabupaten
    by_id = {e["node"]["id"]: e["node"] for e in page["edges"]}
    assert set(by_id) == {seed.household_a, seed.household_a2, seed.household_b}
    for h in by_id.values():
        assert h["address"] is None and h["latitude"] is None and h["longitude"] is None
        assert all(m["nik"] is None for m in h["members"])
        assert all(m["nikMasked"] and "*" in m["nikMasked"] for m in h["members"])
    a = by_id[seed.household_a]
    assert [m["name"] for m in a["members"]] == ["A. S.", "S. N."]
    assert a["complaints"][0]["member"]["name"] == "A. S."
    assert a["complaints"][0]["referrals"][0]["id"] == seed.referral_a
    assert by_id[seed.household_b]["members"][0]["name"] == "B. S."
    assert await audit_rows(session, "READ_PERSONAL_DATA") == []


async def test_households_are_scoped(client: Client, world: World, seed: Seed) -> None:
    expected = {"fac_a1": [seed.household_a], "fac_a2": [seed.household_a2], "fac_b1": [seed.household_b],
                "sup_a": [seed.household_a2, seed.household_a], "sup_b": [seed.household_b],
                "manager": [seed.household_b, seed.household_a2, seed.household_a]}
    for who, ids in expected.items():
        page = await households(client, world.actor(who))
        assert [e["node"]["id"] for e in page["edges"]] == ids, who  # newest first
        assert page["totalCount"] == len(ids), who
    # sup_b's view of nested referrals holds only kecamatan B
    page = await households(client, world.actor("sup_b"))
    refs = [r["id"] for e in page["edges"] for c in e["node"]["complaints"] for r in c["referrals"]]
    assert refs == [seed.referral_b]


@pytest.mark.parametrize("typed", [NIK_HEAD, "1274 0112 0380 0001", "1274.0112.0380.0001", "1274-0112-0380-0001"])
async def test_households_by_nik(client: Client, world: World, session: AsyncSession, seed: Seed,
                                 typed: str) -> None:
    page = await households(client, world.actor("sup_a"), filter={"nik": typed})
    assert [e["node"]["id"] for e in page["edges"]] == [seed.household_a]
    assert page["totalCount"] == 1
    assert await audit_rows(session, "SEARCH_BY_NIK")


async def test_nik_search_is_exact_and_scoped(client: Client, world: World, seed: Seed) -> None:
    sup_a = world.actor("sup_a")
    for wrong in (NIK_HEAD[:15], NIK_HEAD + "1", NIK_HEAD[:-1] + "9", "1274011203800", "tidak ada"):
        page = await households(client, sup_a, filter={"nik": wrong})
        assert page["edges"] == [] and page["totalCount"] == 0, wrong
    # the wife's NIK finds the same household; kecamatan B's NIK is not found from kecamatan A
    assert [e["node"]["id"] for e in (await households(client, sup_a, filter={"nik": NIK_WIFE}))["edges"]] == [
        seed.household_a]
    assert (await households(client, sup_a, filter={"nik": NIK_B}))["edges"] == []
    assert [e["node"]["id"] for e in (await households(client, world.actor("sup_b"), filter={"nik": NIK_B}))[
        "edges"]] == [seed.household_b]


async def test_partner_may_not_search_by_nik(client: Client, world: World, session: AsyncSession,
                                             seed: Seed) -> None:
    out = await execute(client, HOUSEHOLDS, {"filter": {"nik": NIK_HEAD}}, actor=world.actor("partner"))
    assert error_codes(out) == ["FORBIDDEN"]
    assert out["data"] is None
    assert await audit_rows(session, "SEARCH_BY_NIK") == []


async def test_household_paging_visits_every_household_once(client: Client, world: World, seed: Seed) -> None:
    manager = world.actor("manager")
    seen: list[str] = []
    after = None
    while True:
        page = await households(client, manager, first=1, after=after)
        assert page["totalCount"] == 3
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [e["node"]["id"] for e in page["edges"]]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [seed.household_b, seed.household_a2, seed.household_a]


# --- complaints, referrals, totalCount, authentication ------------------------------------------------------------

COMPLAINTS = """
query($first: Int, $after: String, $filter: ComplaintFilter) {
  complaints(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage } edges { node { id } }
  }
}"""
REFERRALS = """
query($first: Int, $after: String, $filter: ReferralFilter) {
  referrals(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage } edges { node { id status } }
  }
}"""


async def test_total_count_counts_every_page_in_scope(client: Client, world: World, seed: Seed) -> None:
    manager, sup_a, sup_b = world.actor("manager"), world.actor("sup_a"), world.actor("sup_b")
    complaints = (await ok(client, COMPLAINTS, {"first": 1}, actor=manager))["complaints"]
    assert complaints["totalCount"] == 3 and len(complaints["edges"]) == 1
    assert complaints["pageInfo"]["hasNextPage"] is True
    assert (await ok(client, COMPLAINTS, {"first": 1}, actor=sup_a))["complaints"]["totalCount"] == 2
    only_b = (await ok(client, COMPLAINTS, {}, actor=sup_b))["complaints"]
    assert only_b["totalCount"] == 1 and [e["node"]["id"] for e in only_b["edges"]] == [seed.complaint_b]
    verified = (await ok(client, COMPLAINTS, {"filter": {"status": ["NEW"]}}, actor=manager))["complaints"]
    assert verified["totalCount"] == 1 and [e["node"]["id"] for e in verified["edges"]] == [seed.complaint_a2]

    referrals = (await ok(client, REFERRALS, {"first": 1}, actor=manager))["referrals"]
    assert referrals["totalCount"] == 2 and len(referrals["edges"]) == 1 and referrals["pageInfo"]["hasNextPage"]
    scoped = (await ok(client, REFERRALS, {}, actor=sup_a))["referrals"]
    assert scoped["totalCount"] == 1 and scoped["edges"] == [{"node": {"id": seed.referral_a, "status": "SENT"}}]
    drafts = (await ok(client, REFERRALS, {"filter": {"status": ["DRAFT"]}}, actor=manager))["referrals"]
    assert drafts["totalCount"] == 1 and drafts["edges"][0]["node"]["id"] == seed.referral_b
    of_b = (await ok(client, REFERRALS, {"filter": {"complaintId": seed.complaint_b}}, actor=sup_a))["referrals"]
    assert of_b["totalCount"] == 0 and of_b["edges"] == []


@pytest.mark.parametrize("query", [COMPLAINTS, REFERRALS, HOUSEHOLDS, "{ regions { code } }", "{ programs { code } }",
                                   "{ staff { username } }", "{ changes { endCursor } }"])
async def test_requests_without_actor_are_unauthenticated(client: Client, world: World, seed: Seed,
                                                          query: str) -> None:
    out = await execute(client, query, {}, actor=None)
    assert error_codes(out) == ["UNAUTHENTICATED"]
    assert out["data"] is None


# --- regions, programs, staff ---------------------------------------------------------------------------------------

REGIONS = """
query($parent: String) { regions(parentCode: $parent) { id code name level parentCode children { code level } } }"""


async def region_tree(client: Client, actor: Actor, parent: str | None = None) -> list[tuple[str, list[str]]]:
    rows = (await ok(client, REGIONS, {"parent": parent}, actor=actor))["regions"]
    return [(r["code"], [c["code"] for c in r["children"]]) for r in rows]


async def test_regions_are_the_root_of_scope_and_its_visible_children(client: Client, world: World) -> None:
    sup_a = world.actor("sup_a")
    rows = (await ok(client, REGIONS, {}, actor=sup_a))["regions"]
    assert rows == [{"id": to_global_id("Region", KEC_A), "code": KEC_A, "name": "Tanjungbalai Selatan",
                     "level": "KECAMATAN", "parentCode": "12.74",
                     "children": [{"code": DESA_A1, "level": "DESA"}, {"code": DESA_A2, "level": "DESA"}]}]
    # walking down from above the scope shows only the way to it
    assert await region_tree(client, sup_a, "12.74") == [(KEC_A, [DESA_A1, DESA_A2])]
    assert await region_tree(client, sup_a, "12") == [("12.74", [KEC_A])]
    assert await region_tree(client, sup_a, KEC_B) == []
    assert await region_tree(client, world.actor("sup_b"), "12.74") == [(KEC_B, [DESA_B1])]
    assert await region_tree(client, world.actor("fac_a1")) == [(DESA_A1, [])]
    assert await region_tree(client, world.actor("fac_a1"), KEC_A) == [(DESA_A1, [])]
    assert await region_tree(client, world.actor("manager")) == [("12.74", [KEC_A, KEC_B])]
    assert await region_tree(client, world.actor("partner")) == [("12.74", [KEC_A, KEC_B])]
    assert await region_tree(client, world.actor("admin")) == [("12", ["12.74"])]


PROGRAMS = """
query($all: Boolean!) { programs(includeInactive: $all) { id code name sector ownerAgency slaDays active } }"""


async def test_programs(client: Client, world: World, session: AsyncSession) -> None:
    rows = (await ok(client, PROGRAMS, {"all": False}, actor=world.actor("partner")))["programs"]
    assert [(p["code"], p["sector"], p["ownerAgency"], p["slaDays"], p["active"]) for p in rows] == [
        ("KIP", "EDUCATION", "Dinas Pendidikan", 14, True),
        ("PBI-JK", "HEALTH", "BPJS Kesehatan", 7, True),
        ("PKH", "PKH", "Kementerian Sosial", 14, True),
    ]
    assert rows[1]["id"] == to_global_id("Program", world.programs["PBI-JK"].id)
    assert rows[1]["name"] == "PBI Jaminan Kesehatan"
    world.programs["KIP"].active = False
    await session.commit()
    active = (await ok(client, PROGRAMS, {"all": False}, actor=world.actor("fac_b1")))["programs"]
    assert [p["code"] for p in active] == ["PBI-JK", "PKH"]
    everything = (await ok(client, PROGRAMS, {"all": True}, actor=world.actor("fac_b1")))["programs"]
    assert [(p["code"], p["active"]) for p in everything] == [("KIP", False), ("PBI-JK", True), ("PKH", True)]


STAFF = """
query($region: String, $roles: [Role!]) { staff(regionCode: $region, roles: $roles) { id username role regionCode } }"""


async def staff_names(client: Client, actor: Actor, **variables: Any) -> set[str]:
    return {s["username"] for s in (await ok(client, STAFF, variables, actor=actor))["staff"]}


async def test_staff_is_scoped(client: Client, world: World) -> None:
    sup_a = world.actor("sup_a")
    assert await staff_names(client, sup_a) == {"sup_a", "officer_a", "fac_a1", "fac_a1b", "fac_a2"}
    assert await staff_names(client, world.actor("sup_b")) == {"sup_b", "fac_b1"}
    assert await staff_names(client, world.actor("fac_a1")) == {"fac_a1", "fac_a1b"}
    assert await staff_names(client, world.actor("manager")) == set(world.staff) - {"admin"}
    assert await staff_names(client, sup_a, region=DESA_A1) == {"fac_a1", "fac_a1b"}
    assert await staff_names(client, sup_a, region=KEC_B) == set()
    assert await staff_names(client, sup_a, region="12.74") == set()
    assert await staff_names(client, sup_a, roles=["FACILITATOR"]) == {"fac_a1", "fac_a1b", "fac_a2"}
    assert await staff_names(client, world.actor("manager"), roles=["SUPERVISOR", "PUSKESOS_OFFICER"]) == {
        "sup_a", "sup_b", "officer_a"}
    rows = (await ok(client, STAFF, {"roles": ["PUSKESOS_OFFICER"]}, actor=sup_a))["staff"]
    assert rows == [{"id": to_global_id("Staff", world.staff["officer_a"].id), "username": "officer_a",
                     "role": "PUSKESOS_OFFICER", "regionCode": KEC_A}]


# --- changes ---------------------------------------------------------------------------------------------------------

CHANGES = """
query($after: String, $first: Int) {
  changes(after: $after, first: $first) {
    endCursor hasMore
    events { id cursor kind regionCode householdId complaintId referralId actorId data occurredAt }
  }
}"""


async def all_changes(client: Client, actor: Actor, *, first: int, after: str | None = None
                      ) -> tuple[list[dict[str, Any]], str]:
    events: list[dict[str, Any]] = []
    for _ in range(100):
        page = (await ok(client, CHANGES, {"after": after, "first": first}, actor=actor))["changes"]
        assert len(page["events"]) <= first
        events += page["events"]
        if page["events"]:
            assert page["endCursor"] == page["events"][-1]["cursor"]
        else:
            assert page["endCursor"] == (after or "0")
        after = page["endCursor"]
        if not page["hasMore"]:
            return events, after
        assert page["events"], "hasMore with an empty page"
    raise AssertionError("paging did not end")


async def test_changes_pages_through_every_event_once_in_order(client: Client, world: World,
                                                               session: AsyncSession, seed: Seed) -> None:
    logged = [(str(i), k, r) for i, k, r in await session.execute(
        select(CaseEvent.id, CaseEvent.kind, CaseEvent.region_code).order_by(CaseEvent.id))]
    assert len(logged) == 12
    manager = world.actor("manager")
    for first in (1, 5, 12, 50):
        events, end = await all_changes(client, manager, first=first)
        assert [(e["cursor"], e["kind"], e["regionCode"]) for e in events] == logged, first
        assert end == logged[-1][0]
    # nothing new after the end; the end cursor stays where it is
    tail = (await ok(client, CHANGES, {"after": end}, actor=manager))["changes"]
    assert tail == {"endCursor": end, "hasMore": False, "events": []}
    # resuming in the middle gives exactly the rest
    middle = logged[4][0]
    rest, _ = await all_changes(client, manager, first=3, after=middle)
    assert [e["cursor"] for e in rest] == [c for c, _, _ in logged[5:]]
    # the events name their objects by global id
    first_event = (await ok(client, CHANGES, {"first": 1}, actor=manager))["changes"]["events"][0]
    assert first_event["kind"] == "HOUSEHOLD_REGISTERED" and first_event["householdId"] == seed.household_a
    assert first_event["actorId"] == to_global_id("Staff", world.staff["fac_a1"].id)
    assert first_event["id"] == to_global_id("CaseEvent", int(first_event["cursor"]))
    sent = [e for e in events if e["kind"] == "REFERRAL_SENT"]
    assert [(e["referralId"], e["complaintId"]) for e in sent] == [(seed.referral_a, seed.complaint_a)]


async def test_partner_sync_carries_no_personal_data(client: Client, world: World, seed: Seed) -> None:
    events, _ = await all_changes(client, world.actor("partner"), first=50)
    assert len(events) == 12
    text = json.dumps(events)
    for secret in (*ALL_NIKS, "1274011203150007", "Ahmad", "Siregar", "Siti", "Bonar", "Sudirman", "Belum punya"):
        assert secret not in text, secret


@pytest.mark.parametrize(("who", "prefix"), [("sup_b", KEC_B), ("fac_b1", DESA_B1), ("sup_a", KEC_A),
                                             ("fac_a1", DESA_A1)])
async def test_changes_are_scoped(client: Client, world: World, session: AsyncSession, seed: Seed,
                                  who: str, prefix: str) -> None:
    expected = [str(i) for i, r in await session.execute(select(CaseEvent.id, CaseEvent.region_code)
                                                       .order_by(CaseEvent.id)) if r.startswith(prefix)]
    assert expected
    events, _ = await all_changes(client, world.actor(who), first=2)
    assert [e["cursor"] for e in events] == expected
    assert all(e["regionCode"].startswith(prefix) for e in events)
    if who == "sup_b":
        assert [e["kind"] for e in events] == ["HOUSEHOLD_REGISTERED", "COMPLAINT_FILED", "COMPLAINT_VERIFIED",
                                               "REFERRAL_CREATED"]


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", "", " 7", "0x10", "1" * 20, "Q2FzZUV2ZW50OjE"])
async def test_garbage_changes_cursor_is_invalid(client: Client, world: World, seed: Seed, cursor: str) -> None:
    out = await execute(client, CHANGES, {"after": cursor}, actor=world.actor("manager"))
    assert error_codes(out) == ["INVALID_CURSOR"]
    assert out["data"] is None


async def test_cursor_past_the_largest_id_is_not_an_internal_error(client: Client, world: World,
                                                                   seed: Seed) -> None:
    out = await execute(client, CHANGES, {"after": "9" * 19}, actor=world.actor("manager"))
    if out["errors"]:
        assert error_codes(out) == ["INVALID_CURSOR"], out["errors"]
    else:
        assert out["data"]["changes"]["events"] == [] and out["data"]["changes"]["hasMore"] is False


# --- errors never leak internals or personal data --------------------------------------------------------------------


def crafted_cursor(ordering: str, values: list[Any]) -> str:
    """A syntactically valid list cursor with values of the wrong type, which the database refuses."""
    raw = json.dumps([ordering, values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def test_unexpected_errors_are_masked(client: Client, world: World, seed: Seed) -> None:
    sup_a = world.actor("sup_a")
    unexpected = [
        (HOUSEHOLDS, {"after": crafted_cursor("newest", [NIK_HEAD])}),
        (HOUSEHOLDS, {"after": crafted_cursor("newest", [{"nik": NIK_HEAD}])}),
        (COMPLAINTS, {"after": crafted_cursor("newest", [NIK_HEAD, "SELECT 1"])}),
        (REFERRALS, {"after": crafted_cursor("newest", [NIK_WIFE])}),
    ]
    for query, variables in unexpected:
        out = await execute(client, query, variables, actor=sup_a)
        assert out["errors"], variables
        for error in out["errors"]:
            assert error["extensions"]["code"] in {"INTERNAL_SERVER_ERROR", "INVALID_CURSOR"}, error
            if error["extensions"]["code"] == "INTERNAL_SERVER_ERROR":
                assert error["message"] == "Unexpected error; reference test.", error
    # expected errors keep their own message and code, still without internals or numbers
    expected: list[tuple[str, dict[str, Any], Actor | None, str]] = [
        (HOUSEHOLDS, {"filter": {"nik": NIK_HEAD}}, world.actor("partner"), "FORBIDDEN"),
        (HOUSEHOLDS, {"first": 0}, sup_a, "INVALID_PAGE_SIZE"),
        (HOUSEHOLDS, {"first": 10**6}, sup_a, "INVALID_PAGE_SIZE"),
        (HOUSEHOLDS, {"filter": {"regionCode": NIK_HEAD}}, sup_a, "INVALID_REGION_CODE"),
        (HOUSEHOLDS, {"after": "not a cursor"}, sup_a, "INVALID_CURSOR"),
        (HOUSEHOLDS, {"after": crafted_cursor("updated", [1, 2])}, sup_a, "INVALID_CURSOR"),
        (COMPLAINTS, {"filter": {"assigneeId": NIK_HEAD}}, sup_a, "INVALID_ID"),
        (REFERRALS, {"filter": {"complaintId": seed.household_a}}, sup_a, "INVALID_ID"),
        (CHANGES, {"after": NIK_HEAD + "9999"}, sup_a, "INVALID_CURSOR"),
        (NODE, {"id": seed.household_a}, None, "UNAUTHENTICATED"),
    ]
    for query, variables, actor, code in expected:
        out = await execute(client, query, variables, actor=actor)
        assert error_codes(out) == [code], (variables, out["errors"])
        assert "Unexpected error" not in out["errors"][0]["message"]
