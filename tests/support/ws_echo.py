"""A small ASGI application for testing rujuk's WebSocket protocol on its own, under a real uvicorn.

``/echo`` accepts (with ``graphql-transport-ws`` when offered, and a header of its own) and sends back every
message; the text ``close`` makes it close with 4001, ``big`` makes it send 70,000 characters, ``scope`` sends
the scope's path and query string. ``/deny`` closes before accepting. ``/crash`` raises before accepting.
"""

from __future__ import annotations

import json
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    assert (await receive())["type"] == "websocket.connect"
    if scope["path"] == "/deny":
        await send({"type": "websocket.close", "code": 1008})
        return
    if scope["path"] == "/crash":
        raise RuntimeError("the application failed")
    subprotocol = "graphql-transport-ws" if "graphql-transport-ws" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-echo", b"yes")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            continue
        if text == "big":
            await send({"type": "websocket.send", "text": "x" * 70_000})
        elif text == "scope":
            await send({"type": "websocket.send", "text": json.dumps(
                {"path": scope["path"], "query": scope["query_string"].decode(), "scheme": scope["scheme"]})})
        elif text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
