"""An outer ASGI wrapper that reports, on stderr, what the client had delivered by the
time the server heard "lifespan shutdown complete".

``SegmentMiddleware`` flushes before it answers the shutdown, so the report tells
the tests that the lifespan flush (not the later ``atexit``) delivered the events.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from segment_asgi import SegmentMiddleware

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]

REPORT_PREFIX = "e2e-lifespan-shutdown"


class ShutdownReport:
    def __init__(self, app: SegmentMiddleware) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[Message]], send: Send
    ) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def report(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                stats = self.app.client.stats()
                print(
                    f"{REPORT_PREFIX} pid={os.getpid()} sent={stats['sent']} "
                    f"pending={stats['pending']} failed={stats['failed']}",
                    file=sys.stderr,
                    flush=True,
                )
            await send(message)

        await self.app(scope, receive, report)
