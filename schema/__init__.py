"""One GraphQL schema over households, complaints and referrals."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.limits import TextGuard, limit_extensions
from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription
from schema.types.complaints import Complaint
from schema.types.households import FamilyCard, Household, Member
from schema.types.reference import Program, Region, Staff
from schema.types.referrals import Referral


class RujukSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Expected errors (bad input, no credentials) are answers, not incidents: nothing to log here.
        Unexpected ones are logged, with the request id, by :class:`server.unit_of_work.ErrorPolicy`."""


def build_schema(*, production: bool = False) -> strawberry.Schema:
    from server.observability import OperationMetrics
    from server.unit_of_work import ErrorPolicy, SubscriptionsOverWebSocket, UnitOfWork

    # on_operation hooks leave in reverse order: the error policy rewrites errors before metrics count them
    extensions: list[Callable[[], SchemaExtension]] = [
        UnitOfWork, OperationMetrics, lambda: ErrorPolicy(production=production),
        TextGuard, SubscriptionsOverWebSocket, *limit_extensions(production=production)]
    return RujukSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Household, Member, FamilyCard, Complaint, Referral, Program, Region, Staff],
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
