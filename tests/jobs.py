"""Names shared by the job workers the tests run and the tests that check them."""

from __future__ import annotations

#: The Redis set each job adds its number to, after tracking.
DONE = "done"
#: The event each numbered job tracks.
TASK_EVENT = "Task Done"
