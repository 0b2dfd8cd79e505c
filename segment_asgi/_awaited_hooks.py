"""``async def`` hooks (``consent``, ``page_filter``, ``page_properties``) for the
web layer, which calls its hooks plainly.

The page call that runs ``page_filter`` and ``page_properties`` is made in a worker
thread (see ``SegmentMiddleware._finish_in_page_thread``): there, each stand-in runs
its hook in the event loop and waits for the answer, as ``anyio.from_thread.run``
does. ``consent``'s stand-in gives the answer the middleware awaited last, if it did
not raise: in the event loop itself nothing can wait for the loop, and ``consent`` is
asked there as the request starts (and as the response starts, if it raised then);
where it was not awaited (a login on an excluded path, where no automatic call is
made), it counts as no consent, said once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import anyio.from_thread

__all__ = ["AWAITED_HOOKS", "EARLY_CONSENT", "LOOP_THREAD", "AwaitedHook", "Raised"]

logger = logging.getLogger("segment.core.web")

#: The hooks a stand-in may take the place of.
AWAITED_HOOKS = ("consent", "page_filter", "page_properties")

#: Scope key: the id of the thread of the event loop the request runs in.
LOOP_THREAD = "segment_asgi.loop_thread"
#: Scope key: the async ``consent`` hook's last answer the middleware awaited (or
#: :class:`Raised`).
EARLY_CONSENT = "segment_asgi.early_consent"


_NOT_ASKED: Any = object()


class Raised:
    """What a hook raised, kept to be raised where its answer is asked for."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class AwaitedHook:
    """A plain stand-in for the ``async def`` hook ``name``."""

    __slots__ = ("_told", "hook", "name")

    def __init__(self, name: str, hook: Callable[..., Any]) -> None:
        self.name = name
        self.hook = hook
        #: Whether it said once that the hook could not be asked in the event loop.
        self._told = False

    def __call__(self, request: Any, *args: Any) -> Any:
        scope = request.scope
        early = scope.get(EARLY_CONSENT, _NOT_ASKED) if self.name == "consent" else _NOT_ASKED
        if early is not _NOT_ASKED and not isinstance(early, Raised):
            return early  # the answer the middleware awaited last
        if scope.get(LOOP_THREAD) == threading.get_ident():
            if early is _NOT_ASKED:
                self._say_once_not_asked()
                return False
            raise early.error
        return anyio.from_thread.run(self.hook, request, *args)

    def _say_once_not_asked(self) -> None:
        if self._told:
            return
        self._told = True
        logger.warning(
            "segment: the async %s hook is not asked where no automatic call is made "
            "(exclude_paths, an asset); a login there counts as without consent and "
            "sends no identify: give a plain %s to have it asked there",
            self.name,
            self.name,
        )

    def __repr__(self) -> str:
        return f"<awaited {self.name} hook {self.hook!r}>"
