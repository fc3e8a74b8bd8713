"""graphql-transport-ws with shared subscriptions: strawberry's handler, except that a subscription that can
share a stream (:func:`subscriptions.fanout.plan`) joins it instead of running an operation task of its own.

Everything else (connection_init, ping, queries and mutations over the socket, subscriptions that cannot
share, protocol errors and close codes) is strawberry's own handling. Shared subscriptions count towards the
per-socket limit and their ids towards the duplicate check like any other operation.
"""

from __future__ import annotations

from typing import Any, cast

from graphql import GraphQLError
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage, SubscribeMessage

from server.context import Context
from subscriptions.fanout import SharedStreams
from subscriptions.members import Member
from subscriptions.sharing import plan


class SharingTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: dict[str, Member] = {}

    # the member's connection (subscriptions.fanout.Connection)

    async def send_text(self, text: str) -> None:
        await cast(ASGIWebSocketAdapter, self.websocket).ws.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        await self.websocket.close(code=code, reason=reason)

    def forget(self, op_id: str) -> None:
        self.shared.pop(op_id, None)

    # the protocol

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        timer = self.connection_init_timeout_task
        await super().handle_connection_init(message)
        if timer is not None and (timer.done() or timer.cancelling()):
            # cancelled now that the client said hello: let the task go, or the socket would keep it for its
            # whole life, with its CancelledError, traceback and frames
            self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        op_id = message["id"]
        if not self.connection_acknowledged or op_id in self.operations:
            await super().handle_subscribe(message)
            return
        if op_id in self.shared:
            await self.websocket.close(code=4409, reason=f"Subscriber for {op_id} already exists")
            return
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.operations) + len(self.shared) >= limit:
            error = GraphQLError("Subscription limit reached")
            await self.send_message({"id": op_id, "type": "error", "payload": [error.formatted]})
            return
        payload = message["payload"]
        if not isinstance(payload, dict):
            await super().handle_subscribe(message)
            return
        how = plan(payload.get("query"), payload.get("variables"), payload.get("operationName"), self.context.actor)
        registry = SharedStreams.of(self.context.services, self.schema) if how else None
        if how is None or registry is None:
            await super().handle_subscribe(message)
            return
        self.shared[op_id] = registry.join(self, op_id, how, self.context)

    async def cleanup_operation(self, operation_id: str) -> None:
        member = self.shared.pop(operation_id, None)
        if member is not None:
            member.leave()
            member.cancel_sends()
            return
        await super().cleanup_operation(operation_id)

    async def shutdown(self) -> None:
        for op_id in list(self.shared):
            await self.cleanup_operation(op_id)
        await super().shutdown()
