"""A client's settings as read-only attributes, under analytics-python's names too.

``client.write_key``, ``client.host``, ``client.timeout``, ... read the validated
:class:`Config`. They cannot be assigned: the sender threads, the connection pool and
the batching already use them, so changing one would be half applied. Build a new
client with other options instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from segment_core.config import Config, ErrorHandler

__all__ = ["ClientSettings"]


class ClientSettings:
    """Read-only views of :attr:`config`, mixed into :class:`Client`."""

    config: Config

    @property
    def write_key(self) -> str | None:
        return self.config.write_key

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def gzip(self) -> bool:
        return self.config.gzip

    @property
    def send(self) -> bool:
        return self.config.send

    @property
    def sync_mode(self) -> bool:
        return self.config.sync_mode

    @property
    def debug(self) -> bool:
        return self.config.debug

    @property
    def timeout(self) -> float:
        return self.config.timeout

    @property
    def max_retries(self) -> int:
        return self.config.max_retries

    @property
    def max_queue_size(self) -> int:
        return self.config.max_queue_size

    @property
    def on_error(self) -> ErrorHandler | None:
        return self.config.on_error

    @property
    def proxies(self) -> Mapping[str, str] | None:
        return self.config.proxies

    @property
    def max_total_backoff_duration(self) -> float:
        return self.config.max_total_backoff_duration

    @property
    def max_rate_limit_duration(self) -> float:
        """analytics-python's name for the longest ``Retry-After`` honoured."""
        return self.config.max_retry_after

    @property
    def upload_size(self) -> int:
        """analytics-python's name for :attr:`Config.max_batch_size`."""
        return self.config.max_batch_size

    @property
    def upload_interval(self) -> float:
        """analytics-python's name for :attr:`Config.flush_interval`."""
        return self.config.flush_interval

    @property
    def oauth_client_id(self) -> str | None:
        return self.config.oauth_client_id

    @property
    def oauth_key_id(self) -> str | None:
        return self.config.oauth_key_id

    @property
    def oauth_auth_server(self) -> str:
        return self.config.oauth_auth_server

    @property
    def oauth_scope(self) -> str:
        return self.config.oauth_scope
