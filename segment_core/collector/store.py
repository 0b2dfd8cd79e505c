"""SQLite storage for received messages: one connection, guarded by a lock.

Each stored message is keyed by its messageId; a second message with the same id
is not stored again but counted as a duplicate of its type. Events come back in
arrival order, oldest first, each with a `seq` cursor that only grows (also across
`reset`, and past forgotten events), so a reader can ask for "everything after
seq N".

A long run is bounded by `max_events` and by `max_bytes` (of stored messages): beyond
either the oldest events are forgotten. The counts still include them (a run with
bad events says so after those events are gone), and `forgotten` says how many the
store no longer holds.

Counts are kept by the Spec's six types; any other `type` (or none) is counted as
"unknown", so a client sending many made-up types (a fuzzer, event names put in
`type`) grows neither the counts nor the summary every page receives. The stored
message keeps the type it was sent with.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from segment_core.collector._json import loads
from segment_core.spec import MESSAGE_TYPES

__all__ = [
    "DEFAULT_MAX_BYTES_IN_MEMORY",
    "DEFAULT_MAX_EVENTS_IN_MEMORY",
    "DEFAULT_QUERY_LIMIT",
    "MAX_QUERY_LIMIT",
    "EventQuery",
    "EventRecord",
    "EventStore",
]

DEFAULT_QUERY_LIMIT = 1000
MAX_QUERY_LIMIT = 100_000
#: Events kept in memory by default: some 40-80 MB of typical events.
DEFAULT_MAX_EVENTS_IN_MEMORY = 100_000
#: Message bytes kept in memory by default: large events are bounded by it first.
DEFAULT_MAX_BYTES_IN_MEMORY = 256 * 1024 * 1024
UNKNOWN_TYPE = "unknown"
#: Rows read under the lock at a time by a query: ingest waits for no more.
_ROWS_AT_A_TIME = 500
_COUNTED_TYPES = frozenset(MESSAGE_TYPES)
# The `type` column as counted: `_counted_type` in SQL.
_SPEC_TYPES_SQL = ", ".join(f"'{kind}'" for kind in MESSAGE_TYPES)
_COUNTED_TYPE_SQL = f"CASE WHEN type IN ({_SPEC_TYPES_SQL}) THEN type ELSE '{UNKNOWN_TYPE}' END"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    type TEXT,
    event TEXT,
    user_id TEXT,
    anonymous_id TEXT,
    status TEXT NOT NULL,
    reasons BLOB NOT NULL,
    received_at TEXT NOT NULL,
    sent_at TEXT,
    write_key TEXT,
    write_key_source TEXT,
    endpoint TEXT NOT NULL,
    message BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS duplicates (
    type TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS forgotten (
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (type, status)
);
"""
_COLUMNS = (
    "seq, message_id, status, reasons, received_at, sent_at, write_key, "
    "write_key_source, endpoint, message"
)


@dataclass(frozen=True)
class EventRecord:
    """One message ready to store; `message` is its serialized JSON."""

    message_id: str
    type: str | None
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    reasons: tuple[str, ...]
    received_at: str
    sent_at: str | None
    write_key: str | None
    write_key_source: str | None
    endpoint: str
    message: bytes
    #: Whether ``--forward`` relays it: a good one, or one bad only by the type of a
    #: reserved trait (Segment takes it; see ``spec.reserved_field_problems``).
    relayable: bool = True

    @property
    def status(self) -> str:
        return "bad" if self.reasons else "good"


@dataclass(frozen=True)
class EventQuery:
    """Filters for `EventStore.query`; None means "any"."""

    type: str | None = None
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    status: str | None = None
    after: int = 0
    #: None: `last` events when `last` is given, else DEFAULT_QUERY_LIMIT.
    limit: int | None = None
    last: int | None = None


class EventStore:
    """Stores events in SQLite (in memory unless given a file path).

    `max_events`: how many events to hold; `max_bytes`: how many bytes of messages.
    Beyond either the oldest are forgotten. None: 100,000 events and 256 MiB in
    memory, no limit in a file; 0: no limit.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        max_events: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.max_events = _bound(
            max_events, "max_events", "events", path, DEFAULT_MAX_EVENTS_IN_MEMORY
        )
        self.max_bytes = _bound(max_bytes, "max_bytes", "bytes", path, DEFAULT_MAX_BYTES_IN_MEMORY)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        if path:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(_SCHEMA)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._duplicates: Counter[str] = Counter()
        self._last_seq = 0
        self._held = 0
        self._held_bytes = 0
        self._forgotten = 0
        self._generation = 0
        self._load_counts()

    @property
    def last_seq(self) -> int:
        """The cursor of the newest event stored (0 when none ever was)."""
        return self._last_seq

    @property
    def generation(self) -> int:
        """How many times the store was reset; a request notes it as it arrives."""
        return self._generation

    def add(self, records: list[EventRecord], *, generation: int | None = None) -> bool:
        """Store `records` (a duplicate is counted, not stored); False, storing
        nothing, when the store was reset since `generation` (its request arrived
        before the reset, and the reset forgot everything before it)."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return False
            stored = 0
            cursor = self._connection.cursor()
            cursor.execute("BEGIN")
            try:
                for record in records:
                    cursor.execute(
                        "INSERT OR IGNORE INTO events (message_id, type, event, user_id, "
                        "anonymous_id, status, reasons, received_at, sent_at, write_key, "
                        "write_key_source, endpoint, message) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.message_id,
                            record.type,
                            record.event,
                            record.user_id,
                            record.anonymous_id,
                            record.status,
                            orjson.dumps(record.reasons),
                            record.received_at,
                            record.sent_at,
                            record.write_key,
                            record.write_key_source,
                            record.endpoint,
                            record.message,
                        ),
                    )
                    type_key = _counted_type(record.type)
                    if cursor.rowcount == 1:
                        stored += 1
                        self._held_bytes += len(record.message)
                        self._counts[(type_key, record.status)] += 1
                        self._last_seq = cursor.lastrowid or self._last_seq
                    else:
                        self._duplicates[type_key] += 1
                        cursor.execute(
                            "INSERT INTO duplicates (type, count) VALUES (?, 1) "
                            "ON CONFLICT (type) DO UPDATE SET count = count + 1",
                            (type_key,),
                        )
                self._held += stored
                if self._over_bounds():
                    self._forget_oldest(cursor)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                self._load_counts_locked()
                raise
        return True

    def _over_bounds(self) -> bool:
        return bool(self.max_events and self._held > self.max_events) or bool(
            self.max_bytes and self._held_bytes > self.max_bytes
        )

    def _forget_oldest(self, cursor: sqlite3.Cursor) -> None:
        """Delete the oldest events until both bounds hold again, keeping their
        counts (under the lock); never the newest, even one past ``max_bytes`` alone."""
        excess_events = self._held - self.max_events if self.max_events else 0
        excess_bytes = self._held_bytes - self.max_bytes if self.max_bytes else 0
        newest_forgotten = forgotten_bytes = 0
        # The oldest first, by the primary key: only the rows to forget are read.
        rows = cursor.execute(
            "SELECT seq, LENGTH(message) FROM events "
            "WHERE seq < (SELECT MAX(seq) FROM events) ORDER BY seq"
        )
        for seq, size in rows:
            if excess_events <= 0 and excess_bytes <= 0:
                break
            newest_forgotten = seq
            forgotten_bytes += size
            excess_events -= 1
            excess_bytes -= size
        # Their counts live on in `forgotten`, so a file reopened counts them too.
        cursor.execute(
            "INSERT INTO forgotten (type, status, count) "
            f"SELECT {_COUNTED_TYPE_SQL}, status, COUNT(*) FROM events WHERE seq <= ? "
            "GROUP BY 1, 2 "
            "ON CONFLICT (type, status) DO UPDATE SET count = count + excluded.count",
            (newest_forgotten,),
        )
        cursor.execute("DELETE FROM events WHERE seq <= ?", (newest_forgotten,))
        self._held -= cursor.rowcount
        self._held_bytes -= forgotten_bytes
        self._forgotten += cursor.rowcount

    def query(self, query: EventQuery) -> list[dict[str, Any]]:
        """Events matching `query`, oldest first."""
        return [_row_to_event(row) for rows in self._matching_rows(query) for row in rows]

    def query_json(self, query: EventQuery) -> Iterator[tuple[list[bytes], int]]:
        """Events matching `query`, oldest first, a few hundred at a time: each as its
        JSON object, and the `seq` of the last of them.

        The store is locked only while they are read, so a long answer never holds
        up the events arriving meanwhile; each message is written as it was stored,
        without being read again.
        """
        for rows in self._matching_rows(query):
            yield [_row_to_json(row) for row in rows], rows[-1][0]

    def _matching_rows(self, query: EventQuery) -> Iterator[list[tuple[Any, ...]]]:
        """The rows `query` asks for, oldest first, at most `_ROWS_AT_A_TIME` per list.

        A reset made meanwhile ends them: it forgot everything not read yet.
        """
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("type", query.type),
            ("event", query.event),
            ("user_id", query.user_id),
            ("anonymous_id", query.anonymous_id),
            ("status", query.status),
        ):
            if value is None:
                continue
            if column == "type" and value == UNKNOWN_TYPE:  # as the summary counts them
                clauses.append(f"{_COUNTED_TYPE_SQL} = ?")
            else:
                clauses.append(f"{column} = ?")
            params.append(value)
        where = " AND ".join(["seq > ?", *clauses])
        after = query.after
        with self._lock:
            generation = self._generation
            if query.last is None:
                wanted = DEFAULT_QUERY_LIMIT if query.limit is None else query.limit
            else:
                # The newest `last`: read oldest first from just before the first of them.
                wanted = query.last if query.limit is None else min(query.last, query.limit)
                if wanted > 0:
                    first = self._connection.execute(
                        f"SELECT seq FROM events WHERE {where} ORDER BY seq DESC LIMIT 1 OFFSET ?",
                        [after, *params, wanted - 1],
                    ).fetchone()
                    after = after if first is None else first[0] - 1
        sql = f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY seq LIMIT ?"
        while wanted > 0:
            with self._lock:
                if self._generation != generation:
                    return
                rows = self._connection.execute(
                    sql, [after, *params, min(wanted, _ROWS_AT_A_TIME)]
                ).fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]
            wanted -= len(rows)

    def get(self, message_id: str) -> dict[str, Any] | None:
        """The event stored under `message_id`, or None."""
        with self._lock:
            row = self._connection.execute(
                f"SELECT {_COLUMNS} FROM events WHERE message_id = ?", (message_id,)
            ).fetchone()
        return None if row is None else _row_to_event(row)

    def summary(self) -> dict[str, Any]:
        """Counts of good, bad and duplicate messages, in total and by type.

        By the Spec's types, and "unknown" for any other (see the module docstring).
        """
        with self._lock:
            counts = dict(self._counts)
            duplicate_counts = dict(self._duplicates)
            last_seq = self._last_seq
            forgotten = self._forgotten
        by_type: dict[str, dict[str, int]] = {}
        for type_key in sorted({key for key, _ in counts} | set(duplicate_counts)):
            good = counts.get((type_key, "good"), 0)
            bad = counts.get((type_key, "bad"), 0)
            by_type[type_key] = {
                "total": good + bad,
                "good": good,
                "bad": bad,
                "duplicates": duplicate_counts.get(type_key, 0),
            }
        good = sum(entry["good"] for entry in by_type.values())
        bad = sum(entry["bad"] for entry in by_type.values())
        return {
            "total": good + bad,
            "good": good,
            "bad": bad,
            "duplicates": sum(duplicate_counts.values()),
            "by_type": by_type,
            "last_seq": last_seq,
            "forgotten": forgotten,
        }

    def reset(self) -> None:
        """Forget every event and duplicate count (cursors keep growing)."""
        with self._lock:
            self._connection.execute("DELETE FROM events")
            self._connection.execute("DELETE FROM duplicates")
            self._connection.execute("DELETE FROM forgotten")
            self._counts.clear()
            self._duplicates.clear()
            self._held = self._held_bytes = self._forgotten = 0
            self._generation += 1

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def _load_counts(self) -> None:
        with self._lock:
            self._load_counts_locked()

    def _load_counts_locked(self) -> None:
        connection = self._connection
        held: Counter[tuple[str, str]] = Counter()
        for type_key, status, count in connection.execute(
            f"SELECT {_COUNTED_TYPE_SQL}, status, COUNT(*) FROM events GROUP BY 1, 2"
        ):
            held[(type_key, status)] += count
        # A file written by an earlier version may hold any type here.
        forgotten: Counter[tuple[str, str]] = Counter()
        for type_key, status, count in connection.execute(
            "SELECT type, status, count FROM forgotten"
        ):
            forgotten[(_counted_type(type_key), status)] += count
        duplicates: Counter[str] = Counter()
        for type_key, count in connection.execute("SELECT type, count FROM duplicates"):
            duplicates[_counted_type(type_key)] += count
        self._held = sum(held.values())
        (self._held_bytes,) = connection.execute(
            "SELECT COALESCE(SUM(LENGTH(message)), 0) FROM events"
        ).fetchone()
        self._forgotten = sum(forgotten.values())
        self._counts = held + forgotten
        self._duplicates = duplicates
        row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        self._last_seq = int(row[0]) if row else 0


def _bound(value: int | None, name: str, unit: str, path: str | None, in_memory: int) -> int:
    """A store bound as given, checked; None: `in_memory` in memory, no limit (0) in a file."""
    if value is None:
        return 0 if path else in_memory
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number of {unit}, 0 for no limit; got {value!r}")
    return value


def _counted_type(kind: str | None) -> str:
    """The type a message is counted under: its own when the Spec has it, else "unknown"."""
    if kind is not None and kind in _COUNTED_TYPES:
        return kind
    return UNKNOWN_TYPE


def _row_to_json(row: tuple[Any, ...]) -> bytes:
    """A row as `_row_to_event` makes it, in JSON: its message spliced in as stored."""
    fields = _row_to_event(row, with_message=False)
    return b"".join((orjson.dumps(fields)[:-1], b',"message":', row[-1], b"}"))


def _row_to_event(row: tuple[Any, ...], *, with_message: bool = True) -> dict[str, Any]:
    (
        seq,
        message_id,
        status,
        reasons,
        received_at,
        sent_at,
        write_key,
        write_key_source,
        endpoint,
        message,
    ) = row
    event = {
        "seq": seq,
        "messageId": message_id,
        "status": status,
        "reasons": orjson.loads(reasons),
        "receivedAt": received_at,
        "sentAt": sent_at,
        "writeKey": write_key,
        "writeKeySource": write_key_source,
        "endpoint": endpoint,
    }
    if with_message:
        event["message"] = loads(message)
    return event
