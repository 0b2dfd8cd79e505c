"""Chords whose header holds chains, on a real worker and Redis broker.

Celery carries such a chord's callback in the options of the chain's last step (or
of the chord the chain ends with), and the header task that finishes last
publishes it: the callback still runs for whoever published the chord.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, chain, chord
from celery.canvas import Signature

from segment_celery import HEADER, SegmentCelery
from segment_core.scope import Analytics, bound
from tests.celery.test_worker import APP, VISITOR, worker_env
from tests.workers import CELERY_READY, celery_argv, running_worker

pytestmark = [
    pytest.mark.slow,
    # A chord finalizes the publishing app, which takes on the shared tasks other
    # tests made (each test's own, under one name).
    pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning"),
]

#: One header job per user, each published with its own visitor.
USERS = [Analytics(user_id=f"user-{n}", anonymous_id=f"anon-{n}") for n in range(2)]


@pytest.fixture
def publisher(redis_db: str) -> Iterator[Celery]:
    """A Celery app in this process that publishes to the test's Redis."""
    app = Celery("publisher", broker=redis_db, backend=redis_db, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    SegmentCelery(app)
    yield app
    app.close()


def test_a_chord_of_chains_runs_its_callback_for_who_published_it(
    segment_collector: Any, publisher: Celery, redis_db: str, tmp_path: Path
) -> None:
    def part(label: str) -> Signature:
        return publisher.signature(f"{APP}.track_part", args=(label,), immutable=True)

    def summary(label: str) -> Signature:
        return publisher.signature(f"{APP}.track_summary", args=(label,))

    def chains(prefix: str) -> list[Signature]:
        return [
            chain(part(f"{prefix}-first-{n}"), part(f"{prefix}-{n}")).set(
                headers={HEADER: user.snapshot()}
            )
            for n, user in enumerate(USERS)
        ]

    def chains_ending_in_a_chord() -> list[Signature]:
        return [
            chain(
                part(f"lead-{n}"),
                chord([part(f"leaf-{n}-{m}") for m in range(2)], summary(f"inner-{n}")),
            ).set(headers={HEADER: user.snapshot()})
            for n, user in enumerate(USERS)
        ]

    env = worker_env(segment_collector.url, redis_db)
    argv = celery_argv(APP, "--pool", "threads", "--concurrency", "3")
    with running_worker("celery", argv, env=env, log_dir=tmp_path, ready=CELERY_READY) as worker:
        chord(chains("nightly"), app=publisher)(summary("nightly"))  # outside a request
        with bound(VISITOR):  # an admin's request publishes one
            chord(chains("requested"), app=publisher)(summary("requested"))
        chord(chains_ending_in_a_chord(), app=publisher)(summary("outer"))
        events = segment_collector.wait_for(19, timeout=30, type="track")
        assert worker.stop() == 0
    by_label = {e["message"]["properties"]["label"]: e["message"] for e in events}
    assert len(by_label) == 19
    nightly = by_label["nightly"]  # unbound, as its publisher
    assert (nightly.get("userId"), nightly["anonymousId"]) == (None, "unbound")
    assert nightly["properties"]["parts"] == ["nightly-0", "nightly-1"]
    requested = by_label["requested"]
    assert (requested["userId"], requested["anonymousId"]) == ("user-42", "anon-42")
    outer = by_label["outer"]
    assert (outer.get("userId"), outer["anonymousId"]) == (None, "unbound")
    assert outer["properties"]["parts"] == ["inner-0", "inner-1"]
    for n in range(2):
        # Each chain's steps, and the chord it ends with, act for the chain's user.
        steps = [
            f"{prefix}-{step}{n}" for prefix in ("nightly", "requested") for step in ("first-", "")
        ]
        for label in [*steps, f"lead-{n}", f"leaf-{n}-0", f"leaf-{n}-1", f"inner-{n}"]:
            assert by_label[label]["userId"] == f"user-{n}", label
