"""Compiled reads: a query over the hot list shapes answered by one SQL statement in which PostgreSQL builds
the whole response as JSON, instead of resolving and serialising it field by field in Python.

A query is compiled when every field it selects is one this module knows how to produce in SQL exactly as the
resolvers produce it: the root connections ``households``, ``complaints`` and ``referrals`` with their
filters, orderings, cursors, ``pageInfo`` and ``totalCount``; the partners' event feed ``changes``; the
supervisors' ``workload`` board; the stored fields of households, members, family cards, complaints (with
``slaState``), referrals, case events and staff; and the nested lists ``Household.members``,
``Household.familyCards``, ``Household.complaints``, ``Complaint.referrals`` and ``Complaint.household``.
Anything else (a directive, a field that resolves through another loader, an unmasked NIK, initials of a
name for a role without the personal-data grant, the same type twice on one path) makes :func:`compile_`
raise :class:`NotCompilable`, and the operation runs through the ordinary resolvers, which give the same
answer. Scope, filters and orderings come from the same domain functions the resolvers call, so the two
paths cannot disagree about which rows an actor sees; ``tests/test_compiled_reads.py`` compares them.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    visit,
)
from graphql.execution.values import VariableValues, get_argument_values
from sqlalchemy import ClauseElement, Select, func, literal_column, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.types import DateTime
from strawberry.types.arguments import convert_arguments

from domain.actor import Actor
from domain.base import Base
from domain.complaints import at_once
from domain.complaints import queries as complaints
from domain.complaints.models import Complaint
from domain.crypto import PersonalDataCipher
from domain.events import CaseEvent as CaseEventRow
from domain.events import changes_statement
from domain.households import queries as households
from domain.households.models import Household
from domain.paging import Ordering, check_first, cursor_parameter, decode_cursor, keyset
from domain.referrals import queries as referrals
from domain.referrals.models import Referral
from domain.sqljson import Ascii, JSONText, b64url, global_id, iso, json_list, json_literal, obj

#: fields per object (a bound on the SQL text a document can make)
MAX_KEYS = 50


class NotCompilable(Exception):
    """The operation selects something this module does not produce; the resolvers answer it."""


class Declined(Exception):
    """This request (not its document) is one the resolvers answer: e.g. a filing that names an assignee."""


@dataclass(slots=True)
class Selected:
    """One response key of a selection set: the field it names and every node that asked for it (merged)."""

    key: str
    name: str
    nodes: list[FieldNode] = field(default_factory=list)


@dataclass(slots=True)
class Request:
    """What the statement needs from the request: the schema, the operation's fragments and variables, who
    asks, and the page limits."""

    schema: GraphQLSchema
    strawberry_schema: Any
    fragments: dict[str, FragmentDefinitionNode]
    variables: VariableValues
    actor: Actor
    cipher: PersonalDataCipher
    default_page: int
    max_page: int
    #: node SQL already built for this document, visibility and scope (owned by the caller, bounded there)
    cache: MutableMapping[tuple[Any, ...], str] = field(default_factory=dict)
    #: the query text and operation name, part of the cache key
    query_key: tuple[str, str | None] = ("", None)
    #: the staff row the actor was made from (id, role, username, region code, extra region codes), when the
    #: statement itself must confirm it is unchanged and active
    confirm: tuple[int, str, str, str | None, tuple[str, ...]] | None = None
    #: the cursors given by variables found while compiling (each variable used once in the document only)
    cursors: list[Cursor] = field(default_factory=list)
    #: how many times the document uses each variable
    uses: Counter[str] = field(default_factory=Counter)


def _collect(request: Request, type_: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode],
             into: dict[str, Selected] | None = None) -> list[Selected]:
    """The fields of ``selection_sets`` on ``type_`` by response key, in order, fragments inlined."""
    out = into if into is not None else {}
    for selection_set in selection_sets:
        for node in selection_set.selections:
            if node.directives:
                raise NotCompilable("directive")
            if isinstance(node, FieldNode):
                key = node.alias.value if node.alias else node.name.value
                entry = out.setdefault(key, Selected(key=key, name=node.name.value))
                entry.nodes.append(node)
            elif isinstance(node, InlineFragmentNode):
                if node.type_condition is not None and not _applies(request, node.type_condition.name.value, type_):
                    continue
                _collect(request, type_, [node.selection_set], out)
            elif isinstance(node, FragmentSpreadNode):
                fragment = request.fragments.get(node.name.value)
                if fragment is None:
                    raise NotCompilable("unknown fragment")
                if _applies(request, fragment.type_condition.name.value, type_):
                    _collect(request, type_, [fragment.selection_set], out)
    if len(out) > MAX_KEYS:
        raise NotCompilable("too many fields for one object")
    return list(out.values())


def _applies(request: Request, condition: str, type_: GraphQLObjectType) -> bool:
    if condition == type_.name:
        return True
    return any(interface.name == condition for interface in type_.interfaces)


def _children(request: Request, parent: GraphQLObjectType, selected: Selected) -> tuple[GraphQLObjectType,
                                                                                        list[Selected]]:
    field_def = parent.fields[selected.name]
    child = get_named_type(field_def.type)
    if not isinstance(child, GraphQLObjectType):
        raise NotCompilable("abstract type")
    return child, _collect(request, child, [n.selection_set for n in selected.nodes if n.selection_set])


def _arguments(request: Request, parent: GraphQLObjectType, selected: Selected) -> dict[str, Any]:
    """The field's arguments as the resolver receives them (strawberry inputs, python names)."""
    field_def = parent.fields[selected.name]
    raw = get_argument_values(field_def, selected.nodes[0], request.variables)
    definition = field_def.extensions.get("strawberry-definition")
    if definition is None:
        raise NotCompilable("not a strawberry field")
    flat = _flat_arguments(field_def, definition, request.strawberry_schema.config.name_converter)
    if flat is not None:
        return {python_name: None if raw.get(name) is None else input_class(**{
                    fields[key]: value for key, value in raw[name].items()})
                for python_name, (name, input_class, fields) in flat.items() if name in raw}
    return dict(convert_arguments(raw, definition.arguments, scalar_registry=request.strawberry_schema
                                  .schema_converter.scalar_registry, config=request.strawberry_schema.config))


#: per field, when every argument is an input object of scalars and enums only: for each argument (by its python
#: name) its GraphQL name, its strawberry class and its fields' python names by GraphQL name; else ``None``
_FLAT: dict[int, tuple[GraphQLField, dict[str, tuple[str, type, dict[str, str]]] | None]] = {}


def _flat_arguments(field_def: GraphQLField, definition: Any,
                    names: Any) -> dict[str, tuple[str, type, dict[str, str]]] | None:
    """graphql-core has already coerced such arguments (enums to their members, scalars parsed): strawberry's
    :func:`convert_arguments` would only rename their keys and build the class, and spends most of a filing's
    Python time resolving annotations to do it; this builds them directly."""
    known = _FLAT.get(id(field_def))
    if known is not None and known[0] is field_def:
        return known[1]
    flat: dict[str, tuple[str, type, dict[str, str]]] | None = {}
    for argument in definition.arguments:
        name = names.get_graphql_name(argument)
        graphql_type = get_nullable_type(field_def.args[name].type)
        input_class = argument.type if isinstance(argument.type, type) else None
        input_definition = getattr(input_class, "__strawberry_definition__", None)
        if input_class is None or input_definition is None or not isinstance(graphql_type, GraphQLInputObjectType) \
                or not all(isinstance(get_nullable_type(f.type), GraphQLScalarType | GraphQLEnumType)
                           for f in graphql_type.fields.values()):
            flat = None
            break
        assert flat is not None
        flat[argument.python_name] = (name, input_class, {names.get_graphql_name(f): f.python_name
                                                          for f in input_definition.fields})
    _FLAT[id(field_def)] = (field_def, flat)
    return flat


# --- SQL text --------------------------------------------------------------------------------------------------
# The JSON layer is written as SQL text (it holds no parameters: keys and fixed strings only), built once per
# document, visibility and scope and then reused; the parts that carry the request's values (filters, cursor,
# page size) are SQLAlchemy statements from the domain, compiled per request with positional parameters.

DIALECT: Any = asyncpg_dialect()  # type: ignore[no-untyped-call]
_PARAM = re.compile(r"\$(\d+)")


def cursor(ordering: Ordering, table: str) -> str:
    """The row's cursor exactly as :func:`domain.paging.encode_cursor` writes it (columns of ``table``)."""
    parts = []
    for column in ordering.columns:
        name = f"{table}.{column.key}"
        parts.append(f"""'{{"t":"' || {iso(name)} || '"}}'""" if isinstance(column.type, DateTime) else
                     f"{name}::text")
    inner = " || ',' || ".join(parts)
    return b64url(f"""'["{ordering.name}",[' || {inner} || ']]'""")


def _sort(ordering: Ordering, table: str, *, reverse: bool = False) -> str:
    direction = "DESC" if ordering.descending != reverse else "ASC"
    return ", ".join(f"{table}.{column.key} {direction}" for column in ordering.columns)


#: compiled forms of the parameterised parts, by SQLAlchemy's cache key (the values are not part of it)
_COMPILED: OrderedDict[Any, Any] = OrderedDict()
_COMPILED_SIZE = 512


def bind(statement: ClauseElement, params: list[Any], slots: dict[str, int] | None = None) -> str:
    """``statement`` as SQL whose parameters continue the numbering of ``params`` (their values appended).
    The compiled form is reused for statements of the same shape, as SQLAlchemy's own execution does. Given
    ``slots``, the index in ``params`` of each parameter named there is written into it."""
    key = statement._generate_cache_key()
    compiled = _COMPILED.get(key.key) if key is not None else None
    if compiled is None:
        compiled = cast(Any, statement.compile(dialect=DIALECT, cache_key=key))
        if key is not None:
            _COMPILED[key.key] = compiled
            if len(_COMPILED) > _COMPILED_SIZE:
                _COMPILED.popitem(last=False)
    values = compiled.construct_params(extracted_parameters=key.bindparams if key is not None else None)
    expanded = compiled._process_parameters_for_postcompile(values)  # IN lists, as at execution
    offset = len(params)
    params.extend(expanded.parameters[name] for name in expanded.positiontup or ())
    if slots is not None:
        for i, name in enumerate(expanded.positiontup or ()):
            if name in slots:
                slots[name] = offset + i
    return _PARAM.sub(lambda m: f"${int(m.group(1)) + offset}", expanded.statement)


def literal_limit(stmt: Select[Any]) -> Select[Any]:
    """The page's ``LIMIT`` written into the SQL (a validated integer) instead of a parameter: PostgreSQL cannot
    estimate a parameter's limit, so it would plan such a statement anew on every execution (about 1 ms for a
    nested page); with the number written in, it keeps one plan per page size."""
    limit = stmt._limit
    return stmt.limit(literal_column(str(int(limit)))) if isinstance(limit, int) else stmt


def _scope(stmt: Select[Any]) -> str:
    """The conditions of a scoped select as literal SQL (region codes and program codes: validated values)."""
    where = stmt.whereclause
    if where is None:
        return ""
    return " AND (" + str(where.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True})) + ")"


# --- objects -------------------------------------------------------------------------------------------------

#: a field stored in a column: its SQL for the request
Column = Callable[[Request], str]
Relation = Callable[[Request, GraphQLObjectType, list[Selected], tuple[str, ...]], str]


def _plain(sql: str) -> Column:
    return lambda r: sql


def _personal(sql: str) -> Column:
    return lambda r: sql if r.actor.sees_personal_data else "NULL"


def _member_name(r: Request) -> str:
    if not r.actor.sees_personal_data:
        raise NotCompilable("initials are made in Python")
    return "members.name"


@dataclass(frozen=True, slots=True)
class Entity:
    type_name: str
    table: str
    columns: dict[str, Column]
    relations: dict[str, Relation] = field(default_factory=dict)


def _object(request: Request, entity: Entity, type_: GraphQLObjectType, selections: list[Selected],
            path: tuple[str, ...]) -> str:
    if entity.type_name in path:
        raise NotCompilable("the same type twice on one path")
    path = (*path, entity.type_name)
    pairs: list[tuple[str, str]] = []
    for selected in selections:
        if selected.name == "__typename":
            pairs.append((selected.key, json_literal(type_.name)))
        elif selected.name == "id":
            pairs.append((selected.key, global_id(entity.type_name, f"{entity.table}.id")))
        elif selected.name in entity.columns:
            pairs.append((selected.key, entity.columns[selected.name](request)))
        elif selected.name in entity.relations:
            if type_.fields[selected.name].args:
                raise NotCompilable("nested field with arguments")
            child_type, children = _children(request, type_, selected)
            pairs.append((selected.key, entity.relations[selected.name](request, child_type, children, path)))
        else:
            raise NotCompilable(f"{type_.name}.{selected.name}")
    return obj(pairs)


def _members(request: Request, type_: GraphQLObjectType, selections: list[Selected], path: tuple[str, ...]) -> str:
    return json_list(_object(request, MEMBER, type_, selections, path),
                      "members WHERE members.household_id = households.id", "members.id")


def _family_cards(request: Request, type_: GraphQLObjectType, selections: list[Selected],
                  path: tuple[str, ...]) -> str:
    return json_list(_object(request, FAMILY_CARD, type_, selections, path),
                      "family_cards WHERE family_cards.household_id = households.id", "family_cards.id")


def _household_complaints(request: Request, type_: GraphQLObjectType, selections: list[Selected],
                          path: tuple[str, ...]) -> str:
    scope = _scope(complaints.scoped(select(Complaint.id), request.actor))
    return json_list(_object(request, COMPLAINT, type_, selections, path),
                      f"complaints WHERE complaints.household_id = households.id{scope}", "complaints.id")


def _complaint_referrals(request: Request, type_: GraphQLObjectType, selections: list[Selected],
                         path: tuple[str, ...]) -> str:
    scope = _scope(referrals.scoped(select(Referral.id), request.actor))
    return json_list(_object(request, REFERRAL, type_, selections, path),
                      f"referrals WHERE referrals.complaint_id = complaints.id{scope}", "referrals.id")


def _complaint_household(request: Request, type_: GraphQLObjectType, selections: list[Selected],
                         path: tuple[str, ...]) -> str:
    scope = _scope(households.scoped(select(Household.id), request.actor))
    element = _object(request, HOUSEHOLD, type_, selections, path)
    return JSONText(f"coalesce((SELECT {element} FROM households WHERE households.id = complaints.household_id"
                    f"{scope}), 'null')")


def _columns(table: str, names: Iterable[str], *, times: Iterable[str] = (),
             enums: Iterable[str] = ()) -> dict[str, Column]:
    """Columns as they are; ``times`` in ISO form; ``enums`` are held to their enum's names by a CHECK
    constraint, so JSON needs no escape for them."""
    out: dict[str, Column] = {}
    for name in names:
        out[_camel(name)] = _plain(f"{table}.{name}")
    for name in enums:
        out[_camel(name)] = _plain(Ascii(f"{table}.{name}"))
    for name in times:
        out[_camel(name)] = _plain(iso(f"{table}.{name}"))
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _sla_state(request: Request) -> str:
    return str(complaints.sla_state_sql().compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))


HOUSEHOLD = Entity("Household", "households", {
    **_columns("households", ["region_code", "rt", "rw", "indicators", "version"],
               times=["created_at", "updated_at"], enums=["dtks_status"]),
    "address": _personal("households.address"), "latitude": _personal("households.latitude"),
    "longitude": _personal("households.longitude"),
}, {"members": _members, "familyCards": _family_cards, "complaints": _household_complaints})

MEMBER = Entity("Member", "members", {
    **_columns("members", ["birth_date", "nik_masked", "nik_from_other_region", "education", "occupation",
                           "disability", "chronic_illness", "programs", "version"],
               enums=["sex", "relation", "nik_status"]),
    "name": _member_name,
})

FAMILY_CARD = Entity("FamilyCard", "family_cards", {"numberMasked": _plain("family_cards.number_masked")})

COMPLAINT = Entity("Complaint", "complaints", {
    **_columns("complaints", ["description", "region_code", "decision", "status_reason", "version"],
               times=["sla_due_at", "closed_at", "reported_at", "created_at", "updated_at"],
               enums=["kind", "sector", "channel", "priority", "status"]),
    "slaState": _sla_state,
}, {"referrals": _complaint_referrals, "household": _complaint_household})

REFERRAL = Entity("Referral", "referrals", {
    **_columns("referrals", ["receiving_agency", "note", "consent_given", "consent_override_reason",
                             "rejection_reason", "revocation_reason", "outcome", "version"],
               times=["sent_at", "responded_at", "completed_at", "created_at", "updated_at"], enums=["status"]),
})


CASE_EVENT = Entity("CaseEvent", "e", {
    "cursor": _plain("e.id::text"), "kind": _plain("e.kind"), "occurredAt": _plain(iso("e.occurred_at")),
    "regionCode": _plain("e.region_code"), "data": _plain("e.data"),
    "householdId": _plain(global_id("Household", "e.household_id")),
    "complaintId": _plain(global_id("Complaint", "e.complaint_id")),
    "referralId": _plain(global_id("Referral", "e.referral_id")),
    "actorId": _plain(global_id("Staff", "e.actor_id")),
})


def _changes(request: Request, type_: GraphQLObjectType, selected: Selected, n: int, params: list[Any],
             ctes: list[str]) -> str:
    """``changes(after:, first:)`` as :func:`domain.events.read_changes` reads it: the events after the cursor
    in the actor's scope, in id order, and whether more follow."""
    args = _arguments(request, type_, selected)
    first = check_first(args.get("first"), default=request.default_page, maximum=request.max_page)
    stmt, start = changes_statement(request.actor, after=args.get("after"), first=first)
    events = f"e{n}"
    ctes.append(f"{events} AS (SELECT x.*, row_number() OVER (ORDER BY x.id) AS rn FROM "
                f"({bind(literal_limit(stmt.with_only_columns(*CaseEventRow.__table__.c)), params)}) x)")
    page_type, fields = _children(request, type_, selected)
    pairs: list[tuple[str, str]] = []
    for field_ in fields:
        if field_.name == "__typename":
            pairs.append((field_.key, json_literal(page_type.name)))
        elif field_.name == "events":
            event_type, event_fields = _children(request, page_type, field_)
            element = _object(request, CASE_EVENT, event_type, event_fields, ())
            pairs.append((field_.key, json_list(element, f"{events} e WHERE e.rn <= {first}", "e.id")))
        elif field_.name == "endCursor":
            pairs.append((field_.key, f"coalesce((SELECT max(id) FROM {events} WHERE rn <= {first}), {start})::text"))
        elif field_.name == "hasMore":
            pairs.append((field_.key, f"((SELECT count(*) FROM {events}) > {first})"))
        else:
            raise NotCompilable(f"{page_type.name}.{field_.name}")
    return obj(pairs)


def _workload(request: Request, type_: GraphQLObjectType, selected: Selected, params: list[Any]) -> str:
    """``workload(regionCode:)``: the board's own statement, each row made a JSON object in its order."""
    args = _arguments(request, type_, selected)
    statement = complaints.workload_statement(request.actor, region_code=args.get("region_code"))
    entry_type, fields = _children(request, type_, selected)
    pairs: list[tuple[str, str]] = []
    for field_ in fields:
        if field_.name == "__typename":
            pairs.append((field_.key, json_literal(entry_type.name)))
        elif field_.name in {"open", "newToday", "atRisk", "breached"}:
            column = {"open": "open", "newToday": "new_today", "atRisk": "at_risk", "breached": "breached"}
            pairs.append((field_.key, f"coalesce(w.{column[field_.name]}, 0)"))
        elif field_.name == "oldestOpenAt":
            pairs.append((field_.key, iso("w.oldest_open_at")))
        elif field_.name == "staff":
            staff_type, staff_fields = _children(request, entry_type, field_)
            pairs.append((field_.key, _object(request, STAFF, staff_type, staff_fields, ())))
        else:
            raise NotCompilable(f"{entry_type.name}.{field_.name}")
    return json_list(obj(pairs), f"({bind(statement, params)}) w",
                      "coalesce(w.open, 0) DESC, w.full_name, w.id")


STAFF = Entity("Staff", "w", {
    **_columns("w", ["username", "full_name", "role", "region_code", "active"], times=["created_at"]),
    "regionCodes": _plain("CASE WHEN w.region_code IS NULL THEN '[]'::json "
                          "ELSE to_json(array_prepend(w.region_code, w.extra_region_codes)) END"),
})


# --- root connections ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Statement:
    """The SQL and its parameters; its first column is the data, and, when the request's account is to be
    confirmed, a second says whether the staff row still matches (the answer is void otherwise). A filing's
    statement (``writes``) has no SQL of its own: ``filing`` is its values and ``payload`` the JSON it answers
    with, and :func:`filings` writes it, alone or with others that answer with the same."""

    sql: str
    params: list[Any]
    confirms: bool
    writes: bool = False
    filing: at_once.Given | None = None
    payload: str = ""
    #: the pages' cursors given by variables: the same statement answers any other cursor of those orderings,
    #: with its values in place of these (:func:`after_other_cursors`)
    cursors: tuple[Cursor, ...] = ()


@dataclass(frozen=True, slots=True)
class Cursor:
    """A page's ``after:`` given by ``variable``: where its decoded values sit in the statement's parameters."""

    variable: str
    ordering: Ordering
    slots: tuple[int, ...]


def after_other_cursors(statement: Statement, variables: Mapping[str, Any]) -> Statement:
    """``statement`` for the same request but other values of its cursor variables (none of them absent where
    the statement had one, nor given where it had none). Raises the :class:`DomainError` the resolvers raise for
    a cursor that is not one of this list's."""
    params = list(statement.params)
    for cursor in statement.cursors:
        for slot, value in zip(cursor.slots, decode_cursor(cursor.ordering, variables[cursor.variable]), strict=True):
            params[slot] = value
    return replace(statement, params=params)


def filings(statements: Sequence[Statement]) -> tuple[str, list[Any]]:
    """Filing statements of the same ``payload`` as one, answering a row for each, in their order:
    ``(place, confirmed, data, event id, event region code)``."""
    given = [s.filing for s in statements if s.filing is not None]
    assert len(given) == len(statements) and len({s.payload for s in statements}) == 1
    filing = at_once.together(given)
    return (f"{filing.with_}SELECT given.ord, EXISTS (SELECT FROM who WHERE who.ord = given.ord), j.data, j.event_id, "
            f"j.region_code FROM given LEFT JOIN (SELECT go.ord, {statements[0].payload}::text AS data, "
            "written.id AS event_id, written.region_code FROM filed AS complaints JOIN go ON go.id = complaints.id "
            "JOIN written ON written.complaint_id = complaints.id) j ON j.ord = given.ord ORDER BY given.ord",
            filing.params)


def filed_events(rows: Iterable[Any]) -> list[tuple[int, str]]:
    """The events (id, region code) of the filings that filed, from rows answered by :func:`filings`."""
    return [(int(row[3]), str(row[4])) for row in rows if row[2] is not None]


def _node(request: Request, entity: Entity, type_: GraphQLObjectType, selected: Selected) -> str:
    """The node object's SQL for this connection field, from the cache when the document, the visibility of
    personal data and the scope are the same."""
    actor = request.actor
    key = (*request.query_key, selected.key, actor.sees_personal_data, actor.role, actor.regions, actor.programs)
    sql = request.cache.get(key)
    if sql is None:
        edge_type, edge_fields = _children(request, type_, selected)
        nodes = [f for f in edge_fields if f.name == "node"]
        node_type = get_named_type(edge_type.fields["node"].type)
        assert isinstance(node_type, GraphQLObjectType)
        children = _collect(request, node_type, [n.selection_set for f in nodes for n in f.nodes if n.selection_set])
        sql = _object(request, entity, node_type, children, ())
        request.cache[key] = sql
    return sql


def _connection(request: Request, entity: Entity, type_: GraphQLObjectType, selections: list[Selected],
                matching: Select[Any], ordering: Ordering, first: int, after: str | None, n: int,
                params: list[Any], ctes: list[str], after_variable: str | None = None) -> str:
    """``{edges {cursor node}, pageInfo, totalCount}`` of a keyset page, as the resolvers build it. The page's
    keys (and one more, to know whether more follow) go to a CTE ``p<n>`` numbered in page order."""
    model = entity.table
    # the page's whole rows (not only their keys), so its objects are written from the CTE without looking
    # each row up again
    table = Base.metadata.tables[model]
    keys = keyset(matching.with_only_columns(*table.c), ordering, after=after, first=first)
    names = [cursor_parameter(i) for i in range(len(ordering.columns))] if after is not None else []
    slots = dict.fromkeys(names, -1)
    ranked = f"p{n}"
    ctes.append(f"k{n} AS ({bind(literal_limit(keys), params, slots)})")
    if names and after_variable is not None and request.uses[after_variable] == 1:
        request.cursors.append(Cursor(after_variable, ordering, tuple(slots[name] for name in names)))
    ctes.append(f"{ranked} AS (SELECT k{n}.*, row_number() OVER (ORDER BY {_sort(ordering, f'k{n}')}) AS rn "
                f"FROM k{n})")
    pairs: list[tuple[str, str]] = []
    for selected in selections:
        if selected.name == "__typename":
            pairs.append((selected.key, json_literal(type_.name)))
        elif selected.name == "totalCount":
            count = select(func.count()).select_from(matching.with_only_columns(ordering.columns[-1]).subquery())
            pairs.append((selected.key, f"({bind(count, params)})"))
        elif selected.name == "edges":
            edge_type, edge_fields = _children(request, type_, selected)
            edge_pairs: list[tuple[str, str]] = []
            for edge_field in edge_fields:
                if edge_field.name == "__typename":
                    edge_pairs.append((edge_field.key, json_literal(edge_type.name)))
                elif edge_field.name == "cursor":
                    edge_pairs.append((edge_field.key, cursor(ordering, model)))
                elif edge_field.name == "node":
                    edge_pairs.append((edge_field.key, _node(request, entity, type_, selected)))
                else:
                    raise NotCompilable(f"{edge_type.name}.{edge_field.name}")
            source = f"{ranked} AS {model} WHERE {model}.rn <= {first}"
            pairs.append((selected.key, json_list(obj(edge_pairs), source, f"{model}.rn")))
        elif selected.name == "pageInfo":
            info_type, info_fields = _children(request, type_, selected)
            info_pairs: list[tuple[str, str]] = []
            for info_field in info_fields:
                if info_field.name == "__typename":
                    info_pairs.append((info_field.key, json_literal(info_type.name)))
                elif info_field.name == "hasNextPage":
                    info_pairs.append((info_field.key, f"((SELECT count(*) FROM {ranked}) > {first})"))
                elif info_field.name == "hasPreviousPage":
                    info_pairs.append((info_field.key, "true" if after is not None else "false"))
                elif info_field.name == "startCursor":
                    info_pairs.append((info_field.key,
                                       Ascii(f"(SELECT {cursor(ordering, ranked)} FROM {ranked} WHERE rn = 1)")))
                elif info_field.name == "endCursor":
                    # the cursor of the page's last row only (not written for every row, then sorted)
                    info_pairs.append((info_field.key, Ascii(
                        f"(SELECT {cursor(ordering, 'last_')} FROM (SELECT * FROM {ranked} WHERE rn <= {first} "
                        "ORDER BY rn DESC LIMIT 1) last_)")))
                else:
                    raise NotCompilable(f"{info_type.name}.{info_field.name}")
            pairs.append((selected.key, obj(info_pairs)))
        else:
            raise NotCompilable(f"{type_.name}.{selected.name}")
    return obj(pairs)


def compile_(request: Request, document: DocumentNode, operation: OperationDefinitionNode) -> Statement:
    """One statement whose first column is the operation's ``data`` as JSON text, then, for each search by
    NIK, how many households it found. Raises :class:`NotCompilable`, or the :class:`DomainError` the
    resolvers would raise for these arguments (the caller lets the resolvers answer either)."""
    from resolvers.queries import complaint_query, household_query, referral_query

    query_type = request.schema.query_type
    assert query_type is not None
    request.uses = _variable_uses(operation, request.fragments)
    params: list[Any] = []
    ctes: list[str] = []
    searches: list[str] = []
    pairs: list[tuple[str, str]] = []
    for n, selected in enumerate(_collect(request, query_type, [operation.selection_set])):
        if selected.name == "__typename":
            pairs.append((selected.key, json_literal(query_type.name)))
            continue
        if selected.name == "workload" and len(selected.nodes) == 1:
            pairs.append((selected.key, _workload(request, query_type, selected, params)))
            continue
        if selected.name == "changes" and len(selected.nodes) == 1:
            pairs.append((selected.key, _changes(request, query_type, selected, n, params, ctes)))
            continue
        if selected.name not in {"households", "complaints", "referrals"}:
            raise NotCompilable(f"Query.{selected.name}")
        if len(selected.nodes) > 1:
            raise NotCompilable("a root field asked twice")
        args = _arguments(request, query_type, selected)
        first = check_first(args.get("first"), default=request.default_page, maximum=request.max_page)
        after = args.get("after")
        type_, selections = _children(request, query_type, selected)
        actor = request.actor
        if selected.name == "households":
            hf, ordering = household_query(args.get("filter"))
            entity, matching = HOUSEHOLD, households.matching(actor, request.cipher, hf)
            if hf.nik is not None:
                searches.append(f"(SELECT count(*) FROM p{n})")
        elif selected.name == "complaints":
            order_by = args.get("order_by")
            cf, ordering = complaint_query(args.get("filter"), order_by.value if order_by is not None else None)
            entity, matching = COMPLAINT, complaints.matching(actor, cf)
        else:
            rf, ordering = referral_query(args.get("filter"))
            entity, matching = REFERRAL, referrals.matching(actor, rf)
        pairs.append((selected.key, _connection(request, entity, type_, selections, matching, ordering, first, after,
                                                n, params, ctes, _variable(selected, "after"))))
    confirmed = "true"
    if request.confirm is not None:
        staff_id, role, username, region_code, extra = request.confirm
        params.extend([role, username, region_code, list(extra)])
        k = len(params)
        confirmed = (f"EXISTS (SELECT 1 FROM staff WHERE staff.id = {int(staff_id)} AND staff.active "
                     f"AND staff.role = ${k - 3}::varchar AND staff.username = ${k - 2}::varchar "
                     f"AND staff.region_code IS NOT DISTINCT FROM ${k - 1}::varchar "
                     f"AND staff.extra_region_codes = ${k}::varchar[])")
    for i, found in enumerate(searches):
        # each search by NIK is audited in the same statement (and only when the account was confirmed)
        actor_id = int(request.actor.id)
        ctes.append(f"audit{i} AS (INSERT INTO audit_log (actor_id, action, entity_type, detail) SELECT {actor_id}, "
                    f"'SEARCH_BY_NIK', 'Household', jsonb_build_object('matches', {found}) WHERE {confirmed} "
                    "RETURNING 1)")
    with_ = ("WITH " + ", ".join(ctes) + " ") if ctes else ""
    extra_column = f", {confirmed}" if request.confirm is not None else ""
    sql = f"{with_}SELECT {obj(pairs)}::text{extra_column}"
    return Statement(sql=sql, params=params, confirms=request.confirm is not None, cursors=tuple(request.cursors))


def _variable(selected: Selected, argument: str) -> str | None:
    """The variable the field's ``argument`` is given by, if it is given by one."""
    for node in selected.nodes[0].arguments or ():
        if node.name.value == argument:
            return node.value.name.value if isinstance(node.value, VariableNode) else None
    return None


def _variable_uses(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
                   ) -> Counter[str]:
    """How many times each variable is used in the operation and the fragments it may spread."""
    uses: Counter[str] = Counter()

    class Count(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            uses[node.name.value] += 1

    counting = Count()
    visit(operation.selection_set, counting)
    for fragment in fragments.values():
        visit(fragment, counting)
    return uses


# --- the one compiled mutation -------------------------------------------------------------------------------


def compile_filing(request: Request, document: DocumentNode, operation: OperationDefinitionNode, *,
                   origin: str | None) -> Statement:
    """``fileComplaint`` alone in its operation, for a plain filing (:mod:`domain.complaints.at_once`): the
    statement files it and writes the payload as the resolver would, ``replayed: false`` and no errors. Raises
    :class:`NotCompilable` for a document it does not answer, :class:`Declined` (or the input's
    :class:`DomainError`) for a filing the resolver must make."""
    from resolvers.complaints import complaint_data

    mutation_type = request.schema.mutation_type
    assert mutation_type is not None
    # the audit entry names the root's own fields of every operation in the document (server.unit_of_work)
    if sum(isinstance(d, OperationDefinitionNode) for d in document.definitions) != 1:
        raise NotCompilable("a mutation beside other operations")
    if not all(isinstance(node, FieldNode) for node in operation.selection_set.selections):
        raise NotCompilable("a fragment at the root")
    roots = _collect(request, mutation_type, [operation.selection_set])
    fields = [root for root in roots if root.name != "__typename"]
    if len(fields) != 1 or fields[0].name != "fileComplaint" or len(fields[0].nodes) != 1:
        raise NotCompilable("a mutation other than one fileComplaint")
    selected = fields[0]
    actor = request.actor
    key = (*request.query_key, "filing", actor.sees_personal_data, actor.role, actor.regions, actor.programs)
    data_sql = request.cache.get(key)
    if data_sql is None:
        payload_type, payload_fields = _children(request, mutation_type, selected)
        pairs: list[tuple[str, str]] = []
        for field_ in payload_fields:
            if field_.name == "__typename":
                pairs.append((field_.key, json_literal(payload_type.name)))
            elif field_.name == "complaint":
                complaint_type, complaint_fields = _children(request, payload_type, field_)
                pairs.append((field_.key, _object(request, COMPLAINT, complaint_type, complaint_fields, ())))
            elif field_.name == "replayed":
                pairs.append((field_.key, JSONText("'false'")))
            elif field_.name == "errors":  # (its selection was validated; a filing made here has no errors)
                pairs.append((field_.key, JSONText("'[]'")))
            else:
                raise NotCompilable(f"{payload_type.name}.{field_.name}")
        data_sql = obj([(root.key, obj(pairs) if root is selected else json_literal(mutation_type.name))
                        for root in roots])
        request.cache[key] = data_sql
    input_ = _arguments(request, mutation_type, selected)["input"]
    confirm = None if request.confirm is None else at_once.Confirm(*request.confirm)
    filing = at_once.given(actor, complaint_data(input_), idempotency_key=input_.idempotency_key,
                           origin=origin, confirm=confirm, operation=selected.name)
    if filing is None:
        raise Declined("the service files this one")
    # (its SQL is written when it is sent: alone, or with others, :func:`filings`)
    return Statement(sql="", params=[], confirms=request.confirm is not None, writes=True, filing=filing,
                     payload=data_sql)
