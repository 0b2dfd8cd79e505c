"""Drive an ASGI app by hand, as a server would: for tests that watch each message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

Message = MutableMapping[str, Any]


def http_scope(path: str = "/", **overrides: Any) -> dict[str, Any]:
    """A browser's GET of ``http://shop.example{path}`` from 203.0.113.9."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"shop.example"), (b"user-agent", b"Mozilla/5.0")],
        "client": ("203.0.113.9", 50000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(overrides)
    return scope


def request_receiver() -> Callable[[], Awaitable[Message]]:
    """``receive``: the empty request body, then nothing (no disconnect) until cancelled."""
    delivered = False
    never = asyncio.Event()

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()
        raise AssertionError("unreachable")

    return receive


async def call(
    app: Any, scope: dict[str, Any], on_message: Callable[[Message], None] | None = None
) -> list[Message]:
    """Run one request through ``app``; return what it sent (``on_message`` sees each)."""
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)
        if on_message is not None:
            on_message(message)

    await asyncio.wait_for(app(scope, request_receiver(), send), timeout=10)
    return messages


def header(message: Message, name: bytes) -> list[bytes]:
    return [value for key, value in message.get("headers", ()) if key.lower() == name]


@asynccontextmanager
async def lifespan(
    app: Any, on_message: Callable[[Message], None] | None = None
) -> AsyncIterator[list[Message]]:
    """Run ``app``'s lifespan as a server does: startup on entry, shutdown on exit.

    Yields the list of messages the app sent (the startup answer first).
    """
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    answers: asyncio.Queue[Message] = asyncio.Queue()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if on_message is not None:
            on_message(message)
        await answers.put(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.wait_for(answers.get(), timeout=10)
    yield sent
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(answers.get(), timeout=10)
    await asyncio.wait_for(task, timeout=10)
