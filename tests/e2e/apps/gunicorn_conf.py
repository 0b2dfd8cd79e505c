"""gunicorn settings as the README documents them: deliver events as each worker exits."""

from segment_core.lifecycle import worker_exit

__all__ = ["worker_exit"]
