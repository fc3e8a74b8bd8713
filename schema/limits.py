"""Limits every operation is held to: depth, aliases, tokens; parse and validation caches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
)
from graphql.validation import ASTValidationContext, ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 4000


def _unknown_fragments_tolerated(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """strawberry's depth rule, except that a spread of an undefined fragment does not crash it (it looks the
    fragment up with ``[]``, and the ``KeyError`` became an HTTP 500, or an error without a code): the depth of
    what it could measure is still checked, and ``KnownFragmentNamesRule`` reports the missing fragment."""

    class Tolerant(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ASTValidationContext) -> None:
            try:
                super().__init__(context)
            except KeyError:
                ASTValidationRule.__init__(self, context)

    Tolerant.__name__ = Tolerant.__qualname__ = rule.__name__
    return Tolerant


#: validation rule classes built once: the validation cache is keyed by the rules, so rules made anew for every
#: request (as the limiters' constructors do) would make every request miss it
_RULES = [*map(_unknown_fragments_tolerated, QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules),
          *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules]
_PRODUCTION_RULES = [*_RULES, NoSchemaIntrospectionCustomRule]


def validation_rules(*, production: bool) -> list[Any]:
    """The rules every operation is validated with beyond the specification's own."""
    return list(_PRODUCTION_RULES if production else _RULES)


def limit_extensions(*, production: bool, default_page: int = 50,
                     max_page: int = 1000) -> list[Callable[[], SchemaExtension]]:
    rules = _PRODUCTION_RULES if production else _RULES
    return [
        lambda: CostLimiter(max_cost=MAX_COST, default_page=default_page, max_page=max_page),
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: SafeParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]


#: the most an operation may cost: every field counts 1, and everything below a list counts once per item it
#: may return (``first`` of a connection, else an estimate)
MAX_COST = 200_000
LIST_ESTIMATE = 10


class SafeParserCache(ParserCache):
    """strawberry's parse cache, except that a document that does not parse (a syntax error, too many tokens)
    is left for strawberry's own parsing step, which reports it as a proper error on every transport (the
    cache's own exception escapes the WebSocket handler as a bare ``complete``)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


class _OutOfRange(Exception):
    """A ``first`` the resolver will refuse anyway (INVALID_PAGE_SIZE, the clearer answer)."""


def operation_cost(document: DocumentNode, variables: Mapping[str, Any] | None, default_page: int,
                   max_page: int = 1000) -> int | None:
    """The estimated cost, or ``None`` when a page size is out of range (that error is reported instead)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    variables = variables or {}

    def first_of(field: FieldNode) -> int | None:
        for argument in field.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                given = variables.get(value.name.value)
                return int(given) if isinstance(given, int) else default_page
        return None

    def cost(selections: SelectionSetNode | None, seen: frozenset[str]) -> int:
        total = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                children = cost(selection.selection_set, seen)
                first = first_of(selection)
                name = selection.name.value
                if first is not None and not 1 <= first <= max_page:
                    raise _OutOfRange
                if first is not None or name in {"edges"}:
                    multiplier = 1 if name == "edges" else max(first or default_page, 1)
                elif selection.selection_set is not None and name in LIST_FIELDS:
                    multiplier = LIST_ESTIMATE
                else:
                    multiplier = 1
                total += 1 + multiplier * children
            elif isinstance(selection, InlineFragmentNode):
                total += cost(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in seen:
                    total += cost(fragments[name].selection_set, seen | {name})
        return total

    try:
        return sum(cost(d.selection_set, frozenset()) for d in document.definitions
                   if isinstance(d, OperationDefinitionNode))
    except _OutOfRange:
        return None


#: fields that return lists without a ``first`` argument
LIST_FIELDS = frozenset({"members", "familyCards", "complaints", "referrals", "assignmentHistory", "timeline",
                         "children", "workload", "regions", "programs", "staff", "entries", "events", "apiKeys"})


class CostLimiter(SchemaExtension):
    """Refuses, before execution, an operation whose estimated cost is over the budget."""

    def __init__(self, *, max_cost: int, default_page: int, max_page: int) -> None:
        self.max_cost = max_cost
        self.default_page = default_page
        self.max_page = max_page

    def on_execute(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        if document is not None:
            spent = operation_cost(document, self.execution_context.variables, self.default_page, self.max_page)
            if spent is not None and spent > self.max_cost:
                raise GraphQLError(f"the operation would cost {spent}, over the limit of {self.max_cost}: ask for "
                                   "smaller pages or fewer nested lists",
                                   extensions={"code": "COST_LIMIT_EXCEEDED", "cost": spent, "limit": self.max_cost})
        yield


class TextGuard(SchemaExtension):
    """Refuses text PostgreSQL cannot store (a NUL character, an unpaired UTF-16 surrogate) before anything
    runs, as a clear client error instead of a database failure."""

    def on_execute(self) -> Iterator[None]:
        if has_nul(self.execution_context.variables) or document_has_nul(self.execution_context.graphql_document):
            raise GraphQLError("text may not contain NUL characters (\\u0000) or unpaired surrogates",
                               extensions={"code": "BAD_USER_INPUT"})
        yield


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def has_nul(value: Any) -> bool:
    """Whether variables hold text PostgreSQL cannot store."""
    if isinstance(value, str):
        return not _storable(value)
    if isinstance(value, Mapping):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


def document_has_nul(document: DocumentNode | None) -> bool:
    """Whether a document's strings hold text PostgreSQL cannot store."""
    if document is None or document.loc is None:
        return False
    body = document.loc.source.body
    if not _storable(body) or "\\u0000" in body:
        return True
    if "\\u" not in body:
        # a string value differs from its source text only through escapes, and only a \\u escape can make an
        # unpaired surrogate: without one the check of the body was enough (walking the tree cost ~4% of a
        # mutation's CPU)
        return False
    return any(isinstance(node, StringValueNode) and not _storable(node.value) for node in _strings(document))


def _strings(document: DocumentNode) -> Iterator[Any]:
    from graphql import Visitor, visit

    found: list[Any] = []

    class Collect(Visitor):
        def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
            found.append(node)

    visit(document, Collect())
    return iter(found)
