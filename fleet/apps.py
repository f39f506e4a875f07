from __future__ import annotations

from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "fleet"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the services registers their call-pipeline handlers (fleet.pipeline.handlers) in
        # every process: web, worker and management commands alike. Django's documented place for
        # such registration is ready(); it is not an import dodging a cycle.
        from fleet.accounts import checks  # noqa: F401 - registers the system checks
        from fleet.alerts import service as alerts  # noqa: F401 - connects the alerts' event receivers
        from fleet.commands import tracking  # noqa: F401
        from fleet.mirror import bindings, chargers, sync, writes  # noqa: F401
        from fleet.schedules import service  # noqa: F401
