"""Which subscriptions can share a stream, and with whom: the key of a shared stream.

Sockets share a stream when they run the same document with the same variables (the ``after`` cursor aside)
as actors who would get the same answer: same role, area, program limit and personal-data visibility (and, for
``myAssignments``, the same person). Anything else (another root field, fragments, directives at the root, a
cursor or variables strawberry would refuse) runs on its own, exactly as before, so its errors read the same.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    NonNullTypeNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
    parse,
)

from domain.actor import Actor
from domain.errors import DomainError
from schema.limits import MAX_TOKENS
from subscriptions import streams

#: root fields whose results depend only on the event, the document and the actor's kind of access
SHARED_FIELDS = frozenset({"caseEvents", "intake", "myAssignments"})
#: of those, the ones whose events depend on who the actor is
PERSONAL_FIELDS = frozenset({"myAssignments"})


@dataclass(frozen=True, slots=True)
class Plan:
    """How one ``subscribe`` message can join a shared stream."""

    key: Hashable
    query: str
    operation_name: str | None
    #: the variables without the cursor (what the shared execution runs with)
    variables: dict[str, Any] | None
    #: the member's own cursor
    after: int | None


@functools.lru_cache(maxsize=256)
def _shape(query: str, operation_name: str | None) -> tuple[str, str | None, str | None, bool] | None:
    """For a document that is one subscription of one shareable root field: the field, the name of the
    variable carrying ``after`` (or its literal value), and whether the document can run without that variable.
    ``None`` for anything else (left to strawberry's own handling)."""
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != len(document.definitions):
        return None  # fragments: keep it simple
    chosen = [o for o in operations
              if operation_name is None or (o.name is not None and o.name.value == operation_name)]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.SUBSCRIPTION:
        return None
    operation = chosen[0]
    selections = operation.selection_set.selections
    if operation.directives or len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    root = selections[0]
    if root.name.value not in SHARED_FIELDS or root.directives:
        return None
    variable: str | None = None
    literal: str | None = None
    for argument in root.arguments or ():
        if argument.name.value != "after":
            continue
        if isinstance(argument.value, VariableNode):
            variable = argument.value.name.value
        elif isinstance(argument.value, StringValueNode):
            literal = argument.value.value
        elif not isinstance(argument.value, NullValueNode):
            return None
    optional = True
    for definition in operation.variable_definitions or ():
        if variable is not None and definition.variable.name.value == variable:
            optional = not isinstance(definition.type, NonNullTypeNode) and definition.default_value is None
    return root.name.value, variable, literal, optional


def plan(query: object, variables: object, operation_name: object, actor: Actor | None) -> Plan | None:
    """The shared stream a subscription can join, or ``None`` when it runs on its own (not one of the shared
    fields, an invalid cursor or variables: strawberry answers those exactly as before)."""
    if actor is None or not isinstance(query, str) or not (operation_name is None or isinstance(operation_name, str)):
        return None
    if variables is not None and not isinstance(variables, dict):
        return None
    shape = _shape(query, operation_name)
    if shape is None:
        return None
    field, variable, literal, optional = shape
    rest = dict(variables or {})
    raw: object = literal
    if variable is not None:
        if not optional:
            return None
        raw = rest.pop(variable, None)
    if raw is not None and not isinstance(raw, str):
        return None
    try:
        after = streams.parse_cursor(raw)
        canonical = orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)
    except (DomainError, TypeError, orjson.JSONEncodeError):
        return None
    key = (query, operation_name, canonical, actor.role, actor.regions, actor.programs, actor.sees_personal_data,
           actor.id if field in PERSONAL_FIELDS else None)
    return Plan(key=key, query=query, operation_name=operation_name, variables=rest or None, after=after)
