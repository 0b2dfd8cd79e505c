"""The ASGI callables, as plain aliases (the same shapes as ``starlette.types``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Loose on purpose: apps declare their parameters in many ways (Django's handler
# takes a dict and Mappings, Starlette MutableMappings); all are ASGI apps.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
