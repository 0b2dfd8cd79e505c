"""A small recording HTTP server on loopback for wire-level tests of the client.

It keeps every request (headers, raw and decoded body) and answers from a plan
of faults given by the test: a status (with Retry-After), a delay, an answer held
until the test releases it, or a closed connection. The collector is the full
receiver; this one exposes raw requests.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: What the receiver answers a fault with, in Segment's form of an error; errors and
#: log lines show its message.
FAULT_MESSAGE = "a fault of the test"
FAULT_BODY = json.dumps({"code": "fault", "message": FAULT_MESSAGE})


@dataclass
class Fault:
    status: int = 200
    retry_after: str | None = None
    close: bool = False
    delay: float = 0.0
    #: Answered only once this is set (a receiver that holds its senders until told).
    hold: threading.Event | None = None


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]

    @property
    def batch(self) -> list[dict[str, Any]]:
        return list(self.body.get("batch", []))


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[Request] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    #: Requests that reached a fault's ``hold`` (answered or not).
    held: int = 0

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def ok_requests(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.headers.get("x-test-status") == "200"]

    def messages(self) -> list[dict[str, Any]]:
        """Messages of the requests that were answered 200, in arrival order."""
        return [m for r in self.ok_requests() for m in r.batch]

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                got = [
                    m
                    for r in self.requests
                    if r.headers.get("x-test-status") == "200"
                    for m in r.batch
                ]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} messages, got {len(got)}")
                self.changed.wait(remaining)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with receiver.lock:
                fault = receiver.faults.popleft() if receiver.faults else Fault()
            if fault.delay:
                time.sleep(fault.delay)  # the server's behaviour under test, not a wait
            if fault.hold is not None:
                with receiver.lock:
                    receiver.held += 1
                fault.hold.wait(60)
            if fault.close:
                self.close_connection = True
                self.connection.close()
                return
            data = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            headers = {k.lower(): v for k, v in self.headers.items()}
            headers["x-test-status"] = str(fault.status)
            request = Request(self.path, headers, raw, json.loads(data))
            # Recorded before answering, so a client that saw the answer finds it here.
            with receiver.changed:
                receiver.requests.append(request)
                receiver.changed.notify_all()
            body = b'{"success": true}' if fault.status == 200 else FAULT_BODY.encode()
            self.send_response(fault.status)
            if fault.retry_after is not None:
                self.send_header("Retry-After", fault.retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True, name="test-receiver").start()
    return receiver
