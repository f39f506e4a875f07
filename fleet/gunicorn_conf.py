"""gunicorn's configuration for the shipped image: ``gunicorn -c python:fleet.gunicorn_conf``.

The access log and gunicorn's error log go through fleet.log_filters.MaskSecrets, so the EV callback
secret in /solax/callback/<secret>/ never reaches a log line (the default access log prints every
request path). Command-line options (``--bind``, ``--workers``) still override these values.
"""

from __future__ import annotations

import os

wsgi_app = "fleet.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
accesslog = "-"

_MASK = ["mask_secrets"]
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "fleet.log_filters.MaskSecrets"}},
    "formatters": {
        "generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
                    "datefmt": "[%Y-%m-%d %H:%M:%S %z]", "class": "logging.Formatter"},
        "access": {"format": "%(message)s", "class": "logging.Formatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stdout",
                    "filters": _MASK},
        "access_console": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout",
                           "filters": _MASK},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stderr",
                          "filters": _MASK},
    },
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["access_console"], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
}
