from __future__ import annotations

from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "fleet"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the services registers their call-pipeline handlers (fleet.calls.register) in
        # every process: web, worker and management commands alike.
        # fleet.checks registers the system checks.
        from fleet import bindings, chargers, checks, command_tracking, commands, mirror, schedules, sync  # noqa: F401
