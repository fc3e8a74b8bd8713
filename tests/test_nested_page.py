"""A page of households with members, complaints and referrals costs a constant number of SQL statements,
whatever its size (DataLoaders batch every nested field)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.complaints import service as complaints
from domain.enums import Channel, ComplaintKind, DtksStatus, Relation, Sector, Sex
from domain.events import write_events
from domain.households import service as households
from domain.referrals import service as referrals
from server.context import Services
from tests.conftest import DESA_A1, KEC_A, Client, World, nik

PAGE = """
query($first: Int!) {
  households(first: $first) {
    edges { cursor node {
      id regionCode address dtksStatus region { name }
      familyCards { numberMasked }
      members { id name nik nikMasked relation }
      registeredBy { username }
      complaints {
        id status slaState description assignee { username region { name } }
        program { code } member { name }
        referrals { id status program { code name } createdBy { username } }
      }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@contextmanager
def count_statements(connection: AsyncConnection) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sync_engine = connection.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)


async def make_households(services: Services, world: World, n: int, offset: int) -> None:
    fac, sup = world.actor("fac_a1"), world.actor("sup_a")
    async with services.sessionmaker() as session:
        for i in range(offset, offset + n):
            born = dt.date(1970, 1, 1) + dt.timedelta(days=i)
            data = households.HouseholdData(
                region_code=DESA_A1, address=f"Jl. Teuku Umar No. {i}", dtks_status=DtksStatus.REGISTERED,
                family_cards=[f"127401010115{i:04d}"],
                members=[households.MemberData(name=f"Kepala {i}", sex=Sex.MALE, birth_date=born,
                                               relation=Relation.HEAD, nik=nik(KEC_A, born, female=False,
                                                                               serial=i + 1)),
                         households.MemberData(name=f"Anak {i}", sex=Sex.FEMALE, birth_date=born,
                                               relation=Relation.CHILD)])
            h = (await households.register_household(session, actor=fac, cipher=services.cipher, data=data)).household
            c = (await complaints.file_complaint(session, actor=fac, data=complaints.ComplaintData(
                household_id=h.id, kind=ComplaintKind.COMPLAINT, sector=Sector.HEALTH, description="Belum punya KIS",
                channel=Channel.FACILITATOR_VISIT, program_id=world.programs["PBI-JK"].id))).complaint
            c = await complaints.verify_complaint(session, actor=sup, complaint_id=c.id, expected_version=1)
            await referrals.create_referral(session, actor=fac, data=referrals.ReferralData(
                complaint_id=c.id, program_id=world.programs["PBI-JK"].id, consent_given=True))
        await write_events(session)
        await session.commit()


async def test_nested_page_costs_constant_statements(client: Client, world: World, services: Services,
                                                     connection: AsyncConnection) -> None:
    await make_households(services, world, 10, 0)
    with count_statements(connection) as small:
        page10 = await client.ok(PAGE, {"first": 10}, actor=world.actor("sup_a"))
    assert len(page10["households"]["edges"]) == 10
    await make_households(services, world, 90, 10)
    with count_statements(connection) as large:
        page100 = await client.ok(PAGE, {"first": 100}, actor=world.actor("sup_a"))
    edges = page100["households"]["edges"]
    assert len(edges) == 100
    assert all(len(e["node"]["members"]) == 2 and len(e["node"]["complaints"]) == 1 for e in edges)
    assert all(len(e["node"]["complaints"][0]["referrals"]) == 1 for e in edges)
    assert len(small) == len(large), (small, large)
    assert len(large) <= 15
