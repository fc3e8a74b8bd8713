"""A small ASGI application for testing rujuk's WebSocket protocol on its own, under a real uvicorn.

``/echo`` accepts (with ``graphql-transport-ws`` when offered, and a header of its own) and sends back every
message; the text ``close`` makes it close with 4001, ``close-long`` with a reason of 200 bytes, ``big`` makes
it send 70,000 characters, ``scope`` sends the scope's path and query string. ``/deny`` closes before accepting,
``/crash`` raises before accepting, ``/return`` and ``/raise`` return or raise right after accepting.
``/push`` never reads: it sends ``tick`` every 0.1 s for 2 s, then closes. ``/flood`` sends 64 KiB messages
until the peer is gone. ``/pressure`` sends from two tasks into a peer that does not read yet and cancels one of
them while it waits. What the application saw goes to stderr (the server's log).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


def say(text: str) -> None:
    sys.stderr.write(f"ws_echo: {text}\n")
    sys.stderr.flush()


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
    if scope["path"] == "/return":
        return
    if scope["path"] == "/raise":
        raise RuntimeError("the application failed")
    if scope["path"] == "/push":
        for _ in range(20):
            await send({"type": "websocket.send", "text": "tick"})
            await asyncio.sleep(0.1)
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["path"] == "/flood":
        try:
            while True:
                await send({"type": "websocket.send", "text": "f" * 65536})
        except Exception as exc:
            say(f"flood stopped: {type(exc).__name__}")
        return
    if scope["path"] == "/pressure":
        await _pressure(send)
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            again = await asyncio.wait_for(receive(), 1)
            say(f"disconnect {message['code']}, then {again['type']} {again['code']}")
            return
        text = message.get("text")
        if text == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            continue
        if text == "close-long":
            await send({"type": "websocket.close", "code": 4002, "reason": "é" * 100})
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


async def _pressure(send: Any) -> None:
    """Two senders into a peer that does not read for a while; one is cancelled while it waits to write."""

    async def sender(name: str) -> None:
        for i in range(64):
            await send({"type": "websocket.send", "text": f"{name}{i:02d}" + "p" * 65536})

    a = asyncio.create_task(sender("A"))
    b = asyncio.create_task(sender("B"))
    await asyncio.sleep(0.5)
    a.cancel()
    try:
        await b
        await send({"type": "websocket.send", "text": "B done"})
        say("pressure: B done")
    except BaseException as exc:
        say(f"pressure: B failed with {type(exc).__name__}")
        raise
