"""The Celery application. Configuration comes from Django settings under the CELERY_ namespace."""

from __future__ import annotations

import logging
import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning
from celery.signals import after_setup_logger, after_setup_task_logger

from fleet import log_filters

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")

# `rundemo` run as root (a container) sets this: Celery warns about root on every start even when, as
# here, it accepts only JSON (it refuses pickle as root by itself), and the demo's data folder belongs
# to root, so the worker cannot drop to another user. Anywhere else the warning stays.
if os.environ.get("FLEET_WORKER_AS_ROOT") == "1":
    warnings.filterwarnings("ignore", category=SecurityWarning)

app = Celery("fleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["fleet", "fleet.pipeline", "fleet.alerts"])


@after_setup_logger.connect
@after_setup_task_logger.connect
def _mask_secrets(logger: logging.Logger, **kwargs: object) -> None:
    """Celery replaces the root logger's handlers with its own: they mask secrets too."""
    log_filters.install(logger.handlers)
