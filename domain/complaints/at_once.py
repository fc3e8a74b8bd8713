"""Filing a plain complaint in one statement: what :func:`domain.complaints.service.file_complaint` and the
operation's commit (:func:`domain.events.write_events`) write, in one round trip.

A facilitator files a complaint for a household: the common case of intake, and the one that must be fast.
The service takes a round trip per step (claim the idempotency key, look the household up, insert the
complaint and its assignment, then at commit the event, its stamp and the audit entry). Here the same rows
come from one ``INSERT`` chain of data-modifying CTEs, run as its own transaction, so PostgreSQL checks,
writes and commits it at once:

- ``who``: the account (unchanged and active, when the caller only recalled it), else nothing is written;
- ``new``: the household in the actor's area, and the next complaint id;
- ``claimed``: the idempotency key, with that id as its result (``ON CONFLICT DO NOTHING``: a key used before
  writes nothing, and the service answers the replay);
- ``go``: the filing, once the key is claimed, under the event-order lock (:data:`domain.events.EVENT_ORDER_LOCK`);
- ``filed``, ``assigned``, ``written``, ``audited``: read from ``go`` (materialised: the lock is granted before
  they get a row), the complaint (``updated_at`` stamped then, as :func:`domain.events.write_events` stamps),
  its first assignment, the COMPLAINT_FILED event and the operation's CHANGE entry.

Every step reads the one before it, so when any check fails nothing at all is written, and the caller hands
the request to the service, which answers it with its typed error. Only filings the service would make
without a further lookup are taken here: none that names a member, a program or an assignee, none whose
data is refused on its face (:func:`filing_errors`); :func:`statement` returns ``None`` for the others.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from domain.actor import ASSIGNABLE_ROLES, Actor, Op
from domain.complaints.service import FILING, ComplaintData, filed_values, filing_errors
from domain.enums import SECTOR_SLA_DAYS
from domain.events import EVENT_ORDER_LOCK, EventKind
from domain.idempotency import MAX_KEY_LENGTH

#: the new complaint's columns from :func:`domain.complaints.service.filed_values` (``region_code`` comes from the
#: household's row), and the casts of their parameters that are not ``varchar``
_COLUMNS = ("household_id", "kind", "sector", "description", "channel", "priority", "status", "assignee_id",
            "filed_by_id", "sla_started_at", "sla_due_at", "reported_at")
_CASTS = {"household_id": "bigint", "assignee_id": "bigint", "filed_by_id": "bigint", "sla_started_at": "timestamptz",
          "sla_due_at": "timestamptz", "reported_at": "timestamptz", "description": "text"}


@dataclass(frozen=True, slots=True)
class Confirm:
    """The staff row an actor was recalled from: the statement writes only while it is unchanged and active."""

    staff_id: int
    role: str
    username: str
    region_code: str | None
    extra_region_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rows:
    """The rows a filing locks before the event-order lock: the account's and the household's (``FOR KEY SHARE``)
    and, when it has one, its idempotency key's (by inserting it)."""

    staff_id: int
    household_id: int
    key: str | None


@dataclass(frozen=True, slots=True)
class Filing:
    """``WITH`` and its CTEs (``filed`` is the new complaint's row, ``written`` its event's id and region code,
    ``who`` one row when the account was confirmed), the values of its ``$n`` parameters, and the rows it locks."""

    with_: str
    params: list[Any]
    rows: Rows


def statement(actor: Actor, data: ComplaintData, *, idempotency_key: str | None, origin: str | None,
              confirm: Confirm | None, operation: str, now: dt.datetime | None = None) -> Filing | None:
    """The filing as one statement, or ``None`` when the service must file it (see the module's docstring).
    ``operation`` is what the CHANGE entry names (as :class:`domain.events.Change` does)."""
    if not actor.may(Op.FILE_COMPLAINT) or not actor.may(Op.READ) or actor.programs is not None:
        return None
    if data.member_id is not None or data.program_id is not None or data.assignee_id is not None:
        return None
    if idempotency_key is not None and (not idempotency_key.strip() or len(idempotency_key) > MAX_KEY_LENGTH):
        return None
    now = now or dt.datetime.now(dt.UTC)
    if filing_errors(data, now=now):
        return None
    assignee_id = actor.id if actor.role in ASSIGNABLE_ROLES else None
    values = filed_values(actor, data, region_code=None, assignee_id=assignee_id,
                          days=SECTOR_SLA_DAYS[data.sector], now=now)
    params: list[Any] = []

    def p(value: Any, cast: str) -> str:
        params.append(value)
        return f"${len(params)}::{cast}"

    actor_id = p(actor.id, "bigint")
    who = f"SELECT 1 FROM staff WHERE staff.id = {actor_id}"
    if confirm is not None:
        if confirm.staff_id != actor.id:
            return None
        who += (f" AND staff.active AND staff.role = {p(confirm.role, 'varchar')} "
                f"AND staff.username = {p(confirm.username, 'varchar')} "
                f"AND staff.region_code IS NOT DISTINCT FROM {p(confirm.region_code, 'varchar')} "
                f"AND staff.extra_region_codes = {p(list(confirm.extra_region_codes), 'varchar[]')}")
    key = p(idempotency_key, "varchar")
    household = p(values["household_id"], "bigint")
    # the actor's area, as :meth:`domain.actor.Actor.covers` reads it (parameters: one statement text per number
    # of scopes, so PostgreSQL keeps its plan)
    scope = "" if actor.regions is None else " AND (" + (" OR ".join(
        f"households.region_code = {p(code, 'varchar')} OR starts_with(households.region_code, {p(code + '.', 'text')})"
        for code in actor.regions) or "false") + ")"
    bound = {name: household if name == "household_id" else p(values[name], _CASTS.get(name, "varchar"))
             for name in _COLUMNS}
    # the rows the new ones' foreign keys point at (the account, the household, its village) are locked FOR KEY
    # SHARE before the event-order lock, as the service's INSERT checks them before its commit takes that lock:
    # checked at the end of the statement, under the lock, they could wait there for a transaction that holds
    # such a row (e.g. updateHousehold's FOR UPDATE) and waits for the lock itself
    sql = f"""WITH who AS MATERIALIZED ({who} FOR KEY SHARE),
new AS MATERIALIZED (
  SELECT nextval(pg_get_serial_sequence('complaints', 'id')) AS id, households.region_code
  FROM households JOIN regions ON regions.code = households.region_code
  WHERE households.id = {household} AND EXISTS (SELECT FROM who){scope}
  FOR KEY SHARE OF households, regions),
claimed AS (
  INSERT INTO idempotency_keys (actor_id, key, operation, result_id)
  SELECT {actor_id}, {key}, '{FILING}', new.id FROM new WHERE {key} IS NOT NULL
  ON CONFLICT (actor_id, key) DO NOTHING RETURNING result_id),
go AS MATERIALIZED (
  SELECT new.id, new.region_code, pg_advisory_xact_lock({EVENT_ORDER_LOCK}) AS held
  FROM new WHERE {key} IS NULL OR new.id IN (SELECT claimed.result_id FROM claimed)),
filed AS (
  INSERT INTO complaints (id, region_code, updated_at, {", ".join(_COLUMNS)})
  SELECT go.id, go.region_code, clock_timestamp(), {", ".join(bound[name] for name in _COLUMNS)} FROM go
  RETURNING *),
assigned AS (
  INSERT INTO assignments (complaint_id, to_staff_id, by_staff_id, reason)
  SELECT filed.id, filed.assignee_id, filed.filed_by_id, 'filed' FROM filed WHERE filed.assignee_id IS NOT NULL),
written AS (
  INSERT INTO case_events (kind, region_code, household_id, complaint_id, actor_id, data)
  SELECT '{EventKind.COMPLAINT_FILED.value}', filed.region_code, filed.household_id, filed.id, {actor_id},
         jsonb_build_object('status', filed.status, 'sector', filed.sector, 'priority', filed.priority,
                            'assigneeId', filed.assignee_id, 'version', 1)
  FROM filed RETURNING id, region_code),
audited AS (
  INSERT INTO audit_log (actor_id, action, entity_type, detail, origin)
  SELECT {actor_id}, 'CHANGE', 'Operation',
         jsonb_build_object('operation', {p(operation, 'text')},
                            'events', jsonb_agg(written.id ORDER BY written.id)),
         {p(origin, 'varchar')}
  FROM written HAVING count(*) > 0)
"""
    return Filing(with_=sql, params=params, rows=Rows(actor.id, data.household_id, idempotency_key))
