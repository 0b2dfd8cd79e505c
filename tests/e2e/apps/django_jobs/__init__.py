"""A Django site whose work leaves the request: Celery tasks, threads, a command."""
