"""Fixtures shared by the Celery and RQ tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from example_projects._redis import running_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server on a free loopback port, for the whole session."""
    with running_redis(Path(tmp_path_factory.mktemp("redis"))) as url:
        yield url


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """``redis_url``, emptied before the test."""
    import redis

    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    connection.close()
    yield redis_url
