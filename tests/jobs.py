"""Names shared by the job workers the tests run and the tests that check them."""

from __future__ import annotations

#: The Redis set each job adds its number to, after tracking.
DONE = "done"
#: The event each numbered job tracks.
TASK_EVENT = "Task Done"
#: The Redis set each looping job adds its number to once its time limit stopped it.
STOPPED = "stopped"
#: Client options of the workers whose exits are tested: events wait in the
#: buffer until the process exits (so what arrives, the exit path delivered),
#: and the exit flush has a deadline generous enough for a busy machine.
HOLD_UNTIL_EXIT = {"flush_at": 2500, "flush_interval": 3600, "shutdown_timeout": 30}
#: How long a worker may take to stop once signalled (it flushes as it goes).
WORKER_STOP_TIMEOUT = 90.0

#: The Redis list a job appends the state of the library's logger to ("on", "off").
LOGGER_STATES = "segment-logger-states"
