"""The append-only case event log, the audit log and idempotency records.

Every change appends its case events in the same transaction as the change. Services queue them on
the session (:func:`append_event`); the owner of the transaction writes them last, just before it
commits (:func:`write_events`), under a transaction-level advisory lock. So event ids are handed out
in commit order: a transaction can only take ids after the previous holder of the lock has committed
and become visible (PostgreSQL releases locks after it marks the transaction committed). A reader
that has seen event N has therefore seen every event below N that will ever exist, and "resume after
cursor N" can never miss an event that committed late. The lock is held only for one INSERT and the
COMMIT. The boundary publishes the written ids once the transaction has committed, never before.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Select,
    String,
    Text,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain.actor import Actor, Op
from domain.base import Base
from domain.enums import check_constraint
from domain.errors import DomainError, ValidationFailed
from domain.numbers import cursor

PENDING_EVENTS = "rujuk.pending_events"


class EventKind(StrEnum):
    HOUSEHOLD_REGISTERED = "HOUSEHOLD_REGISTERED"
    HOUSEHOLD_UPDATED = "HOUSEHOLD_UPDATED"
    MEMBER_ADDED = "MEMBER_ADDED"
    COMPLAINT_FILED = "COMPLAINT_FILED"
    COMPLAINT_VERIFIED = "COMPLAINT_VERIFIED"
    COMPLAINT_RETURNED = "COMPLAINT_RETURNED"
    COMPLAINT_RESUBMITTED = "COMPLAINT_RESUBMITTED"
    COMPLAINT_REJECTED = "COMPLAINT_REJECTED"
    COMPLAINT_STARTED = "COMPLAINT_STARTED"
    COMPLAINT_REFERRED = "COMPLAINT_REFERRED"
    COMPLAINT_RESOLVED = "COMPLAINT_RESOLVED"
    COMPLAINT_REOPENED = "COMPLAINT_REOPENED"
    COMPLAINT_REASSIGNED = "COMPLAINT_REASSIGNED"
    REFERRAL_CREATED = "REFERRAL_CREATED"
    REFERRAL_SENT = "REFERRAL_SENT"
    REFERRAL_ACCEPTED = "REFERRAL_ACCEPTED"
    REFERRAL_REJECTED = "REFERRAL_REJECTED"
    REFERRAL_REVOKED = "REFERRAL_REVOKED"
    REFERRAL_COMPLETED = "REFERRAL_COMPLETED"


class CaseEvent(Base):
    __tablename__ = "case_events"
    __table_args__ = (
        CheckConstraint(check_constraint("kind", EventKind), name="kind"),
        Index("ix_case_events_region_code_pattern", "region_code", "id",
              postgresql_ops={"region_code": "text_pattern_ops"}),
        Index("ix_case_events_complaint", "complaint_id", "id"),
        Index("ix_case_events_household", "household_id", "id"),
    )

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    kind: Mapped[str] = mapped_column(String(40))
    region_code: Mapped[str] = mapped_column(String(13))
    household_id: Mapped[int | None] = mapped_column()
    complaint_id: Mapped[int | None] = mapped_column()
    referral_id: Mapped[int | None] = mapped_column()
    actor_id: Mapped[int | None] = mapped_column()
    #: small, personal-data-free facts: statuses, assignee ids, versions, reasons' presence
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[int | None] = mapped_column()
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    origin: Mapped[str | None] = mapped_column(String(64))


class IdempotencyKey(Base):
    """The first result of an intake mutation sent with a client-generated key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (PrimaryKeyConstraint("actor_id", "key"),)

    actor_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    key: Mapped[str] = mapped_column(String(100))
    operation: Mapped[str] = mapped_column(String(40))
    result_id: Mapped[int | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("1"))


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """A case event queued on the session, written by :func:`write_events`."""

    kind: str
    region_code: str
    household_id: int | None
    complaint_id: int | None
    referral_id: int | None
    actor_id: int | None
    data: dict[str, Any]


async def append_event(
    session: AsyncSession,
    *,
    kind: EventKind,
    actor: Actor | None,
    region_code: str,
    household_id: int | None = None,
    complaint_id: int | None = None,
    referral_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> PendingEvent:
    event = PendingEvent(kind=kind.value, region_code=region_code, household_id=household_id,
                         complaint_id=complaint_id, referral_id=referral_id, actor_id=actor.id if actor else None,
                         data=data or {})
    session.info.setdefault(PENDING_EVENTS, []).append(event)
    return event


async def audit(
    session: AsyncSession,
    *,
    actor: Actor | None,
    action: str,
    entity_type: str,
    entity_id: int | None,
    detail: dict[str, Any] | None = None,
    origin: str | None = None,
) -> None:
    session.add(AuditEntry(actor_id=actor.id if actor else None, action=action, entity_type=entity_type,
                           entity_id=entity_id, detail=detail or {}, origin=origin))


EVENT_ORDER_LOCK = 7215372916


@dataclass(frozen=True, slots=True)
class Change:
    """The operation whose events are written: recorded with their ids as one ``CHANGE`` entry of the audit log."""

    operation: str
    actor: Actor | None
    origin: str | None


async def write_events(session: AsyncSession, *, change: Change | None = None) -> list[tuple[int, str]]:
    """Write the queued events under the event-order lock; call last, right before COMMIT. Returns the
    (event id, region code) pairs to publish after the commit, in id order.

    One statement: the INSERT of all the events takes the lock itself (every part of it joins the one-row CTE
    that takes it), and its data-modifying CTEs stamp ``updated_at`` on the rows the events are about
    (:func:`_stamps`) and, given ``change``, write its audit entry. No row is written, no id drawn and no stamp
    taken before the lock is granted, so ids and stamps follow commit order; and the lock is held for that one
    statement's answer and the COMMIT, not for a round trip of its own before them."""
    events: list[PendingEvent] = session.info.pop(PENDING_EVENTS, [])
    if not events:
        return []
    await session.flush()  # rows the ORM still holds go first: the stamps must come after every change
    stamps = _stamps(events)
    params: dict[str, Any] = {
        "kinds": [e.kind for e in events], "regions": [e.region_code for e in events],
        "households": [e.household_id for e in events], "complaints": [e.complaint_id for e in events],
        "referrals": [e.referral_id for e in events], "actors": [e.actor_id for e in events],
        "data": [json.dumps(e.data) for e in events],
        **{f"{table}_ids": ids for table, ids in stamps.items()},
    }
    if change is not None:
        params |= {"operation": change.operation, "origin": change.origin,
                   "actor_id": change.actor.id if change.actor else None}
    stmt = _insert_events(tuple(stamps), audited=change is not None)
    return [(row.id, row.region_code) for row in await session.execute(stmt, params)]


_EVENTS = Base.metadata.tables[CaseEvent.__tablename__]
_AUDIT = Base.metadata.tables[AuditEntry.__tablename__]


@functools.cache
def _insert_events(stamped: tuple[str, ...], *, audited: bool) -> Any:
    """The statement that writes the events (as arrays, one element per event), stamps the rows of the ``stamped``
    tables and, when ``audited``, writes the CHANGE entry. Built once per shape: building a statement with CTEs
    costs more than running it.

    The lock is a MATERIALIZED one-row CTE (evaluated once, never inlined). The events' SELECT joins it, so it
    produces no row, and the INSERT draws no id from the sequence, before the lock is granted; each stamping
    UPDATE has it as a one-time condition (an InitPlan, evaluated before the first row is read), so no row is
    stamped before the lock either."""
    lock = func.pg_advisory_xact_lock(literal_column(str(EVENT_ORDER_LOCK))).table_valued().alias("lock")
    ordered = select(true().label("held")).select_from(lock).cte("ordered").prefix_with("MATERIALIZED")
    rows = func.unnest(
        bindparam("kinds", type_=ARRAY(String)), bindparam("regions", type_=ARRAY(String)),
        bindparam("households", type_=ARRAY(BigInteger)), bindparam("complaints", type_=ARRAY(BigInteger)),
        bindparam("referrals", type_=ARRAY(BigInteger)), bindparam("actors", type_=ARRAY(BigInteger)),
        bindparam("data", type_=ARRAY(Text)),
    ).table_valued("kind", "region_code", "household_id", "complaint_id", "referral_id", "actor_id", "data",
                   with_ordinality="n").render_derived()
    written = (
        insert(_EVENTS)
        .from_select(["kind", "region_code", "household_id", "complaint_id", "referral_id", "actor_id", "data"],
                     select(rows.c.kind, rows.c.region_code, rows.c.household_id, rows.c.complaint_id,
                            rows.c.referral_id, rows.c.actor_id, cast(rows.c.data, JSONB))
                     .select_from(rows).join(ordered, ordered.c.held).order_by(rows.c.n))
        .returning(_EVENTS.c.id, _EVENTS.c.region_code)
        .cte("written")
    )
    stmt = select(written.c.id, written.c.region_code).order_by(written.c.id)
    for name in stamped:
        table = Base.metadata.tables[name]
        stmt = stmt.add_cte(update(table).where(table.c.id == any_(bindparam(f"{name}_ids", type_=ARRAY(BigInteger))))
                            .where(select(ordered.c.held).scalar_subquery())  # after the lock
                            .values(updated_at=func.clock_timestamp()).cte(f"stamp_{name}"))
    if audited:
        stmt = stmt.add_cte(insert(_AUDIT).from_select(
            ["actor_id", "action", "entity_type", "detail", "origin"],
            select(bindparam("actor_id", type_=BigInteger), literal("CHANGE"), literal("Operation"),
                   func.jsonb_build_object(literal("operation"), bindparam("operation", type_=String),
                                           literal("events"),
                                           func.jsonb_agg(aggregate_order_by(written.c.id, written.c.id))),
                   bindparam("origin", type_=String)).select_from(written)).cte("audited"))
    return stmt


def _stamps(events: list[PendingEvent]) -> dict[str, list[int]]:
    """The rows whose ``updated_at`` the events stamp, by table. Taken under the event-order lock, such times follow
    commit order like event ids, so a partner pulling ``updatedAfter`` its last seen time can never miss a change
    that committed late (``now()`` is the transaction's start, which can be much earlier)."""
    households: set[int] = set()
    complaints: set[int] = set()
    referrals: set[int] = set()
    for e in events:
        if e.kind.startswith(("HOUSEHOLD_", "MEMBER_")) and e.household_id is not None:
            households.add(e.household_id)
        elif e.kind.startswith("COMPLAINT_") and e.complaint_id is not None:
            complaints.add(e.complaint_id)
        elif e.kind.startswith("REFERRAL_") and e.referral_id is not None:
            referrals.add(e.referral_id)
    touched = {"households": households, "complaints": complaints, "referrals": referrals}
    return {table: sorted(ids) for table, ids in touched.items() if ids}


def scoped_events(stmt: Any, actor: Actor) -> Any:
    """Events in the actor's regions, and, for a key limited to programs, only those of its complaints."""
    stmt = actor.restrict(stmt, CaseEvent.region_code)
    if actor.programs is not None:
        from domain.complaints.models import Complaint
        from domain.complaints.queries import in_programs

        stmt = stmt.where(or_(CaseEvent.complaint_id.is_(None),
                              CaseEvent.complaint_id.in_(select(Complaint.id).where(in_programs(actor.programs)))))
    return stmt


def changes_statement(actor: Actor, *, after: str | None, first: int,
                      until: int | None = None) -> tuple[Select[Any], int]:
    """The events in the actor's scope after cursor ``after`` (up to ``until``), in id order, one more than
    ``first`` (whether more follow); and the position the cursor stands for."""
    actor.require(Op.READ)
    start = 0
    if after is not None:
        parsed = cursor(after)
        if parsed is None:
            raise ValidationFailed([DomainError("not a cursor of the event log", field="after",
                                                code="INVALID_CURSOR")])
        start = parsed
    stmt = select(CaseEvent).where(CaseEvent.id > start).order_by(CaseEvent.id).limit(first + 1)
    if until is not None:
        stmt = stmt.where(CaseEvent.id <= until)
    return scoped_events(stmt, actor), start


async def read_changes(session: AsyncSession, *, actor: Actor, after: str | None, first: int,
                       until: int | None = None) -> tuple[list[CaseEvent], bool, str]:
    """Events in the actor's scope after cursor ``after`` (and up to ``until``) in cursor order; ids are
    handed out in commit order (see the module docstring), so resuming after the returned cursor never
    skips an event."""

    stmt, start = changes_statement(actor, after=after, first=first, until=until)
    rows = list(await session.scalars(stmt))
    has_more = len(rows) > first
    rows = rows[:first]
    return rows, has_more, str(rows[-1].id if rows else start)


async def latest_event_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(CaseEvent.id), 0))) or 0)
