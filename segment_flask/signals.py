"""The extension's blinker signal, in segment_core's namespace.

- ``page_tracked(app, message=dict)``: the automatic page call for a request was
  made; ``message`` is what the client accepted (or refused, when disabled).

::

    from segment_flask.signals import page_tracked

    @page_tracked.connect_via(app)
    def on_page(app, message):
        app.logger.debug("page %s", message["name"])
"""

from __future__ import annotations

from segment_core.signals import namespace

__all__ = ["page_tracked"]

page_tracked = namespace.signal("page_tracked")
