"""with_binding's callable goes to any executor, a process pool's included."""

from __future__ import annotations

import inspect
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from segment_core.scope import Analytics, bound, current, with_binding


def report_visitor(label: str) -> dict[str, Any]:
    """Who the call runs for, and where."""
    visitor = current()
    return {
        "label": label,
        "pid": os.getpid(),
        "visitor": None if visitor is None else visitor.snapshot(),
    }


def test_a_process_pool_runs_it_bound_to_the_callers_visitor() -> None:
    visitor = Analytics(user_id="u-1", anonymous_id="a-1", context={"locale": "en-GB"})
    with bound(visitor):
        for_the_visitor = with_binding(report_visitor)
    unbound = with_binding(report_visitor)
    # spawn: the child imports this module afresh, and everything reaches it pickled.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        bound_answer = pool.submit(for_the_visitor, "bound").result(timeout=60)
        unbound_answer = pool.submit(unbound, "unbound").result(timeout=60)
    assert bound_answer["pid"] != os.getpid()
    assert bound_answer["visitor"] == visitor.snapshot()
    assert unbound_answer["visitor"] is None
    assert current() is None


def test_it_wears_the_functions_name_and_signature() -> None:
    wrapped = with_binding(report_visitor)
    assert wrapped.__name__ == "report_visitor"
    assert wrapped.__doc__ == report_visitor.__doc__
    assert wrapped.__wrapped__ is report_visitor  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(report_visitor)
    assert wrapped("here")["pid"] == os.getpid()


class Mailer:
    @with_binding
    def send(self, to: str) -> tuple[str, Analytics | None]:
        return to, current()


def test_a_method_it_decorates_binds_its_instance() -> None:
    assert Mailer().send("a@x") == ("a@x", None)
    assert isinstance(Mailer.__dict__["send"], type(with_binding(report_visitor)))
