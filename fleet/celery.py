"""The Celery application. Configuration comes from Django settings under the CELERY_ namespace."""

from __future__ import annotations

import os
import warnings

from celery import Celery
from celery.exceptions import SecurityWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")

# `rundemo` run as root (a container) sets this: Celery warns about root on every start even when, as
# here, it accepts only JSON (it refuses pickle as root by itself), and the demo's data folder belongs
# to root, so the worker cannot drop to another user. Anywhere else the warning stays.
if os.environ.get("FLEET_WORKER_AS_ROOT") == "1":
    warnings.filterwarnings("ignore", category=SecurityWarning)

app = Celery("fleet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
