"""A bounded loopback HTTP/1.1 load generator (asyncio, keep-alive connections).

    python benchmarks/loadgen.py http://127.0.0.1:8000/ --connections 16 --requests 20000

Sends GET requests over ``--connections`` keep-alive connections until
``--requests`` have completed or ``--duration`` seconds have passed, whichever
comes first, and prints requests/s. Used by the adapter benchmarks to compare an
app with and without the middleware in the same run; it targets loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

#: What every request carries by default, besides ``Host``: a client that says little.
PLAIN_HEADERS = {"User-Agent": "Mozilla/5.0 loadgen", "Accept": "text/html"}


def browser_headers(netloc: str) -> dict[str, str]:
    """What Chrome 131 sends, besides ``Host``, when a link of ``netloc``'s page is followed.

    A new visitor's navigation within the site: its client hints, fetch metadata,
    languages and a same-site ``Referer`` with a query string.
    """
    return {
        "sec-ch-ua": '"Chromium";v="131", "Not_A Brand";v="24"',
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": '"Linux"',
        "Upgrade-Insecure-Requests": "1",
        "User-Agent": (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36"
        ),
        "Accept": (
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
            "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
        ),
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-User": "?1",
        "Sec-Fetch-Dest": "document",
        "Referer": f"http://{netloc}/?page=2",
        "Accept-Encoding": "gzip, deflate, br, zstd",
        "Accept-Language": "en-US,en;q=0.9",
    }


def request_headers(netloc: str, *, browser: bool = False) -> Mapping[str, str]:
    """The headers besides ``Host`` of a request to ``netloc``: plain, or a browser's."""
    return browser_headers(netloc) if browser else PLAIN_HEADERS


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def _connection(
    host: str, port: int, request: bytes, budget: list[int], deadline: float, counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            writer.write(request)
            status, keep_alive = await _read_response(reader)
            counts[0 if status < 400 else 1] += 1
            if not keep_alive:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    keep_alive = lines[0].startswith(b"HTTP/1.1")
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection":
            keep_alive = value == b"keep-alive" or (keep_alive and value != b"close")
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()  # no length: the body ends with the connection
        keep_alive = False
    return status, keep_alive


async def run_load(
    url: str,
    *,
    connections: int,
    requests: int,
    duration: float,
    cookie: str = "",
    browser: bool = False,
) -> Result:
    """Load ``url``; ``browser``: with a browser's headers (:func:`browser_headers`)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadgen targets loopback only")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = request_headers(parts.netloc, browser=browser)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{lines}"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    ).encode()
    budget, counts = [requests], [0, 0]
    started = time.monotonic()
    deadline = started + duration
    await asyncio.gather(
        *(_connection(host, port, request, budget, deadline, counts) for _ in range(connections))
    )
    return Result(counts[0], counts[1], time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description="bounded loopback HTTP load generator")
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--cookie", default="", help="a Cookie header for every request")
    parser.add_argument("--browser", action="store_true", help="send a browser's headers")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(
        run_load(
            args.url,
            connections=args.connections,
            requests=args.requests,
            duration=args.duration,
            cookie=args.cookie,
            browser=args.browser,
        )
    )
    if args.json:
        print(json.dumps({**result.__dict__, "per_second": result.per_second}))
    else:
        print(
            f"{result.requests} ok, {result.errors} errors in {result.seconds:.2f}s: "
            f"{result.per_second:.0f} requests/s"
        )


if __name__ == "__main__":
    main()
