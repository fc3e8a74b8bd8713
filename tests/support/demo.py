"""A small demo district in a scratch database, for tests that run real servers over it."""

from __future__ import annotations

import asyncio

from domain.crypto import PersonalDataCipher
from domain.demo import seed_demo
from server import db
from server.settings import DEV_PII_KEY


def seed_demo_district(url: str, *, households: int, then: str | None = None) -> None:
    """Seed the demo district with ``households`` households, then run the SQL ``then`` if given."""

    async def seed() -> None:
        engine = db.make_engine(url, pool_size=2)
        await seed_demo(db.make_sessionmaker(engine), cipher=PersonalDataCipher(DEV_PII_KEY),
                        households_count=households)
        if then is not None:
            async with engine.begin() as conn:
                await conn.exec_driver_sql(then)
        await engine.dispose()

    asyncio.run(seed())
