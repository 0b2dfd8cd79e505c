"""A client's settings as read-only attributes, under analytics-python's names too.

``client.write_key``, ``client.flush_at``, ``client.timeout``, ... read the validated
:class:`Config`: every option under its own name, and analytics-python's aliases.
They cannot be assigned: the sender threads, the connection pool and the batching
already use the settings, so changing one would be half applied. Build a new client
with other options instead. Other attributes are the caller's (a subclass's own,
``unittest.mock.patch.object(client, "track")``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from segment_core.config import (
    ALIASES,
    Backoff,
    BeforeSend,
    Clock,
    Config,
    ErrorHandler,
    FailureHook,
    IdGenerator,
    MessageHook,
    _unknown_option_message,
    option_names,
)

__all__ = ["ClientSettings"]

#: What ``client.<name> = ...`` is refused as: a setting, under its name or an alias.
_SETTING_NAMES = option_names() | set(ALIASES)


class ClientSettings:
    """Read-only views of :attr:`config`, mixed into :class:`Client`."""

    config: Config

    def __setattr__(self, name: str, value: object) -> None:
        # Client.__init__ sets ``config`` with object.__setattr__.
        if name.startswith("_") or not _is_setting_like(name):
            object.__setattr__(self, name, value)
            return
        raise AttributeError(_assignment_refused(name, known=hasattr(self, name)))

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
        return self.config.max_rate_limit_duration

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

    @property
    def flush_at(self) -> int:
        return self.config.flush_at

    @property
    def flush_interval(self) -> float:
        return self.config.flush_interval

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size

    @property
    def retry_after(self) -> float | None:
        return self.config.retry_after

    @property
    def retry_backoff_min(self) -> float:
        return self.config.retry_backoff_min

    @property
    def retry_backoff_max(self) -> float:
        return self.config.retry_backoff_max

    @property
    def default_context(self) -> Mapping[str, Any] | None:
        return self.config.default_context

    @property
    def default_integrations(self) -> Mapping[str, Any] | None:
        return self.config.default_integrations

    @property
    def shutdown_timeout(self) -> float:
        return self.config.shutdown_timeout

    @property
    def before_send(self) -> BeforeSend | None:
        return self.config.before_send

    @property
    def max_in_flight(self) -> int:
        return self.config.max_in_flight

    @property
    def log_handler(self) -> logging.Handler | None:
        return self.config.log_handler

    @property
    def on_success(self) -> MessageHook | None:
        return self.config.on_success

    @property
    def on_failure(self) -> FailureHook | None:
        return self.config.on_failure

    @property
    def backoff(self) -> Backoff | None:
        return self.config.backoff

    @property
    def now(self) -> Clock | None:
        return self.config.now

    @property
    def uid(self) -> IdGenerator | None:
        return self.config.uid

    @property
    def oauth_client_key(self) -> str | bytes | None:
        return self.config.oauth_client_key

    @property
    def spool_dir(self) -> str | None:
        return self.config.spool_dir

    @property
    def spool_max_bytes(self) -> int:
        return self.config.spool_max_bytes

    @property
    def spool_fsync(self) -> str:
        return self.config.spool_fsync

    @property
    def thread(self) -> int:
        """analytics-python's name for :attr:`Config.max_in_flight`."""
        return self.config.max_in_flight


def _is_setting_like(name: str) -> bool:
    """A setting's name, an alias, or ``config``."""
    return name in _SETTING_NAMES or name == "config"


def _assignment_refused(name: str, *, known: bool) -> str:
    """Why ``client.<name> = ...`` raises, and what to do instead."""
    rebuild = "a client's settings are read-only: build a new Client with other options"
    if name in _SETTING_NAMES:
        return (
            f"client.{name} is read-only: the sender threads already use it; "
            f"build a new Client({name}=...) to change it"
        )
    if known:
        return f"client.{name} cannot be assigned; {rebuild}"
    return f"client.{name} cannot be assigned ({_unknown_option_message(name)}); {rebuild}"
