"""Filing plain complaints in one statement: what :func:`domain.complaints.service.file_complaint` and the
operation's commit (:func:`domain.events.write_events`) write, in one round trip, for one filing or several.

A facilitator files a complaint for a household: the common case of intake, and the one that must be fast.
The service takes a round trip per step (claim the idempotency key, look the household up, insert the
complaint and its assignment, then at commit the event, its stamp and the audit entry). Here the same rows
come from one ``INSERT`` chain of data-modifying CTEs over a ``VALUES`` list of filings (:func:`together`; the
filings a process receives together, :mod:`server.filing_batches`), run as its own transaction, so PostgreSQL
checks, writes and commits them at once:

- ``given``: each filing's values (:func:`given`) and its place ``ord`` in the list;
- ``accounts``, ``who``: the accounts, locked in id order; the filings whose account is unchanged and active
  (when the caller only recalled it);
- ``new``: their households in the actor's area, locked in id order, and the next complaint ids;
- ``claimed``: the idempotency keys (in key order), with those ids as their results (``ON CONFLICT DO NOTHING``:
  a key used before, even by an earlier filing of the list, writes nothing, and the service answers the replay);
- ``locked``, ``go``: once every account and household is locked and every key claimed (it reads all of them),
  the event-order lock (:data:`domain.events.EVENT_ORDER_LOCK`), then the filings to make;
- ``filed``, ``assigned``, ``written``, ``audited``: read from ``go`` (materialised: the lock is granted before
  they get a row), the complaints (``updated_at`` stamped then, as :func:`domain.events.write_events` stamps),
  their first assignments, the COMPLAINT_FILED events (ids in stamp order) and each filing's CHANGE entry.

Every step of a filing reads the one before it, so when any of its checks fails nothing of it is written, and
the caller hands that request to the service, which answers it with its typed error. Only filings the service
would make without a further lookup are taken here: none that names a member, a program or an assignee, none
whose data is refused on its face (:func:`filing_errors`); :func:`given` returns ``None`` for the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.actor import ASSIGNABLE_ROLES, Actor, Op
from domain.complaints.service import FILING, ComplaintData, filed_values, filing_errors
from domain.enums import SECTOR_SLA_DAYS
from domain.events import EVENT_ORDER_LOCK, EventKind
from domain.idempotency import MAX_KEY_LENGTH


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
class Given:
    """One filing's values, in the order of :data:`_GIVEN`, and the rows it locks."""

    values: tuple[Any, ...]
    rows: Rows


@dataclass(frozen=True, slots=True)
class Filing:
    """``WITH`` and its CTEs for one or more filings (``given`` their values, with ``ord`` their place in the
    list; ``who`` the places whose account is unchanged, ``go`` the places filed, with the new complaint's id;
    ``filed`` the new complaints' rows, ``written`` their events' ids, complaint ids and region codes), and the
    values of its ``$n`` parameters."""

    with_: str
    params: list[Any]


#: a filing's values (:class:`Given`) and their types: the account, the one it is to be confirmed against
#: (``confirm``: whether it is), the key, the household, the actor's area (``NULL``: the whole country), the new
#: complaint's columns (:func:`domain.complaints.service.filed_values`; ``region_code`` comes from the household's
#: row) and what the CHANGE entry records
_COLUMNS = ("household_id", "kind", "sector", "description", "channel", "priority", "status", "assignee_id",
            "filed_by_id", "sla_started_at", "sla_due_at", "reported_at")
_CASTS = {"household_id": "bigint", "assignee_id": "bigint", "filed_by_id": "bigint", "sla_started_at": "timestamptz",
          "sla_due_at": "timestamptz", "reported_at": "timestamptz", "description": "text"}
_GIVEN = (("actor_id", "bigint"), ("confirm", "boolean"), ("confirm_role", "varchar"), ("confirm_username", "varchar"),
          ("confirm_region", "varchar"), ("confirm_extra", "varchar[]"), ("key", "varchar"), ("scope", "text[]"),
          *((name, _CASTS.get(name, "varchar")) for name in _COLUMNS), ("origin", "varchar"), ("operation", "text"))


def given(actor: Actor, data: ComplaintData, *, idempotency_key: str | None, origin: str | None,
          confirm: Confirm | None, operation: str, now: dt.datetime | None = None) -> Given | None:
    """The filing's values, or ``None`` when the service must file it (see the module's docstring).
    ``operation`` is what the CHANGE entry names (as :class:`domain.events.Change` does)."""
    if not actor.may(Op.FILE_COMPLAINT) or not actor.may(Op.READ) or actor.programs is not None:
        return None
    if data.member_id is not None or data.program_id is not None or data.assignee_id is not None:
        return None
    if idempotency_key is not None and (not idempotency_key.strip() or len(idempotency_key) > MAX_KEY_LENGTH):
        return None
    if confirm is not None and confirm.staff_id != actor.id:
        return None
    now = now or dt.datetime.now(dt.UTC)
    if filing_errors(data, now=now):
        return None
    assignee_id = actor.id if actor.role in ASSIGNABLE_ROLES else None
    columns = filed_values(actor, data, region_code=None, assignee_id=assignee_id,
                           days=SECTOR_SLA_DAYS[data.sector], now=now)
    checked = (confirm.role, confirm.username, confirm.region_code, list(confirm.extra_region_codes)) \
        if confirm is not None else (None, None, None, None)
    values = (actor.id, confirm is not None, *checked, idempotency_key,
              None if actor.regions is None else list(actor.regions), *(columns[name] for name in _COLUMNS),
              origin, operation)
    return Given(values=values, rows=Rows(actor.id, data.household_id, idempotency_key))


def together(filings: Sequence[Given]) -> Filing:
    """The filings as one statement (see the module's docstring). Its text depends only on their number."""
    params: list[Any] = []
    rows = []
    for place, filing in enumerate(filings):
        cells = [str(place)]
        for value, (_, cast) in zip(filing.values, _GIVEN, strict=True):
            params.append(value)
            cells.append(f"${len(params)}::{cast}")
        rows.append(f"({', '.join(cells)})")
    names = ", ".join(name for name, _ in _GIVEN)
    # the rows the new ones' foreign keys point at (the accounts, the households, their villages) are locked FOR KEY
    # SHARE before the event-order lock, as the service's INSERT checks them before its commit takes that lock:
    # checked at the end of the statement, under the lock, they could wait there for a transaction that holds
    # such a row (e.g. updateHousehold's FOR UPDATE) and waits for the lock itself
    sql = f"""WITH given (ord, {names}) AS MATERIALIZED (VALUES {", ".join(rows)}),
accounts AS MATERIALIZED (
  SELECT staff.id, staff.active, staff.role, staff.username, staff.region_code, staff.extra_region_codes FROM staff
  WHERE staff.id IN (SELECT given.actor_id FROM given) ORDER BY staff.id FOR KEY SHARE),
who AS MATERIALIZED (
  SELECT given.ord FROM given JOIN accounts ON accounts.id = given.actor_id
  WHERE NOT given.confirm OR (accounts.active AND accounts.role = given.confirm_role
        AND accounts.username = given.confirm_username
        AND accounts.region_code IS NOT DISTINCT FROM given.confirm_region
        AND accounts.extra_region_codes = given.confirm_extra)),
new AS MATERIALIZED (
  SELECT given.ord, nextval(pg_get_serial_sequence('complaints', 'id')) AS id, households.region_code
  FROM given JOIN households ON households.id = given.household_id JOIN regions ON regions.code = households.region_code
  WHERE given.ord IN (SELECT who.ord FROM who)
    AND (given.scope IS NULL OR EXISTS (SELECT FROM unnest(given.scope) AS area (code)
         WHERE households.region_code = area.code OR starts_with(households.region_code, area.code || '.')))
  ORDER BY households.id FOR KEY SHARE OF households, regions),
claimed AS (
  INSERT INTO idempotency_keys (actor_id, key, operation, result_id)
  SELECT given.actor_id, given.key, '{FILING}', new.id FROM new JOIN given ON given.ord = new.ord
  WHERE given.key IS NOT NULL ORDER BY given.actor_id, given.key
  ON CONFLICT (actor_id, key) DO NOTHING RETURNING result_id),
locked AS MATERIALIZED (
  SELECT pg_advisory_xact_lock({EVENT_ORDER_LOCK}) AS held
  FROM (SELECT count(*) FROM accounts) AS a, (SELECT count(*) FROM new) AS n, (SELECT count(*) FROM claimed) AS c),
go AS MATERIALIZED (
  SELECT new.ord, new.id, new.region_code, locked.held FROM new JOIN given ON given.ord = new.ord, locked
  WHERE given.key IS NULL OR new.id IN (SELECT claimed.result_id FROM claimed)),
filed AS (
  INSERT INTO complaints (id, region_code, updated_at, {", ".join(_COLUMNS)})
  SELECT go.id, go.region_code, clock_timestamp(), {", ".join(f"given.{name}" for name in _COLUMNS)}
  FROM go JOIN given ON given.ord = go.ord ORDER BY go.ord
  RETURNING *),
assigned AS (
  INSERT INTO assignments (complaint_id, to_staff_id, by_staff_id, reason)
  SELECT filed.id, filed.assignee_id, filed.filed_by_id, 'filed' FROM filed WHERE filed.assignee_id IS NOT NULL),
written AS (
  INSERT INTO case_events (kind, region_code, household_id, complaint_id, actor_id, data)
  SELECT '{EventKind.COMPLAINT_FILED.value}', filed.region_code, filed.household_id, filed.id, filed.filed_by_id,
         jsonb_build_object('status', filed.status, 'sector', filed.sector, 'priority', filed.priority,
                            'assigneeId', filed.assignee_id, 'version', 1)
  FROM filed ORDER BY filed.updated_at, filed.id RETURNING id, complaint_id, region_code),
audited AS (
  INSERT INTO audit_log (actor_id, action, entity_type, detail, origin)
  SELECT given.actor_id, 'CHANGE', 'Operation',
         jsonb_build_object('operation', given.operation, 'events', jsonb_build_array(written.id)), given.origin
  FROM written JOIN go ON go.id = written.complaint_id JOIN given ON given.ord = go.ord ORDER BY written.id)
"""
    return Filing(with_=sql, params=params)
