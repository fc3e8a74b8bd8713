"""The demo's facilitator simulator: files intake at a gentle, realistic pace so a newcomer opening the
console sees live work. It goes through the same services and unit of work as the API."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random

from sqlalchemy import func, select

from domain import demo_data as dd
from domain.complaints import service as complaints
from domain.enums import Channel, ComplaintKind, Priority, Role, Sector
from domain.errors import DomainError
from domain.events import write_events
from domain.households.models import Household
from domain.staff.models import Staff
from domain.staff.service import actor_of
from server.context import Services

log = logging.getLogger(__name__)


async def file_one(services: Services, rng: random.Random) -> int | None:
    """File one complaint for a random household, as a facilitator of its village; returns its id."""
    async with services.sessionmaker() as session:
        async with session.begin():
            household = (await session.scalars(select(Household).order_by(func.random()).limit(1))).first()
            if household is None:
                return None
            staff = (await session.scalars(select(Staff).where(
                Staff.role == Role.FACILITATOR.value, Staff.region_code == household.region_code,
                Staff.active.is_(True)).limit(1))).first()
            if staff is None:
                return None
            sector = Sector(rng.choice(dd.SECTORS))
            try:
                filed = await complaints.file_complaint(session, actor=actor_of(staff), data=complaints.ComplaintData(
                    household_id=household.id, kind=ComplaintKind.COMPLAINT, sector=sector,
                    description=dd.complaint_description(rng, sector.value), channel=Channel.FACILITATOR_VISIT,
                    priority=rng.choices(list(Priority), weights=(2, 6, 2, 1))[0],
                    reported_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=rng.randint(0, 90))))
            except DomainError:
                return None
            events = await write_events(session)
        await services.publish(events)
        return filed.complaint.id


async def run(services: Services, *, mean_interval: float = 20.0) -> None:
    rng = random.Random()
    while True:
        await asyncio.sleep(rng.expovariate(1 / mean_interval))
        try:
            await file_one(services, rng)
        except Exception:  # the simulator must never take the server down
            log.exception("demo simulator: filing failed")
