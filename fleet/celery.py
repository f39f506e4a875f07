"""The Celery application. Configuration comes from Django settings under the CELERY_ namespace."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from fleet import log_filters

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")

app = Celery("fleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["fleet", "fleet.pipeline"])


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_secrets(logger: logging.Logger, **kwargs: object) -> None:
    """Celery replaces the root logger's handlers with its own: they mask secrets too."""
    log_filters.install(logger.handlers)
