"""Regions, programs and staff."""

from __future__ import annotations

import datetime as dt

import strawberry

from domain.programs import Program as ProgramRow
from domain.regions import Region as RegionRow
from domain.staff.models import Staff as StaffRow
from schema.enums import RegionLevel, Role, Sector
from schema.relay import Node, to_global_id
from server.context import Context

Info = strawberry.Info[Context, None]


@strawberry.type(description="A province, kabupaten/kota, kecamatan or desa/kelurahan, by Kemendagri code.")
class Region(Node):
    code: str = strawberry.field(description="Kemendagri code, e.g. `12.72.01.1001`.")
    name: str = strawberry.field(description="Official name.")
    level: RegionLevel = strawberry.field(description="Province, kabupaten/kota, kecamatan or desa/kelurahan.")
    parent_code: str | None = strawberry.field(description="Code of the region this one lies in.")

    @classmethod
    def from_row(cls, row: RegionRow) -> Region:
        return cls(id=to_global_id("Region", row.code), code=row.code, name=row.name,
                   level=RegionLevel(row.level), parent_code=row.parent_code)

    @strawberry.field(description="The regions directly below this one that you may see.")
    async def children(self, info: Info) -> list[Region]:
        rows = await info.context.loaders.region_children.load(self.code)
        actor = info.context.require_actor()
        return [Region.from_row(r) for r in rows if actor.sees_region(r.code)]


@strawberry.type(description="A program or service a complaint can be referred to.")
class Program(Node):
    code: str = strawberry.field(description="Short code, e.g. `PKH`, `PBI-JK`, `KIP`.")
    name: str = strawberry.field(description="Name in Bahasa Indonesia.")
    sector: Sector = strawberry.field(description="Sector the program serves.")
    owner_agency: str = strawberry.field(description="Agency that runs the program and receives referrals.")
    sla_days: int = strawberry.field(description="Default service-level time for complaints about it, in days.")
    active: bool = strawberry.field(description="Whether new complaints and referrals may name it.")

    @classmethod
    def from_row(cls, row: ProgramRow) -> Program:
        return cls(id=to_global_id("Program", row.id), code=row.code, name=row.name, sector=Sector(row.sector),
                   owner_agency=row.owner_agency, sla_days=row.sla_days, active=row.active)


@strawberry.type(description="A staff member: facilitator, Puskesos officer, supervisor, manager or admin.")
class Staff(Node):
    username: str = strawberry.field(description="Login name.")
    full_name: str = strawberry.field(description="Name shown to colleagues.")
    role: Role = strawberry.field(description="What this person may do.")
    region_code: str | None = strawberry.field(description="Home region: root of the main subtree this person "
                                               "works in (null for national admins).")
    region_codes: list[str] = strawberry.field(description="Roots of every region subtree this person covers.")
    active: bool = strawberry.field(description="Inactive accounts cannot log in or be assigned cases.")
    created_at: dt.datetime = strawberry.field(description="When the account was created.")
    _supervisor_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: StaffRow) -> Staff:
        return cls(id=to_global_id("Staff", row.id), username=row.username, full_name=row.full_name,
                   role=Role(row.role), region_code=row.region_code,
                   region_codes=[row.region_code, *row.extra_region_codes] if row.region_code else [],
                   active=row.active,
                   created_at=row.created_at, _supervisor_id=row.supervisor_id)

    @strawberry.field(description="The region this person works in.")
    async def region(self, info: Info) -> Region | None:
        if self.region_code is None:
            return None
        row = await info.context.loaders.region.load(self.region_code)
        return Region.from_row(row) if row else None

    @strawberry.field(description="This person's supervisor, if any.")
    async def supervisor(self, info: Info) -> Staff | None:
        if self._supervisor_id is None:
            return None
        row = await info.context.loaders.staff.load(self._supervisor_id)
        return Staff.from_row(row) if row else None
