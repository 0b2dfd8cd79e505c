"""A minimal Django project: ``settings`` (with segment_django) for WSGI, and
``settings_asgi`` (without it) for the ASGI handler wrapped by ``SegmentMiddleware``."""
