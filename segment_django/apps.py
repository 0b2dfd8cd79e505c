"""The Django app: registers the system checks and follows settings changes."""

from __future__ import annotations

from django.apps import AppConfig


class SegmentConfig(AppConfig):
    name = "segment_django"
    verbose_name = "Segment"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.core import checks
        from django.core.signals import setting_changed

        from segment_django import conf
        from segment_django.checks import check_settings
        from segment_django.login import identify_on_login

        checks.register(check_settings)
        setting_changed.connect(conf.on_setting_changed, dispatch_uid="segment_django.conf")
        user_logged_in.connect(identify_on_login, dispatch_uid="segment_django.login")
