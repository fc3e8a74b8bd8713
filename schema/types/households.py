"""Households, family cards and members. NIK, No. KK, names and addresses are personal data: shown in
full only to roles allowed to see them (each unmasked NIK read is audited), masked for everyone else."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from domain.households.models import FamilyCard as FamilyCardRow
from domain.households.models import Household as HouseholdRow
from domain.households.models import Member as MemberRow
from domain.households.queries import reveal_nik
from domain.privacy import initials
from schema.enums import DtksStatus, NikStatus, Relation, Sex
from schema.relay import Node, to_global_id
from schema.types.reference import Region, Staff
from server.context import Context

if TYPE_CHECKING:
    from schema.types.complaints import Complaint

Info = strawberry.Info[Context, None]


def _sees(info: Info) -> bool:
    actor = info.context.actor
    return actor is not None and actor.sees_personal_data


@strawberry.type(description="A family card (Kartu Keluarga) of the household.")
class FamilyCard(Node):
    _row: strawberry.Private[FamilyCardRow]

    @classmethod
    def from_row(cls, row: FamilyCardRow) -> FamilyCard:
        return cls(id=to_global_id("FamilyCard", row.id), _row=row)

    @strawberry.field(description="No. KK, masked (e.g. `1274**********01`); the full number is never sent.")
    def number_masked(self) -> str:
        return self._row.number_masked


@strawberry.type(description="A member of a household.")
class Member(Node):
    sex: Sex = strawberry.field(description="Sex as on the family card.")
    birth_date: dt.date = strawberry.field(description="Date of birth.")
    relation: Relation = strawberry.field(description="Relation to the head of the household.")
    nik_status: NikStatus = strawberry.field(description="Whether the member has a checked NIK or a placeholder.")
    nik_masked: str | None = strawberry.field(description="NIK with the personal digits hidden, e.g. "
                                              "`1274**********01`; null for placeholders.")
    nik_from_other_region: bool = strawberry.field(
        description="The NIK was issued outside the household's kecamatan (declared at registration).")
    education: str | None = strawberry.field(description="Highest education completed.")
    occupation: str | None = strawberry.field(description="Main occupation.")
    disability: str | None = strawberry.field(description="Disability, if any.")
    chronic_illness: str | None = strawberry.field(description="Chronic illness, if any.")
    programs: list[str] = strawberry.field(description="Codes of the programs the member receives (PKH, BPNT...).")
    version: int = strawberry.field(description="Optimistic-concurrency version.")
    _row: strawberry.Private[MemberRow]

    @classmethod
    def from_row(cls, row: MemberRow) -> Member:
        return cls(id=to_global_id("Member", row.id), sex=Sex(row.sex), birth_date=row.birth_date,
                   relation=Relation(row.relation), nik_status=NikStatus(row.nik_status), nik_masked=row.nik_masked,
                   nik_from_other_region=row.nik_from_other_region, education=row.education,
                   occupation=row.occupation, disability=row.disability, chronic_illness=row.chronic_illness,
                   programs=list(row.programs), version=row.version, _row=row)

    @strawberry.field(description="Full name; initials only for roles without the personal-data grant.")
    def name(self, info: Info) -> str:
        return self._row.name if _sees(info) else initials(self._row.name)

    @strawberry.field(description="The full NIK, for roles allowed to see personal data (the read is audited); "
                      "null otherwise and for placeholders.")
    def nik(self, info: Info) -> str | None:
        if not _sees(info) or self._row.nik_sealed is None:
            return None
        info.context.personal_data_reads.add(self._row.id)
        return reveal_nik(info.context.cipher, self._row)


@strawberry.type(description="A household (rumah tangga) registered in a desa/kelurahan.")
class Household(Node):
    region_code: str = strawberry.field(description="Kemendagri code of the desa/kelurahan.")
    rt: str | None = strawberry.field(description="Rukun tetangga.")
    rw: str | None = strawberry.field(description="Rukun warga.")
    dtks_status: DtksStatus = strawberry.field(description="Status in the national welfare registry (DTKS).")
    indicators: JSON = strawberry.field(
        description="Socio-economic indicators (the 14 poverty criteria), keyed in snake_case.")
    version: int = strawberry.field(description="Optimistic-concurrency version; pass it as `expectedVersion`.")
    created_at: dt.datetime = strawberry.field(description="When the household was registered.")
    updated_at: dt.datetime = strawberry.field(description="When the household last changed.")
    _row: strawberry.Private[HouseholdRow]

    @classmethod
    def from_row(cls, row: HouseholdRow) -> Household:
        return cls(id=to_global_id("Household", row.id), region_code=row.region_code, rt=row.rt, rw=row.rw,
                   dtks_status=DtksStatus(row.dtks_status), indicators=JSON(row.indicators), version=row.version,
                   created_at=row.created_at, updated_at=row.updated_at, _row=row)

    @strawberry.field(description="Street address; null for roles without the personal-data grant.")
    def address(self, info: Info) -> str | None:
        return self._row.address if _sees(info) else None

    @strawberry.field(description="GPS latitude; null for roles without the personal-data grant.")
    def latitude(self, info: Info) -> float | None:
        return self._row.latitude if _sees(info) else None

    @strawberry.field(description="GPS longitude; null for roles without the personal-data grant.")
    def longitude(self, info: Info) -> float | None:
        return self._row.longitude if _sees(info) else None

    @strawberry.field(description="The desa/kelurahan.")
    async def region(self, info: Info) -> Region | None:
        row = await info.context.loaders.region.load(self.region_code)
        return Region.from_row(row) if row else None

    @strawberry.field(description="Family cards (No. KK) of the household.")
    async def family_cards(self, info: Info) -> list[FamilyCard]:
        return [FamilyCard.from_row(r) for r in await info.context.loaders.family_cards_by_household.load(self._row.id)]

    @strawberry.field(description="Members, in order of registration.")
    async def members(self, info: Info) -> list[Member]:
        return [Member.from_row(r) for r in await info.context.loaders.members_by_household.load(self._row.id)]

    @strawberry.field(description="Complaints filed for this household, oldest first.")
    async def complaints(self, info: Info) -> list[Annotated[Complaint, strawberry.lazy("schema.types.complaints")]]:
        from schema.types.complaints import Complaint

        rows = await info.context.loaders.complaints_by_household.load(self._row.id)
        return [Complaint.from_row(r) for r in rows]

    @strawberry.field(description="Who registered the household.")
    async def registered_by(self, info: Info) -> Staff | None:
        if self._row.registered_by_id is None:
            return None
        row = await info.context.loaders.staff.load(self._row.registered_by_id)
        return Staff.from_row(row) if row else None
