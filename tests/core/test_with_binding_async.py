"""with_binding around an async function: it runs bound wherever it is awaited."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from segment_core import Client
from segment_core.collector.handle import CollectorHandle
from segment_core.scope import Analytics, analytics, bound, current, with_binding


@pytest.fixture
def client(segment_collector: CollectorHandle) -> Iterator[Client]:
    client = Client("key", host=segment_collector.url)
    yield client
    client.shutdown(timeout=5)


def visitor(client: Client) -> Analytics:
    return Analytics(client, user_id="42", anonymous_id="anon-1")


def delivered(client: Client, collector: CollectorHandle, count: int) -> list[dict[str, Any]]:
    """The messages the collector received once ``client`` has sent what it holds."""
    assert client.flush(timeout=5)
    return [event["message"] for event in collector.wait_for(count, timeout=5)]


async def send_receipt(order_id: int) -> str | None:
    """Track the receipt after a pause; answer the visitor it ran for."""
    await asyncio.sleep(0)
    analytics().track("Receipt Sent", {"order_id": order_id})
    return analytics().anonymous_id


async def receipts(order_ids: list[int]) -> AsyncGenerator[int, None]:
    """Track each receipt as it is asked for, and the end, even when left early."""
    try:
        for order_id in order_ids:
            await asyncio.sleep(0)
            analytics().track("Receipt Sent", {"order_id": order_id})
            yield order_id
    finally:
        analytics().track("Receipts Closed")


async def who() -> Analytics | None:
    await asyncio.sleep(0)
    return current()


async def test_a_worker_task_started_before_the_request_awaits_it_for_the_visitor(
    client: Client, segment_collector: CollectorHandle
) -> None:
    jobs: asyncio.Queue[tuple[Callable[[int], Awaitable[str | None]], int]] = asyncio.Queue()
    answers: list[str | None] = []
    bound_between_jobs: list[Analytics | None] = []

    async def worker() -> None:
        while True:
            job, order_id = await jobs.get()
            try:
                answers.append(await job(order_id))
                bound_between_jobs.append(current())
            finally:
                jobs.task_done()

    task = asyncio.create_task(worker())  # its context holds no visitor
    with bound(visitor(client)):
        jobs.put_nowait((with_binding(send_receipt), 1))
    await asyncio.wait_for(jobs.join(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # raises what the job raised, if it did
    assert answers == ["anon-1"]
    assert bound_between_jobs == [None]
    [message] = delivered(client, segment_collector, 1)
    assert (message["event"], message["properties"]) == ("Receipt Sent", {"order_id": 1})
    assert (message["userId"], message["anonymousId"]) == ("42", "anon-1")


async def test_starlette_background_tasks_await_it_for_the_visitor(
    client: Client, segment_collector: CollectorHandle
) -> None:
    background = pytest.importorskip("starlette.background")
    with bound(visitor(client)):
        tasks = background.BackgroundTasks()
        tasks.add_task(with_binding(send_receipt), 2)
    await tasks()
    [message] = delivered(client, segment_collector, 1)
    assert (message["event"], message["properties"]) == ("Receipt Sent", {"order_id": 2})
    assert message["anonymousId"] == "anon-1"


async def test_an_async_generator_runs_each_step_and_its_closing_for_the_visitor(
    client: Client, segment_collector: CollectorHandle
) -> None:
    with bound(visitor(client)):
        numbered_receipts = with_binding(receipts)
    items = numbered_receipts([1, 2, 3])
    assert await anext(items) == 1
    assert current() is None  # bound within each step only
    assert await anext(items) == 2
    await items.aclose()
    assert current() is None
    messages = delivered(client, segment_collector, 3)
    assert [(m["event"], m.get("properties", {}).get("order_id")) for m in messages] == [
        ("Receipt Sent", 1),
        ("Receipt Sent", 2),
        ("Receipts Closed", None),
    ]
    assert {m["anonymousId"] for m in messages} == {"anon-1"}


async def test_it_binds_the_callers_visitor_over_the_one_bound_where_it_is_awaited() -> None:
    with bound(Analytics(anonymous_id="caller")):
        wrapped = with_binding(who)
    awaiting = Analytics(anonymous_id="awaiting")
    with bound(awaiting):
        ran_for = await wrapped()
        assert current() is awaiting
    assert ran_for is not None and ran_for.anonymous_id == "caller"
    assert await with_binding(who)() is None  # wrapped outside a request: unbound


def test_it_stays_an_async_function_wearing_the_functions_name() -> None:
    with bound(Analytics(anonymous_id="a1")):
        wrapped = with_binding(send_receipt)
        generator_function = with_binding(receipts)
    assert inspect.iscoroutinefunction(wrapped)
    assert wrapped.__name__ == "send_receipt"
    assert wrapped.__doc__ == send_receipt.__doc__
    assert wrapped.__wrapped__ is send_receipt  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(send_receipt)
    assert inspect.isasyncgenfunction(generator_function)
    assert generator_function.__wrapped__ is receipts  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(with_binding(send_receipt))  # outside a request


def rows(count: int) -> Iterator[str | None]:
    """Answer, for each row as it is asked for, the visitor it is made for."""
    for _ in range(count):
        found = current()
        yield found.anonymous_id if found is not None else None


def test_a_generator_function_makes_each_row_for_the_visitor_as_it_is_iterated() -> None:
    # A streamed export handed to another thread: each row is made there, later.
    with bound(Analytics(anonymous_id="caller")):
        wrapped = with_binding(rows)
    made = wrapped(2)
    assert next(made) == "caller"
    assert current() is None  # bound within each row only
    assert list(made) == ["caller"]
    assert wrapped.__wrapped__ is rows  # type: ignore[attr-defined]


def test_start_thread_refuses_an_async_function_whose_coroutine_nobody_would_await() -> None:
    from segment_core.scope import start_thread

    with (
        bound(Analytics(anonymous_id="a1")),
        pytest.raises(TypeError, match="send_receipt is async"),
    ):
        start_thread(send_receipt, 1)
    with pytest.raises(TypeError, match="receipts is async"):
        start_thread(receipts, [1])


class SendReceipt:
    """A task object, as apps write them: its ``__call__`` is async."""

    def __init__(self, note: str) -> None:
        self.note = note

    async def __call__(self, order_id: int) -> str | None:
        await asyncio.sleep(0)
        analytics().track("Receipt Sent", {"order_id": order_id, "note": self.note})
        return analytics().anonymous_id


class Receipts:
    """A callable object whose ``__call__`` is an async generator function."""

    async def __call__(self, order_ids: list[int]) -> AsyncGenerator[str | None, None]:
        for _ in order_ids:
            await asyncio.sleep(0)
            found = current()
            yield found.anonymous_id if found is not None else None


class Rows:
    """A callable object whose ``__call__`` is a generator function."""

    def __call__(self, count: int) -> Iterator[str | None]:
        yield from rows(count)


async def test_a_callable_object_whose_call_is_async_runs_bound_in_background_tasks(
    client: Client, segment_collector: CollectorHandle
) -> None:
    background = pytest.importorskip("starlette.background")
    with bound(visitor(client)):
        tasks = background.BackgroundTasks()
        tasks.add_task(with_binding(SendReceipt("object")), 3)
        tasks.add_task(with_binding(functools.partial(SendReceipt("partial"), 4)))
    await tasks()
    messages = delivered(client, segment_collector, 2)
    assert sorted((m["properties"]["order_id"], m["properties"]["note"]) for m in messages) == [
        (3, "object"),
        (4, "partial"),
    ]
    assert {m["anonymousId"] for m in messages} == {"anon-1"}


async def test_a_callable_object_whose_call_is_an_async_generator_is_bound_per_step() -> None:
    with bound(Analytics(anonymous_id="caller")):
        wrapped = with_binding(Receipts())
    assert inspect.isasyncgenfunction(wrapped)
    assert [found async for found in wrapped([1, 2])] == ["caller", "caller"]


def test_a_callable_object_whose_call_is_a_generator_is_bound_per_row() -> None:
    with bound(Analytics(anonymous_id="caller")):
        wrapped = with_binding(Rows())
    assert list(wrapped(2)) == ["caller", "caller"]


def test_start_thread_refuses_a_callable_object_or_partial_whose_call_is_async() -> None:
    from segment_core.scope import start_thread

    for task in (SendReceipt("x"), functools.partial(SendReceipt("x"), 1), Receipts()):
        with pytest.raises(TypeError, match="is async"):
            start_thread(task, 1)
