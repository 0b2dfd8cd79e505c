"""`segment-collector` / `python -m segment_core.collector`: run the local collector."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sqlite3
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from segment_core.collector import require_extra_versions
from segment_core.collector.forward import checked_base_url
from segment_core.collector.guard import allowed_host_name
from segment_core.hosts import check_write_key

if TYPE_CHECKING:
    from segment_core.collector.oauth import OAuthServer

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segment-collector",
        description=(
            "A local Segment-compatible collector: accepts what Segment's HTTP API "
            "accepts, validates every message against the Spec, stores it and shows "
            "it live in a web page."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=8765, help="port to listen on (8765; 0 picks a free one)"
    )
    parser.add_argument("--db", default=None, help="SQLite file to keep events in (in memory)")
    parser.add_argument(
        "--max-events",
        type=_event_count,
        default=None,
        metavar="N",
        help="forget the oldest events beyond N; the summary counts them as 'forgotten' "
        "(100,000 in memory, no limit with --db; 0: no limit)",
    )
    parser.add_argument(
        "--max-bytes",
        type=_byte_count,
        default=None,
        metavar="N",
        help="forget the oldest events while the messages held take more than N bytes "
        "(268435456, 256 MiB, in memory; no limit with --db; 0: no limit)",
    )
    parser.add_argument(
        "--write-key",
        type=_write_key,
        default=None,
        help="require this write key on every route (HTTP Basic user name; the page asks for it)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        type=_allowed_host,
        default=[],
        metavar="NAME",
        help="accept this name in the Host header besides localhost, 127.0.0.1 and [::1] "
        "(repeatable; '*' accepts any)",
    )
    parser.add_argument(
        "--allow-remote-control",
        action="store_true",
        help="let pages of other origins reset the collector and plan faults",
    )
    parser.add_argument(
        "--forward",
        type=_base_url,
        default=None,
        metavar="URL",
        help="relay good batches to this Segment-compatible base URL, best effort",
    )
    parser.add_argument(
        "--oauth-public-key",
        default=None,
        metavar="FILE",
        help="require OAuth access tokens, issued at /token to clients whose RS256 "
        "assertion this PEM public key verifies",
    )
    parser.add_argument(
        "--oauth-token-lifetime",
        type=_positive_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="lifetime of the access tokens issued (3600)",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (warning)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        require_extra_versions()
    except ImportError as error:  # one too old: the version needed and the pip line
        sys.exit(f"segment-collector: {error}")
    try:
        from segment_core.collector.app import create_app
        from segment_core.collector.background import CollectorServer, bind_socket, local_url
    except ModuleNotFoundError as error:
        sys.exit(
            f"segment-collector: {error.name or 'a dependency'} is not installed; "
            "install the collector extra: pip install 'segment-web[collector]'"
        )
    except ImportError as error:  # installed, but it fails to import: its own words
        sys.exit(f"segment-collector: a dependency fails to import: {error}")
    oauth = _oauth_server(args.oauth_public_key, args.oauth_token_lifetime)
    try:
        app = create_app(
            write_key=args.write_key,
            db=args.db,
            forward=args.forward,
            allowed_hosts=args.allowed_host,
            allow_remote_control=args.allow_remote_control,
            oauth=oauth,
            max_events=args.max_events,
            max_bytes=args.max_bytes,
        )
    except (OSError, sqlite3.Error) as error:
        sys.exit(f"segment-collector: --db {args.db}: {error}")
    # Bound once the arguments are known good: a bad one is named whatever holds the port.
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as error:
        sys.exit(f"segment-collector: cannot listen on {args.host}:{args.port}: {error}")
    wildcard = args.host in ("0.0.0.0", "::", "")
    url = local_url(args.host, sock.getsockname()[1])
    server = CollectorServer(app, log_level=args.log_level)
    # Ctrl-C: a stop like any other, also once the URL is out but before the server
    # runs (a script that read the line may stop it at once). Asked of the server by
    # a handler of its own, not by KeyboardInterrupt, which Python drops when it lands
    # in a finalizer or a weakref callback.
    with contextlib.suppress(ValueError):  # (not the main thread: Ctrl-C is not ours)
        signal.signal(signal.SIGINT, server.handle_exit)
    with contextlib.suppress(KeyboardInterrupt):
        print(f"segment-collector listening on {url} (open it in a browser)", flush=True)
        if wildcard and not args.allowed_host:
            print(
                "segment-collector: requests must name it by localhost, 127.0.0.1, [::1] or an "
                "address of this machine; to reach it by another name, add --allowed-host NAME",
                file=sys.stderr,
                flush=True,
            )
        server.run(sockets=[sock])


def _port(text: str) -> int:
    """A TCP port for argparse: 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {port}")
    return port


def _write_key(text: str) -> str:
    """A write key a client can send as HTTP Basic's user name, for argparse."""
    try:
        check_write_key(text)
    except ValueError as error:
        problem = str(error).replace("write_key", "a write key", 1)
        raise argparse.ArgumentTypeError(problem) from None
    return text


def _allowed_host(text: str) -> str:
    """A name for the Host check, for argparse (see guard.allowed_host_name)."""
    try:
        return allowed_host_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _event_count(text: str) -> int:
    """A number of events for argparse: a whole number, 0 or more."""
    return _count(text, "events")


def _byte_count(text: str) -> int:
    """A number of bytes for argparse: a whole number, 0 or more."""
    return _count(text, "bytes")


def _count(text: str, unit: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"a number of {unit}, 0 for no limit; got {count}")
    return count


def _positive_seconds(text: str) -> float:
    """A duration for argparse: a finite number of seconds greater than 0."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"a number of seconds greater than 0, got {text!r}")
    return seconds


def _base_url(text: str) -> str:
    """An http(s) URL with a host, for argparse."""
    try:
        return checked_base_url(text)
    except ValueError as error:  # its reason, with any password masked
        raise argparse.ArgumentTypeError(str(error)) from None


def _oauth_server(path: str | None, lifetime: float) -> OAuthServer | None:
    if path is None:
        return None
    from segment_core.collector.oauth import OAuthServer

    try:
        with open(path, "rb") as file:
            return OAuthServer(file.read(), token_lifetime=lifetime)
    except (OSError, ValueError) as error:
        sys.exit(f"segment-collector: --oauth-public-key {path}: {error}")


if __name__ == "__main__":
    main()
