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


def test_a_process_pool_forked_in_a_request_runs_plain_jobs_for_no_visitor() -> None:
    """Its processes are copies of the request's thread: a plain job, the first
    request's or any later one's, runs for none; with_binding's for the one it names."""
    first = Analytics(user_id="u-first", anonymous_id="a-first")
    second = Analytics(user_id="u-second", anonymous_id="a-second")
    fork = multiprocessing.get_context("fork")
    with bound(first), ProcessPoolExecutor(1, mp_context=fork) as pool:
        in_first = pool.submit(report_visitor, "first").result(timeout=60)
        with bound(second):
            in_second = pool.submit(report_visitor, "second").result(timeout=60)
            handed = pool.submit(with_binding(report_visitor), "handed").result(timeout=60)
        after = pool.submit(report_visitor, "after").result(timeout=60)
    assert in_first["pid"] != os.getpid()
    assert [answer["visitor"] for answer in (in_first, in_second, after)] == [None] * 3
    assert handed["visitor"] == second.snapshot()
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
