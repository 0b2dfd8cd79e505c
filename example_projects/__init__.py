"""Example apps (``django_shop``, ``flask_blog``, ``fastapi_api``) and the demo that runs them.

Each app lives in its own directory and runs from there, as a user's project
would; this package holds only the demo (``python -m example_projects.demo``)
and the helpers it shares with the end-to-end tests.
"""
